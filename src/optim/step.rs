//! One optimizer step: forward + backward over the micro-batches, gradient accumulation,
//! global-norm clipping, the non-finite guard, and the AdamW update.

use std::time::Instant;

use candle_core::Tensor;

use super::{clip_scale, global_grad_norm, AdamW, OptimError};
use crate::model::{LanguageModel, Params, Timing};

/// Wall time of the three phases of a step, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTimings {
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
}

impl StepTimings {
    pub fn total_ms(&self) -> f64 {
        self.forward_ms + self.backward_ms + self.optimizer_ms
    }
}

pub struct StepOutput {
    /// Mean loss over every sequence of the step.
    pub loss: f64,
    /// Mean loss of each sequence, in batch order, from the training forward pass itself
    /// (the per-block ledger records these; no extra scoring pass).
    pub per_sequence: Vec<f32>,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// False when the loss or gradient norm was non-finite: the weights were left untouched.
    pub applied: bool,
    pub timings: StepTimings,
}

impl StepOutput {
    /// Why the update was skipped, in words; `None` when it was applied.
    pub fn skip_reason(&self) -> Option<String> {
        match (self.loss.is_finite(), self.grad_norm.is_finite()) {
            _ if self.applied => None,
            (false, _) => Some(format!("the loss is {}", self.loss)),
            (true, _) => Some(format!(
                "the gradient norm is {} (loss {:.4})",
                self.grad_norm, self.loss
            )),
        }
    }
}

/// Runs one step over `micro_batches` (inputs, targets), each `[B, T]`, timing its phases
/// as `timing` says.
pub fn train_step(
    gpt: &dyn LanguageModel,
    params: &Params,
    optimizer: &mut AdamW,
    micro_batches: &[(Tensor, Tensor)],
    (lr, grad_clip): (f64, f64),
    timing: Timing,
) -> Result<StepOutput, OptimError> {
    let pass = gpt.loss_and_grads(micro_batches, timing)?;
    let per_sequence = pass.per_sequence;
    let loss = per_sequence.iter().map(|&l| l as f64).sum::<f64>() / per_sequence.len() as f64;
    let t2 = Instant::now();
    let grad_norm = global_grad_norm(&pass.grads)?;
    let applied = loss.is_finite() && grad_norm.is_finite();
    if applied {
        optimizer.step(params, &pass.grads, lr, clip_scale(grad_norm, grad_clip))?;
    }
    let device = params.device();
    let timings = StepTimings {
        forward_ms: pass.forward_ms,
        backward_ms: pass.backward_ms,
        optimizer_ms: (timing.now(&device)? - t2).as_secs_f64() * 1e3,
    };
    Ok(StepOutput {
        loss,
        per_sequence,
        grad_norm,
        applied,
        timings,
    })
}
