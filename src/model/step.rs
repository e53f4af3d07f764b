//! One optimizer step's forward and backward passes over its micro-batches: each sequence's
//! loss (for the ledger) and the gradients of the step's mean token loss, on the CPU passes or
//! on the graph path with candle's autograd.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::cpu::TokenBatch;
use super::gpt::ids;
use super::{Gpt, ModelError};

/// What [`Gpt::loss_and_grads`] returns.
#[derive(Debug)]
pub struct LossAndGrads {
    /// Mean loss of each sequence, in batch order, from the training forward pass itself.
    pub per_sequence: Vec<f32>,
    /// Gradient of every parameter, by name (detached from any graph).
    pub grads: BTreeMap<String, Tensor>,
    /// Wall time of the forward and backward passes, milliseconds.
    pub forward_ms: f64,
    pub backward_ms: f64,
}

impl Gpt {
    /// Forward and backward over `micro_batches` (inputs, targets), each [B, T] u32. The loss
    /// is the mean over every token of the step, each micro-batch contributing its share.
    /// Needs the training model ([`Gpt::new`]). On a GPU the device is read back once, for
    /// the per-sequence losses, plus once per phase with [`Timing::Synchronized`].
    pub fn loss_and_grads(
        &self,
        micro_batches: &[(Tensor, Tensor)],
        timing: Timing,
    ) -> Result<LossAndGrads, ModelError> {
        if !self.is_training() {
            return Err(ModelError::BadInput(
                "loss_and_grads needs the training model (Gpt::new)".into(),
            ));
        }
        match self.uses_cpu_passes() {
            true => self.cpu_loss_and_grads(micro_batches),
            false => {
                let named: Vec<(String, Tensor)> = self
                    .named_tensors()
                    .into_iter()
                    .map(|(name, t)| (name, t.clone()))
                    .collect();
                let per_seq = |x: &Tensor, y: &Tensor| self.per_sequence_loss(x, y);
                graph_loss_and_grads(&per_seq, &named, micro_batches, timing)
            }
        }
    }

    fn cpu_loss_and_grads(
        &self,
        micro_batches: &[(Tensor, Tensor)],
    ) -> Result<LossAndGrads, ModelError> {
        let mut tokens = Vec::with_capacity(micro_batches.len());
        for (x, y) in micro_batches {
            let (b, t) = x.dims2()?;
            if y.dims() != x.dims() {
                return Err(ModelError::BadInput(format!(
                    "targets {:?} do not match inputs {:?}",
                    y.dims(),
                    x.dims()
                )));
            }
            tokens.push((ids(x)?, ids(y)?, b, t));
        }
        let batches: Vec<TokenBatch<'_>> = tokens
            .iter()
            .map(|(x, y, b, t)| TokenBatch {
                inputs: x,
                targets: y,
                b: *b,
                t: *t,
            })
            .collect();
        let step = self.with_weights(|w| self.cpu_model().loss_and_grads(w, &batches))?;
        let shapes: BTreeMap<String, Vec<usize>> = self
            .named_tensors()
            .into_iter()
            .map(|(name, t)| (name, t.dims().to_vec()))
            .collect();
        let mut grads = BTreeMap::new();
        for (name, g) in step.grads.into_named() {
            let shape = shapes
                .get(&name)
                .ok_or(ModelError::MissingParam(name.clone()))?;
            grads.insert(
                name.clone(),
                Tensor::from_vec(g, shape.as_slice(), &Device::Cpu)?,
            );
        }
        Ok(LossAndGrads {
            per_sequence: step.per_sequence,
            grads,
            forward_ms: step.forward_ms,
            backward_ms: step.backward_ms,
        })
    }
}

/// Candle's autograd over `per_seq` (inputs, targets) -> [B] losses: forward and backward per
/// micro-batch, gradients of `named` tensors summed over the step. The loss is the mean over
/// every token of the step, each micro-batch contributing 1/accum of its mean. On a GPU the
/// device is read back once, for the per-sequence losses.
pub fn graph_loss_and_grads(
    per_seq: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor, ModelError>,
    named: &[(String, Tensor)],
    micro_batches: &[(Tensor, Tensor)],
    timing: Timing,
) -> Result<LossAndGrads, ModelError> {
    let mut acc: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut losses = Vec::with_capacity(micro_batches.len());
    let (mut forward_ms, mut backward_ms) = (0.0, 0.0);
    let accum = micro_batches.len() as f64;
    for (x, y) in micro_batches {
        let t0 = Instant::now();
        let losses_b = per_seq(x, y)?; // [B]
        let loss = (losses_b.mean_all()? / accum)?;
        let t1 = timing.now(x.device())?;
        let grads = loss.backward()?;
        for (name, t) in named {
            // Detached: candle's gradients keep their backprop op, i.e. a reference to this
            // step's whole forward graph. Anything derived from them (the AdamW moments) would
            // chain every step's graph to the next and never free it.
            let g = grads
                .get(t)
                .ok_or_else(|| ModelError::NoGradient(name.clone()))?
                .detach();
            let sum = match acc.remove(name) {
                Some(prev) => (prev + g)?,
                None => g,
            };
            acc.insert(name.clone(), sum);
        }
        losses.push(losses_b.detach());
        forward_ms += (t1 - t0).as_secs_f64() * 1e3;
        backward_ms += (timing.now(x.device())? - t1).as_secs_f64() * 1e3;
    }
    // The step's one read back of the device (the ledger needs every sequence's loss).
    let per_sequence = Tensor::cat(&losses, 0)?.to_vec1::<f32>()?;
    Ok(LossAndGrads {
        per_sequence,
        grads: acc,
        forward_ms,
        backward_ms,
    })
}

/// How the phase times of a step are taken on a device that runs asynchronously (CUDA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// When the host has queued a phase's work (no waiting: training's choice; the step's
    /// total is still right, because the step ends by reading its losses back).
    Queued,
    /// After waiting for the device to finish the phase (`syllabus bench`): exact phase times
    /// at the cost of one synchronisation per phase.
    Synchronized,
}

impl Timing {
    /// The current time, after waiting for `device` when synchronized.
    pub fn now(self, device: &Device) -> Result<Instant, ModelError> {
        if self == Timing::Synchronized {
            device.synchronize()?;
        }
        Ok(Instant::now())
    }
}
