//! One optimizer step: forward + backward over the micro-batches, gradient accumulation,
//! global-norm clipping, the non-finite guard, and the AdamW update.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Tensor;

use super::TrainError;
use crate::model::{Gpt, Params};
use crate::optim::{clip_scale, global_grad_norm, AdamW};

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

/// Runs one step over `micro_batches` (inputs, targets), each `[B, T]`.
pub fn train_step(
    gpt: &Gpt,
    params: &Params,
    optimizer: &mut AdamW,
    micro_batches: &[(Tensor, Tensor)],
    lr: f64,
    grad_clip: f64,
) -> Result<StepOutput, TrainError> {
    let mut timings = StepTimings::default();
    let mut acc: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut per_sequence = Vec::new();
    let accum = micro_batches.len() as f64;
    for (x, y) in micro_batches {
        let t0 = Instant::now();
        let per_seq = gpt.per_sequence_loss(x, y)?; // [B]
                                                    // Mean over the whole step: each micro-batch contributes 1/accum of its mean.
        let loss = (per_seq.mean_all()? / accum)?;
        per_sequence.extend(per_seq.to_vec1::<f32>()?);
        let t1 = Instant::now();
        let grads = loss.backward()?;
        accumulate(&mut acc, params, &grads)?;
        timings.forward_ms += ms(t0, t1);
        timings.backward_ms += ms(t1, Instant::now());
    }
    let loss = per_sequence.iter().map(|&l| l as f64).sum::<f64>() / per_sequence.len() as f64;
    let t2 = Instant::now();
    let grad_norm = global_grad_norm(&acc)?;
    let applied = loss.is_finite() && grad_norm.is_finite();
    if applied {
        optimizer.step(params, &acc, lr, clip_scale(grad_norm, grad_clip))?;
    }
    timings.optimizer_ms = ms(t2, Instant::now());
    Ok(StepOutput {
        loss,
        per_sequence,
        grad_norm,
        applied,
        timings,
    })
}

/// Adds this micro-batch's gradients into `acc`. A parameter without a gradient is an error:
/// it means some op in the model does not backpropagate (candle-notes.md).
fn accumulate(
    acc: &mut BTreeMap<String, Tensor>,
    params: &Params,
    grads: &candle_core::backprop::GradStore,
) -> Result<(), TrainError> {
    for (name, var) in params.iter() {
        // Detached: candle's gradients keep their backprop op, i.e. a reference to this
        // step's whole forward graph. Anything derived from them (the AdamW moments) would
        // chain every step's graph to the next and never free it.
        let g = grads
            .get(var.as_tensor())
            .ok_or_else(|| TrainError::NoGradient(name.clone()))?
            .detach();
        let sum = match acc.remove(name) {
            Some(prev) => (prev + g)?,
            None => g,
        };
        acc.insert(name.clone(), sum);
    }
    Ok(())
}

fn ms(a: Instant, b: Instant) -> f64 {
    (b - a).as_secs_f64() * 1e3
}
