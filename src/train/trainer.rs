//! The training loop, on one screen (nanoGPT style); setup lives in `session`, reporting in
//! `report`.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::report::Reporter;
use super::step::train_step;
use super::{load_batch, EvalResult, Session, TrainError};
use crate::config::Config;
use crate::optim::lr_at;
use crate::sampling::Registry;

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the newest complete checkpoint in the run directory.
    pub resume: bool,
    /// Replace a different run found in the run directory.
    pub overwrite: bool,
    /// Stop (with a checkpoint) after this optimizer step, as if interrupted; the schedule is
    /// still laid out over `train.steps`. For time-sliced jobs and resume tests.
    pub stop_after: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub steps: u64,
    pub tokens_seen: u64,
    /// Train loss of every step run in this invocation, in order.
    pub losses: Vec<f64>,
    pub first_eval: Option<EvalResult>,
    pub final_eval: EvalResult,
    /// Entropy of the validation tokens' unigram distribution (nats): the best loss of a
    /// model that ignores context.
    pub unigram_entropy: f64,
    pub wall_seconds: f64,
    pub skipped_steps: u64,
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
    let mut s = Session::open(config, registry, opts.resume, opts.overwrite)?;
    let (gpt, gpt_eval) = s.models()?;
    let mut report = Reporter::start(&s)?;
    let total = config.train.steps;
    let micro = config.train.batch_size;
    let tokens_per_step = config.train.tokens_per_step(config.context());
    let mut losses = Vec::new();
    let mut skipped = 0;
    let mut first_eval = None;
    if s.state.step == 0 {
        first_eval = Some(report.eval(&s, &gpt_eval, 0)?);
    }
    while s.state.step < total {
        let step = s.state.step;
        let lr = lr_at(step, total, config.optim.lr, &config.schedule);
        let ids = s.select_batch()?;
        let batches = ids
            .chunks(micro)
            .map(|c| load_batch(&s.train_blocks, c, &s.device))
            .collect::<Result<Vec<_>, _>>()?;
        let out = train_step(
            &gpt,
            &s.params,
            &mut s.optimizer,
            &batches,
            lr,
            config.optim.grad_clip,
        )?;
        s.record_losses(&ids, &out.per_sequence)?;
        report.sampled(&s, &ids);
        s.state.step += 1;
        s.state.tokens_seen += tokens_per_step;
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
                    loss: out.loss,
                    grad_norm: out.grad_norm,
                    checkpoint: path.display().to_string(),
                });
            }
        }
        report.step(&s, &out, lr);
        let last = s.state.step == total || opts.stop_after == Some(s.state.step);
        if last || (config.eval.every > 0 && s.state.step % config.eval.every == 0) {
            report.eval(&s, &gpt_eval, s.state.step)?;
            // Publish the ledger's generation so readers know how current it is.
            s.ledger.flush(s.state.step)?;
        }
        if last || (config.checkpoint.every > 0 && s.state.step % config.checkpoint.every == 0) {
            report.timed_checkpoint(&mut s)?;
        }
        if last {
            break;
        }
    }
    let final_eval = match report.last_eval() {
        Some(e) => e,
        None => report.eval(&s, &gpt_eval, s.state.step)?,
    };
    let summary = TrainSummary {
        run_dir: config.run.run_dir(),
        steps: s.state.step,
        tokens_seen: s.state.tokens_seen,
        losses,
        first_eval,
        final_eval,
        unigram_entropy: report.unigram_entropy(),
        wall_seconds: wall.elapsed().as_secs_f64(),
        skipped_steps: skipped,
    };
    report.finish(&summary)?;
    Ok(summary)
}
