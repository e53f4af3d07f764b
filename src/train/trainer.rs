//! The training loop, on one screen (nanoGPT style): a step, its log line, evaluation and
//! checkpoints when due, then the final evaluation, the eval suite and the summary. Setup and
//! the step itself live in `session`, reporting in `run_log`.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::eval::sample_text;
use super::run_log::RunLog;
use super::{checkpoint, evaluate, EvalResult, Session, TrainError, SUMMARY_FILE};
use crate::budget::{Activity, BudgetUsage, StopReason};
use crate::config::Config;
use crate::data::Tokenizer;
use crate::eval;
use crate::model::LanguageModel;
use crate::plugins::Plugins;

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the newest complete checkpoint in the run directory.
    pub resume: bool,
    /// With `resume`: continue from this checkpoint directory instead of the newest (newer
    /// checkpoints of the run are then set aside as `checkpoints/.superseded_step_*`).
    pub resume_from: Option<PathBuf>,
    /// Replace a different run found in the run directory.
    pub overwrite: bool,
    /// Stop (with a checkpoint) after this optimizer step, as if interrupted; the schedule is
    /// still laid out over the budget's planned steps. For time-sliced jobs and resume tests.
    pub stop_after: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    /// Steps completed (over all sessions of the run).
    pub steps: u64,
    /// Steps the budget bought (`budget.json`).
    pub planned_steps: u64,
    pub tokens_seen: u64,
    /// Train loss of every step run in this invocation, in order.
    pub losses: Vec<f64>,
    pub first_eval: Option<EvalResult>,
    pub final_eval: EvalResult,
    /// Entropy of the validation tokens' unigram distribution (nats): the best loss of a
    /// model that ignores context.
    pub unigram_entropy: f64,
    /// Wall time of this invocation.
    pub wall_seconds: f64,
    pub skipped_steps: u64,
    /// Why training ended; `None` when `stop_after` interrupted it.
    pub stop: Option<StopReason>,
    /// Reference accelerator-hours charged (with a reference throughput).
    pub theoretical_hours: Option<f64>,
    /// Tokens charged and wall time by activity, over all sessions of the run.
    pub budget: BudgetUsage,
}

/// Trains with the built-in sampling policies and architectures.
pub fn train(config: &Config, opts: &TrainOptions) -> Result<TrainSummary, TrainError> {
    train_with(config, opts, &Plugins::builtin())
}

/// Trains with the policies and architectures of `plugins` (built-ins plus plugins registered
/// from outside the crate, see `examples/custom_policy.rs` and `cli::main`). `config` must
/// have been loaded with the same architectures (`Config::load_with`).
pub fn train_with(
    config: &Config,
    opts: &TrainOptions,
    plugins: &Plugins,
) -> Result<TrainSummary, TrainError> {
    let wall = Instant::now();
    if opts.stop_after == Some(0) {
        return Err(TrainError::RunDir(
            "--stop-after must be a step >= 1 (0 would never stop)".into(),
        ));
    }
    let mut s = Session::open(config, plugins, opts)?;
    s.check_work_left(opts)?;
    let [gpt, scorer] = s.models()?;
    let tokenizer = s.tokenizer().clone();
    let mut log = RunLog::open(&s)?;
    let eval_every = match config.eval.points {
        0 => config.eval.every,
        k => (s.budget().plan().planned_steps / k).max(1),
    };
    let due = |every: u64, step: u64| every > 0 && step % every == 0;
    let (mut losses, mut skipped, mut last_eval) = (Vec::new(), 0, None);
    let mut first_eval = None;
    if s.step() == 0 {
        first_eval = Some(validate(&mut s, &mut log, scorer.as_ref(), &tokenizer)?);
    }
    let mut stop = s.stop_reason();
    while stop.is_none() {
        let trained = s.train_step(gpt.as_ref(), scorer.as_ref())?;
        losses.push(trained.out.loss);
        if !trained.out.applied {
            skipped += 1;
            log.skipped(&s, &trained.out);
            if s.state().consecutive_skips >= config.train.max_consecutive_skips {
                let path = save_checkpoint(&mut s, &mut log)?;
                return Err(TrainError::NonFinite {
                    skips: s.state().consecutive_skips,
                    step: s.step(),
                    reason: trained.out.skip_reason().unwrap_or_default(),
                    checkpoint: path.display().to_string(),
                });
            }
        }
        stop = s.stop_reason();
        let last = stop.is_some() || opts.stop_after == Some(s.step());
        let t = Instant::now();
        log.step(&s, &trained, last);
        s.add_wall(Activity::Logging, t.elapsed());
        if last || due(eval_every, s.step()) {
            last_eval = Some(validate(&mut s, &mut log, scorer.as_ref(), &tokenizer)?);
        }
        if last || due(config.checkpoint.every, s.step()) {
            save_checkpoint(&mut s, &mut log)?;
        }
        if last {
            break;
        }
    }
    let final_eval = match last_eval {
        Some(e) => e,
        None => validate(&mut s, &mut log, scorer.as_ref(), &tokenizer)?,
    };
    if stop.is_some() {
        run_suite(&mut s, &mut log, scorer.as_ref(), &tokenizer)?;
    }
    let summary = TrainSummary {
        run_dir: config.run.run_dir(),
        steps: s.step(),
        planned_steps: s.budget().plan().planned_steps,
        tokens_seen: s.state().tokens_seen,
        losses,
        first_eval,
        final_eval,
        unigram_entropy: log.unigram_entropy(),
        wall_seconds: wall.elapsed().as_secs_f64(),
        skipped_steps: skipped,
        stop,
        theoretical_hours: s.budget().plan().theoretical_hours(s.budget().used_units()),
        budget: s.budget().usage(),
    };
    write_summary(&summary)?;
    log.finish(&summary)?;
    Ok(summary)
}

/// Validation loss, the ledger's state and a text sample, logged; the time is booked as
/// evaluation, and the ledger's generation is published.
fn validate(
    s: &mut Session,
    log: &mut RunLog,
    scorer: &dyn LanguageModel,
    tokenizer: &Tokenizer,
) -> Result<EvalResult, TrainError> {
    let t = Instant::now();
    let (c, step) = (&s.config().eval, s.step());
    let r = evaluate(
        scorer,
        s.val_blocks(),
        c.max_blocks,
        c.batch_size,
        s.device(),
    )?;
    let sample = match c.sample_tokens {
        0 => String::new(),
        _ => sample_text(scorer, tokenizer, s.config(), step, s.device())?,
    };
    log.eval(s, &r, &s.ledger_stats()?, &sample);
    s.flush_ledger()?;
    s.add_wall(Activity::Eval, t.elapsed());
    Ok(r)
}

/// A checkpoint with the logging window still open; the time is booked as checkpointing.
fn save_checkpoint(s: &mut Session, log: &mut RunLog) -> Result<PathBuf, TrainError> {
    let t = Instant::now();
    let path = s.save_checkpoint(log.window_for_checkpoint())?;
    log.checkpoint(&path, t.elapsed());
    s.add_wall(Activity::Checkpoint, t.elapsed());
    Ok(path)
}

/// The eval suite on the final weights: `eval.json`, `eval/*` scalars and the table.
fn run_suite(
    s: &mut Session,
    log: &mut RunLog,
    scorer: &dyn LanguageModel,
    tokenizer: &Tokenizer,
) -> Result<(), TrainError> {
    let t = Instant::now();
    let report = eval::run_suite(scorer, tokenizer, s.suite(), s.device())?;
    let run_dir = s.config().run.run_dir();
    let checkpoint = checkpoint::latest(&run_dir)?;
    eval::write_eval_json(&run_dir, s.step(), checkpoint.as_deref(), &report)?;
    log.suite(&report, s.step());
    s.add_wall(Activity::Eval, t.elapsed());
    Ok(())
}

fn write_summary(summary: &TrainSummary) -> Result<(), TrainError> {
    let path = summary.run_dir.join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(summary)?;
    std::fs::write(&path, json).map_err(|source| TrainError::Io { path, source })
}
