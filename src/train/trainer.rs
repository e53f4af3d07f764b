//! The training loop, on one screen (nanoGPT style); setup lives in `session`, reporting in
//! `report`.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::report::Reporter;
use super::SUMMARY_FILE;
use super::{load_batch, EvalResult, Session, TrainError};
use crate::budget::{Activity, BudgetUsage, StopReason};
use crate::config::Config;
use crate::model::Timing;
use crate::optim::train_step;
use crate::sampling::Registry;

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

/// Trains with the built-in sampling policies.
pub fn train(config: &Config, opts: &TrainOptions) -> Result<TrainSummary, TrainError> {
    train_with_registry(config, opts, &Registry::builtin())
}

/// Trains with the policies of `registry` (built-ins plus user policies registered from
/// outside the crate, see `examples/custom_policy.rs`).
pub fn train_with_registry(
    config: &Config,
    opts: &TrainOptions,
    registry: &Registry,
) -> Result<TrainSummary, TrainError> {
    let wall = Instant::now();
    if opts.stop_after == Some(0) {
        return Err(TrainError::RunDir(
            "--stop-after must be a step >= 1 (0 would never stop)".into(),
        ));
    }
    let mut s = Session::open(config, registry, opts)?;
    // Finished means the budget is spent and the end-of-run work (final evaluation, eval
    // suite, summary.json) is done; a run killed during that work completes it on resume.
    let summary_written = config.run.run_dir().join(SUMMARY_FILE).exists();
    if let (Some(reason), true) = (
        s.budget.stop_reason(s.state.step),
        opts.resume && summary_written,
    ) {
        return Err(TrainError::AlreadyFinished {
            run_dir: config.run.run_dir(),
            step: s.state.step,
            reason: format!("{reason:?}"),
        });
    }
    if let Some(n) = opts.stop_after.filter(|&n| n <= s.state.step) {
        return Err(TrainError::RunDir(format!(
            "--stop-after {n} is not after the run's current step {}",
            s.state.step
        )));
    }
    let (gpt, gpt_eval) = s.models()?;
    let mut report = Reporter::start(&s)?;
    let micro = config.train.batch_size;
    let tokens_per_step = s.budget.plan().tokens_per_step;
    let eval_every = match config.eval.points {
        0 => config.eval.every,
        k => (s.budget.plan().planned_steps / k).max(1),
    };
    let mut losses = Vec::new();
    let mut skipped = 0;
    let mut first_eval = None;
    if s.state.step == 0 {
        let t = Instant::now();
        first_eval = Some(report.eval(&s, &gpt_eval, 0)?);
        s.budget.add_wall(Activity::Eval, t.elapsed());
    }
    let mut stop = s.budget.stop_reason(s.state.step);
    while stop.is_none() {
        let t = Instant::now();
        let lr = s.budget.lr(s.state.step, config.optim.lr, &config.schedule);
        let sel = s.select_batch()?;
        let batches = sel
            .ids
            .chunks(micro)
            .map(|c| load_batch(&s.train_blocks, c, &s.device))
            .collect::<Result<Vec<_>, _>>()?;
        let hp = (lr, config.optim.grad_clip);
        let out = train_step(
            &gpt,
            &s.params,
            &mut s.optimizer,
            &batches,
            hp,
            Timing::Queued,
        )?;
        // A skipped update trained nothing: its losses stay out of the ledger (they would
        // count the blocks as trained and steer loss-based policies with a diverged model's
        // numbers), and the policy does not observe them.
        if out.applied {
            s.record_losses(&sel.ids, &out.per_sequence)?;
        }
        // Scoring runs on the updated weights (the ones the next step trains) and is charged.
        let scored = match sel.score.is_empty() {
            true => 0,
            false => s.score_blocks(&gpt_eval, &sel.score)?,
        };
        s.state.step += 1;
        s.state.tokens_seen += tokens_per_step;
        s.budget.charge_step(tokens_per_step, scored);
        s.budget.add_wall(Activity::Train, t.elapsed());
        losses.push(out.loss);
        if out.applied {
            s.state.consecutive_skips = 0;
        } else {
            skipped += 1;
            s.state.consecutive_skips += 1;
            report.skipped(&s, &out);
            if s.state.consecutive_skips >= config.train.max_consecutive_skips {
                let path = s.save_checkpoint()?;
                return Err(TrainError::NonFinite {
                    skips: s.state.consecutive_skips,
                    step: s.state.step,
                    reason: out.skip_reason().unwrap_or_default(),
                    checkpoint: path.display().to_string(),
                });
            }
        }
        s.budget.check_wall_cap(s.state.step, &config.schedule);
        stop = s.budget.stop_reason(s.state.step);
        let last = stop.is_some() || opts.stop_after == Some(s.state.step);
        let t = Instant::now();
        report.sampled(&s, &sel.ids);
        report.step(&s, &out, lr, last);
        s.budget.add_wall(Activity::Logging, t.elapsed());
        if last || (eval_every > 0 && s.state.step % eval_every == 0) {
            let t = Instant::now();
            report.eval(&s, &gpt_eval, s.state.step)?;
            // Publish the ledger's generation so readers know how current it is.
            s.ledger.flush(s.state.step)?;
            s.budget.add_wall(Activity::Eval, t.elapsed());
        }
        if last || (config.checkpoint.every > 0 && s.state.step % config.checkpoint.every == 0) {
            let t = Instant::now();
            report.timed_checkpoint(&mut s)?;
            s.budget.add_wall(Activity::Checkpoint, t.elapsed());
        }
        if last {
            break;
        }
    }
    let final_eval = match report.last_eval() {
        Some(e) => e,
        None => report.eval(&s, &gpt_eval, s.state.step)?,
    };
    if stop.is_some() {
        let t = Instant::now();
        report.suite(&s, &gpt_eval)?;
        s.budget.add_wall(Activity::Eval, t.elapsed());
    }
    let usage = s.budget.usage();
    let summary = TrainSummary {
        run_dir: config.run.run_dir(),
        steps: s.state.step,
        planned_steps: s.budget.plan().planned_steps,
        tokens_seen: s.state.tokens_seen,
        losses,
        first_eval,
        final_eval,
        unigram_entropy: report.unigram_entropy(),
        wall_seconds: wall.elapsed().as_secs_f64(),
        skipped_steps: skipped,
        stop,
        theoretical_hours: s.budget.plan().theoretical_hours(s.budget.used_units()),
        budget: usage,
    };
    report.finish(&summary)?;
    Ok(summary)
}
