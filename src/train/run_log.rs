//! What a run tells the user and the metrics sinks: the config table, one console line and a
//! set of scalars per log interval, evaluation results and text samples, checkpoints, and the
//! closing lines. It only reports: what to compute and when is the training loop's business.
//!
//! Throughput comes from the budget meter's training wall time, so time spent evaluating,
//! checkpointing or logging never counts against it.

use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;

use super::checkpoint::LogWindow;
use super::session::{LedgerStats, TrainedStep};
use super::{EvalResult, Session, TrainError, TrainSummary};
use crate::data::stats::unigram_entropy;
use crate::device::Peak;
use crate::eval::{self, SuiteReport};
use crate::logging::{console, HParams, LoggerOptions, MetricsLogger, MetricsSink, SessionStatus};
use crate::optim::StepOutput;

pub struct RunLog {
    logger: MetricsLogger,
    bar: ProgressBar,
    /// Entropy of the validation tokens' unigram distribution: the context-free baseline.
    unigram: f64,
    peak: Peak,
    flops_per_token: f64,
    /// Sums since the last logged training line (saved with checkpoints).
    window: LogWindow,
    /// Steps this process ran in the window, and the meter's training seconds when it opened.
    timed_steps: u64,
    train_secs_at_open: f64,
    warned_logging: bool,
    /// Corpus source names, by source id.
    sources: Vec<String>,
}

impl RunLog {
    /// Opens the run's metrics outputs (cut back to the checkpoint on resume) and prints the
    /// config, the budget and the model.
    pub fn open(s: &Session) -> Result<Self, TrainError> {
        let c = s.config();
        let logger = MetricsLogger::open(
            &c.run.run_dir(),
            LoggerOptions {
                tensorboard: c.logging.tensorboard,
                jsonl: c.logging.jsonl,
                resumed_at: s.resumed_from().map(|_| s.step()),
            },
        )?;
        let rows = c.table_rows();
        eprintln!("{}", console::config_table(&rows));
        let plan_rows = s.budget().plan().table_rows();
        eprintln!("budget\n{}", console::config_table(&plan_rows));
        let mut log = RunLog {
            logger,
            bar: console::progress_bar(s.budget().final_step(), s.step()),
            unigram: unigram_entropy(&s.data().val),
            peak: c.perf.resolve(s.device(), c.train.precision)?,
            flops_per_token: s.config().arch().flops_per_token(c.context()),
            window: s.state().log_window.clone(),
            timed_steps: 0,
            train_secs_at_open: s.budget().usage().wall.train,
            warned_logging: false,
            sources: s.data().manifest.sources.clone(),
        };
        log.print_intro(s);
        // The resolved config in TensorBoard's text tab, next to the curves it produced, and as
        // hyperparameters for the HParams dashboard (written once, at the run's start).
        let table = console::markdown_table(&rows);
        log.logger.text("config", &table, s.step());
        if s.resumed_from().is_none() {
            let metrics = ["eval/loss", "eval/ppl", "train/loss"];
            let hparams = HParams::from_toml_leaves(c.leaves(), &metrics);
            log.logger.hparams(hparams, 0);
        }
        Ok(log)
    }

    fn print_intro(&self, s: &Session) {
        let (c, g) = (s.config(), s.config().arch());
        let blocks = (s.train_blocks(), s.val_blocks());
        self.line(&format!(
            "model: {} with {} parameters ({} non-embedding) | {} train blocks, {} val blocks of \
             {} tokens | {} tokens/step | {} matmuls, {} kernels | run dir {}",
            g.name(),
            g.num_params(),
            g.num_params_non_embedding(),
            blocks.0.len(),
            blocks.1.len(),
            blocks.0.block_len(),
            s.budget().plan().tokens_per_step,
            c.train.precision,
            c.perf.kernels,
            c.run.run_dir().display()
        ));
        self.line(&format!(
            "baseline: unigram entropy of the validation tokens = {:.4} nats (a model that \
             ignores context cannot do better) | MFU peak {:.1} GFLOP/s ({})",
            self.unigram,
            self.peak.flops / 1e9,
            self.peak.source
        ));
        if let Some(note) = s.policy_plan_note() {
            self.line(&note);
        }
        if let Some(p) = s.resumed_from() {
            self.line(&format!(
                "resumed from {} at step {}",
                p.display(),
                s.step()
            ));
        }
    }

    fn line(&self, text: &str) {
        console::print_line(&self.bar, text);
    }

    pub fn unigram_entropy(&self) -> f64 {
        self.unigram
    }

    /// The open window, for a checkpoint; its lines are on disk first, so a run resumed from
    /// the checkpoint keeps its log up to there and logs the rest again. A logger that fails is
    /// reported by the next training line; training goes on.
    pub fn window_for_checkpoint(&mut self) -> LogWindow {
        self.logger.flush_and_wait(Duration::from_secs(10));
        self.window.clone()
    }

    /// Adds a step to the window; at every `log_every` steps and at the `last` one, logs the
    /// window's means, speed, budget and sampler scalars and prints a line.
    pub fn step(&mut self, s: &Session, trained: &TrainedStep, last: bool) {
        let w = &mut self.window;
        w.steps += 1;
        w.loss_sum += trained.out.loss;
        w.grad_norm_sum += trained.out.grad_norm;
        for &id in &trained.ids {
            let src = s.source_of(id) as usize;
            if w.per_source.len() <= src {
                w.per_source.resize(src + 1, 0);
            }
            w.per_source[src] += 1;
        }
        self.timed_steps += 1;
        let step = s.step();
        self.bar.set_position(step);
        if step % s.config().logging.log_every != 0 && !last {
            return;
        }
        let n = self.window.steps as f64;
        let (loss, grad_norm) = (self.window.loss_sum / n, self.window.grad_norm_sum / n);
        // Speed over the steps this process ran (a resumed window's earlier ones are not timed).
        let train_secs = s.budget().usage().wall.train - self.train_secs_at_open;
        let timed = self.timed_steps.max(1) as f64;
        let tokens_per_s = timed * s.budget().plan().tokens_per_step as f64 / train_secs.max(1e-9);
        let step_ms = train_secs * 1e3 / timed;
        let mfu = self.flops_per_token * tokens_per_s / self.peak.flops;
        for (tag, v) in [
            ("train/loss", loss),
            ("train/lr", trained.lr),
            ("train/grad_norm", grad_norm),
            ("perf/tokens_per_s", tokens_per_s),
            ("perf/step_ms", step_ms),
            ("perf/mfu", mfu),
        ] {
            self.logger.scalar(tag, v, step);
        }
        self.log_budget(s, step);
        self.log_sampler(s, step);
        self.line(&console::format_train_line(
            step,
            s.budget().final_step(),
            loss,
            trained.lr,
            grad_norm,
            tokens_per_s,
            step_ms,
        ));
        self.check_logger();
        self.window = LogWindow::default();
        self.timed_steps = 0;
        self.train_secs_at_open = s.budget().usage().wall.train;
    }

    fn log_budget(&mut self, s: &Session, step: u64) {
        for (tag, v) in s.budget().scalars() {
            self.logger.scalar(tag, v, step);
        }
    }

    /// `sampler/*`: the policy's phase and active share, and each source's share of the
    /// window's training samples.
    fn log_sampler(&mut self, s: &Session, step: u64) {
        let r = s.policy_report();
        self.logger.scalar("sampler/phase", r.phase as f64, step);
        let active = r.active_fraction;
        self.logger.scalar("sampler/active_fraction", active, step);
        let total: u64 = self.window.per_source.iter().sum();
        for (id, &n) in self.window.per_source.iter().enumerate() {
            let name = self.sources.get(id).map_or("unknown", String::as_str);
            let share = n as f64 / total.max(1) as f64;
            let tag = format!("sampler/share/{name}");
            self.logger.scalar(&tag, share, step);
        }
    }

    pub fn skipped(&mut self, s: &Session, out: &StepOutput) {
        let skips = s.state().consecutive_skips;
        self.line(&format!(
            "step {}: update skipped because {} ({skips} in a row); the ledger is not updated",
            s.step(),
            out.skip_reason().unwrap_or_default(),
        ));
        self.logger
            .scalar("train/skipped_steps", skips as f64, s.step());
    }

    /// An evaluation: validation loss, the ledger's state, the budget position (the compute
    /// axes of scaling fits) and a text sample.
    pub fn eval(&mut self, s: &Session, r: &EvalResult, ledger: &LedgerStats, sample: &str) {
        let step = s.step();
        self.logger.scalar("eval/loss", r.loss, step);
        self.logger.scalar("eval/ppl", r.ppl, step);
        if step == 0 {
            self.logger
                .scalar("eval/unigram_entropy", self.unigram, step);
        }
        if let Some(h) = &ledger.loss_histogram {
            self.logger.histogram("ledger/loss", h, step);
        }
        let forgotten = ledger.forgotten_fraction;
        self.logger
            .scalar("ledger/forgotten_fraction", forgotten, step);
        self.log_budget(s, step);
        let tokens = s.state().tokens_seen as f64;
        self.logger.scalar("budget/tokens_seen", tokens, step);
        self.line(&console::format_eval_line(step, r.loss, r.ppl));
        if !sample.is_empty() {
            self.logger.text("eval/sample", sample, step);
            self.line(&format!("sample: {}", sample.replace('\n', " ")));
        }
        self.logger.flush();
    }

    /// The end-of-run eval suite: `eval/*` scalars and the table.
    pub fn suite(&mut self, report: &SuiteReport, step: u64) {
        eval::log_scalars(&mut self.logger, report, step);
        self.logger.flush();
        self.line(&eval::render_table(report));
    }

    pub fn checkpoint(&self, path: &Path, took: Duration) {
        let secs = took.as_secs_f64();
        self.line(&format!("checkpoint {} ({secs:.2} s)", path.display()));
    }

    fn check_logger(&mut self) {
        if let (false, Some(msg)) = (self.warned_logging, self.logger.health()) {
            self.line(&format!(
                "warning: metrics logging failed, training continues: {msg}"
            ));
            self.warned_logging = true;
        }
    }

    /// The closing lines: losses against the baseline, and where the budget went.
    pub fn finish(mut self, summary: &TrainSummary) -> Result<(), TrainError> {
        self.bar.finish_and_clear();
        let first = summary.first_eval.map(|e| format!("{:.4}", e.loss));
        let learned = match summary.final_eval.loss < summary.unigram_entropy {
            true => "below: the model uses context",
            false => "NOT below: the model has not learned to use context yet",
        };
        eprintln!(
            "done: {} steps, {} tokens in {:.1} s | val loss {} -> {:.4} (ppl {:.1}) | unigram \
             baseline {:.4} nats ({learned})",
            summary.steps,
            summary.tokens_seen,
            summary.wall_seconds,
            first.unwrap_or_else(|| "(resumed)".into()),
            summary.final_eval.loss,
            summary.final_eval.ppl,
            summary.unigram_entropy,
        );
        let stop = summary
            .stop
            .map_or("interrupted (--stop-after)".into(), |r| format!("{r:?}"));
        let hours = summary.theoretical_hours;
        let theoretical = hours.map_or("n/a (no reference throughput)".into(), |h| {
            format!("{h:.4} h")
        });
        let w = &summary.budget.wall;
        eprintln!(
            "budget: {stop} ({} of {} planned steps) | theoretical {theoretical} | wall {:.3} h: \
             train {:.3}, eval {:.3}, checkpoints {:.3}, logging {:.3}, calibration {:.3}",
            summary.steps,
            summary.planned_steps,
            w.total / 3600.0,
            w.train / 3600.0,
            w.eval / 3600.0,
            w.checkpoint / 3600.0,
            w.logging / 3600.0,
            w.calibration / 3600.0,
        );
        // Only a finished run has a session end for the HParams dashboard: TensorBoard keeps
        // the first one a run directory holds, and a run stopped early may still be resumed.
        if summary.stop.is_some() {
            self.logger
                .session_end(SessionStatus::Success, summary.steps);
        }
        self.logger.close()?;
        Ok(())
    }
}
