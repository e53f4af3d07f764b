//! What a run tells the user and the metrics sinks: the config table, one console line per log
//! interval, eval lines and text samples, TensorBoard/JSONL scalars, and the final summary.
//! Time spent here, in evaluation and in checkpointing is kept out of the throughput figures.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::checkpoint::LogWindow;
use super::{evaluate, EvalResult, Session, TrainError, TrainSummary};
use crate::data::{stats::unigram_entropy, Gpt2Tokenizer};
use crate::device::Peak;
use crate::eval;
use crate::generate::{generate, SampleOptions};
use crate::ledger::{self, LossMetric};
use crate::logging::{console, LoggerOptions, MetricsLogger, MetricsSink};
use crate::model::attention::uses_fused_attention;
use crate::model::Gpt;
use crate::optim::StepOutput;
use crate::rng::Rng;

pub struct Reporter {
    logger: MetricsLogger,
    bar: ProgressBar,
    tokenizer: Gpt2Tokenizer,
    unigram: f64,
    peak: Peak,
    flops_per_token: f64,
    tokens_per_step: u64,
    interval: Interval,
    last_eval: Option<EvalResult>,
    warned_logging: bool,
    /// Corpus source names, by source id.
    sources: Vec<String>,
}

/// The steps since the last logged training line: sums that are part of the training state
/// (`window`, saved with checkpoints) and wall-clock time, which is not.
struct Interval {
    start: Instant,
    excluded: Duration,
    timed_steps: u64,
    window: LogWindow,
}

impl Interval {
    fn new(window: LogWindow) -> Self {
        Self {
            start: Instant::now(),
            excluded: Duration::ZERO,
            timed_steps: 0,
            window,
        }
    }
}

impl Reporter {
    pub fn start(s: &Session) -> Result<Self, TrainError> {
        let c = &s.config;
        let run_dir = c.run.run_dir();
        let logger = MetricsLogger::open(
            &run_dir,
            LoggerOptions {
                tensorboard: c.logging.tensorboard,
                jsonl: c.logging.jsonl,
                resumed_at: s.resumed_from.as_ref().map(|_| s.state.step),
            },
        )?;
        let rows = c.table_rows();
        eprintln!("{}", console::config_table(&rows));
        eprintln!(
            "budget\n{}",
            console::config_table(&s.budget.plan().table_rows())
        );
        let unigram = unigram_entropy(&s.data.val);
        let peak = c.perf.resolve(&s.device, c.train.precision)?;
        let ctx = c.context();
        let mut r = Reporter {
            logger,
            bar: console::progress_bar(s.budget.final_step(), s.state.step),
            tokenizer: Gpt2Tokenizer::new()?,
            unigram,
            peak,
            flops_per_token: s.gpt_config.flops_per_token(ctx),
            tokens_per_step: c.train.tokens_per_step(ctx),
            interval: Interval::new(s.state.log_window.clone()),
            last_eval: None,
            warned_logging: false,
            sources: s.data.manifest.sources.clone(),
        };
        r.print_intro(s);
        // The resolved config in TensorBoard's text tab, next to the curves it produced.
        r.logger
            .text("config", &console::markdown_table(&rows), s.state.step);
        Ok(r)
    }

    fn print_intro(&self, s: &Session) {
        let g = &s.gpt_config;
        console::print_line(
            &self.bar,
            &format!(
            "model: {} parameters ({} non-embedding) | {} train blocks, {} val blocks of {} tokens \
             | {} tokens/step | {} matmuls, {} kernels ({} attention) | run dir {}",
            g.num_params(),
            g.num_params_non_embedding(),
            s.train_blocks.len(),
            s.val_blocks.len(),
            s.train_blocks.block_len(),
            self.tokens_per_step,
            s.config.train.precision,
            s.config.perf.kernels,
            attention_kind(s),
            s.config.run.run_dir().display()
        ),
        );
        console::print_line(
            &self.bar,
            &format!(
                "baseline: unigram entropy of the validation tokens = {:.4} nats (a model that \
             ignores context cannot do better) | MFU peak {:.1} GFLOP/s ({})",
                self.unigram,
                self.peak.flops / 1e9,
                self.peak.source
            ),
        );
        if let Some(p) = &s.resumed_from {
            console::print_line(
                &self.bar,
                &format!("resumed from {} at step {}", p.display(), s.state.step),
            );
        }
    }

    pub fn unigram_entropy(&self) -> f64 {
        self.unigram
    }

    pub fn last_eval(&self) -> Option<EvalResult> {
        self.last_eval
    }

    /// Counts the step's blocks per corpus source (O(B)).
    pub fn sampled(&mut self, s: &Session, ids: &[usize]) {
        let counts = &mut self.interval.window.per_source;
        for &id in ids {
            let src = s.source_of(id) as usize;
            if counts.len() <= src {
                counts.resize(src + 1, 0);
            }
            counts[src] += 1;
        }
    }

    /// `sampler/*`: the policy's phase and active share, and each source's share of the
    /// interval's training samples.
    fn log_sampler(&mut self, s: &Session, step: u64) {
        let r = s.policy.report();
        self.logger.scalar("sampler/phase", r.phase as f64, step);
        self.logger
            .scalar("sampler/active_fraction", r.active_fraction, step);
        let per_source = &self.interval.window.per_source;
        let total: u64 = per_source.iter().sum();
        for (id, &n) in per_source.iter().enumerate() {
            let name = self
                .sources
                .get(id)
                .map(String::as_str)
                .unwrap_or("unknown");
            let share = n as f64 / total.max(1) as f64;
            self.logger
                .scalar(&format!("sampler/share/{name}"), share, step);
        }
    }

    /// Accumulates one step; logs at every `log_every` steps and at the `last` one.
    pub fn step(&mut self, s: &Session, out: &StepOutput, lr: f64, last: bool) {
        let iv = &mut self.interval;
        iv.timed_steps += 1;
        iv.window.steps += 1;
        iv.window.loss_sum += out.loss;
        iv.window.grad_norm_sum += out.grad_norm;
        self.bar.set_position(s.state.step);
        let every = s.config.logging.log_every;
        if s.state.step % every != 0 && !last {
            return;
        }
        let now = Instant::now();
        let secs = (now - iv.start).saturating_sub(iv.excluded).as_secs_f64();
        let n = iv.window.steps as f64;
        let (loss, grad_norm) = (iv.window.loss_sum / n, iv.window.grad_norm_sum / n);
        // Speed over the steps this process ran (a resumed window's earlier steps are not timed).
        let timed = iv.timed_steps.max(1) as f64;
        let tokens_per_s = timed * self.tokens_per_step as f64 / secs.max(1e-9);
        let step_ms = secs * 1e3 / timed;
        let mfu = self.flops_per_token * tokens_per_s / self.peak.flops;
        let step = s.state.step;
        for (tag, v) in [
            ("train/loss", loss),
            ("train/lr", lr),
            ("train/grad_norm", grad_norm),
            ("perf/tokens_per_s", tokens_per_s),
            ("perf/step_ms", step_ms),
            ("perf/mfu", mfu),
        ] {
            self.logger.scalar(tag, v, step);
        }
        for (tag, v) in s.budget.scalars() {
            self.logger.scalar(tag, v, step);
        }
        self.log_sampler(s, step);
        console::print_line(
            &self.bar,
            &console::format_train_line(
                step,
                s.budget.final_step(),
                loss,
                lr,
                grad_norm,
                tokens_per_s,
                step_ms,
            ),
        );
        self.check_logger();
        self.interval = Interval::new(LogWindow::default());
    }

    pub fn skipped(&mut self, s: &Session, out: &StepOutput) {
        console::print_line(
            &self.bar,
            &format!(
                "step {}: update skipped because {} ({} in a row); the ledger is not updated",
                s.state.step,
                out.skip_reason().unwrap_or_default(),
                s.state.consecutive_skips
            ),
        );
        self.logger.scalar(
            "train/skipped_steps",
            s.state.consecutive_skips as f64,
            s.state.step,
        );
    }

    /// Evaluates, logs, samples a text; the time is excluded from throughput.
    pub fn eval(&mut self, s: &Session, gpt: &Gpt, step: u64) -> Result<EvalResult, TrainError> {
        let t0 = Instant::now();
        let c = &s.config.eval;
        let r = evaluate(gpt, &s.val_blocks, c.max_blocks, c.batch_size, &s.device)?;
        self.logger.scalar("eval/loss", r.loss, step);
        self.logger.scalar("eval/ppl", r.ppl, step);
        if step == 0 {
            self.logger
                .scalar("eval/unigram_entropy", self.unigram, step);
        }
        if let Some(h) = ledger::loss_histogram(&s.ledger, LossMetric::LastLoss, 30)? {
            self.logger.histogram("ledger/loss", &h, step);
        }
        // Budget position of every evaluation: the compute axes of scaling fits.
        for (tag, v) in s.budget.scalars() {
            self.logger.scalar(tag, v, step);
        }
        self.logger
            .scalar("budget/tokens_seen", s.state.tokens_seen as f64, step);
        let forgotten = ledger::forgotten_fraction(&s.ledger)?;
        self.logger
            .scalar("ledger/forgotten_fraction", forgotten, step);
        let line = console::format_eval_line(step, r.loss, r.ppl);
        console::print_line(&self.bar, &line);
        if c.sample_tokens > 0 {
            let text = self.sample(s, gpt, step)?;
            self.logger.text("eval/sample", &text, step);
            let line = format!("sample: {}", text.replace('\n', " "));
            console::print_line(&self.bar, &line);
        }
        self.logger.flush();
        self.last_eval = Some(r);
        self.interval.excluded += t0.elapsed();
        Ok(r)
    }

    fn sample(&self, s: &Session, gpt: &Gpt, step: u64) -> Result<String, TrainError> {
        let c = &s.config.eval;
        let mut prompt = self.tokenizer.encode(&c.sample_prompt);
        if prompt.is_empty() {
            prompt.push(crate::data::EOT_TOKEN);
        }
        // A stream derived from (seed, step), so sampling never shifts the training RNG.
        let mut rng = Rng::new(s.config.run.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let opts = SampleOptions {
            max_new_tokens: c.sample_tokens,
            temperature: c.temperature,
            top_k: c.top_k,
            context: s.config.context(),
        };
        let new = generate(gpt, &prompt, &opts, &mut rng, &s.device)?;
        Ok(format!(
            "{}{}",
            c.sample_prompt,
            self.tokenizer.decode(&new)
        ))
    }

    /// The eval suite on the final weights: `eval.json` and `eval/*` scalars.
    pub fn suite(&mut self, s: &Session, gpt: &Gpt) -> Result<(), TrainError> {
        let t0 = Instant::now();
        let step = s.state.step;
        let report = eval::run_suite(gpt, &self.tokenizer, &s.suite, &s.device)?;
        let run_dir = s.config.run.run_dir();
        let checkpoint = super::checkpoint::latest(&run_dir)?;
        eval::write_eval_json(&run_dir, step, checkpoint.as_deref(), &report)?;
        eval::log_scalars(&mut self.logger, &report, step);
        self.logger.flush();
        console::print_line(&self.bar, &eval::render_table(&report));
        self.interval.excluded += t0.elapsed();
        Ok(())
    }

    pub fn timed_checkpoint(&mut self, s: &mut Session) -> Result<(), TrainError> {
        let t0 = Instant::now();
        // Logs reach the disk before the checkpoint does: a run resumed from it keeps its
        // lines up to this step and logs the rest again. A logger that fails is reported by
        // `check_logger`; training goes on.
        self.logger.flush_and_wait(Duration::from_secs(10));
        s.state.log_window = self.interval.window.clone();
        let path = s.save_checkpoint()?;
        let secs = t0.elapsed();
        self.interval.excluded += secs;
        console::print_line(
            &self.bar,
            &format!(
                "checkpoint {} ({:.2} s)",
                path.display(),
                secs.as_secs_f64()
            ),
        );
        Ok(())
    }

    fn check_logger(&mut self) {
        if let (false, Some(msg)) = (self.warned_logging, self.logger.health()) {
            console::print_line(
                &self.bar,
                &format!("warning: metrics logging failed, training continues: {msg}"),
            );
            self.warned_logging = true;
        }
    }

    pub fn finish(self, summary: &TrainSummary) -> Result<(), TrainError> {
        self.bar.finish_and_clear();
        let first = summary.first_eval.map(|e| format!("{:.4}", e.loss));
        eprintln!(
            "done: {} steps, {} tokens in {:.1} s | val loss {} -> {:.4} (ppl {:.1}) | unigram \
             baseline {:.4} nats ({})",
            summary.steps,
            summary.tokens_seen,
            summary.wall_seconds,
            first.unwrap_or_else(|| "(resumed)".into()),
            summary.final_eval.loss,
            summary.final_eval.ppl,
            summary.unigram_entropy,
            if summary.final_eval.loss < summary.unigram_entropy {
                "below: the model uses context"
            } else {
                "NOT below: the model has not learned to use context yet"
            }
        );
        let u = &summary.budget;
        eprintln!(
            "budget: {} ({} of {} planned steps) | theoretical {} | wall {:.3} h: train {:.3}, \
             eval {:.3}, checkpoints {:.3}, logging {:.3}, calibration {:.3}",
            match summary.stop {
                Some(r) => format!("{r:?}"),
                None => "interrupted (--stop-after)".into(),
            },
            summary.steps,
            summary.planned_steps,
            summary
                .theoretical_hours
                .map_or("n/a (no reference throughput)".into(), |h| format!(
                    "{h:.4} h"
                )),
            u.wall.total / 3600.0,
            u.wall.train / 3600.0,
            u.wall.eval / 3600.0,
            u.wall.checkpoint / 3600.0,
            u.wall.logging / 3600.0,
            u.wall.calibration / 3600.0,
        );
        let path = summary.run_dir.join(super::SUMMARY_FILE);
        let json = serde_json::to_vec_pretty(summary)?;
        std::fs::write(&path, json).map_err(|source| TrainError::Io { path, source })?;
        self.logger.close()?;
        Ok(())
    }
}

/// Which attention the run's model uses: the kernels setting, unless the fused op has no kernel
/// for this head size on this device.
fn attention_kind(s: &Session) -> &'static str {
    let (kernels, hd) = (s.config.perf.kernels, s.gpt_config.head_dim());
    match uses_fused_attention(kernels, hd, &s.device) {
        true => "fused",
        false => "composed",
    }
}
