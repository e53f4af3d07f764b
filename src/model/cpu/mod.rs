//! GPT-2 on the CPU with its passes written out (llm.c's structure): forward and backward as
//! plain loops over buffers allocated once per batch shape, every matrix product on the `gemm`
//! crate with operands read in place through strides, every element-wise pass vectorised
//! (`kernels::simd`) and spread over all cores. Training, evaluation and scoring take this path
//! on the CPU in f32 with `perf.kernels = "fused"`; candle's autograd over composed ops
//! (`gpt.rs`) is its reference, which the tests compare it with (losses and every gradient).
//!
//! Why not candle's autograd with fused ops: its backward allocates a zero tensor and adds into
//! it for every edge of the graph, and its element-wise ops run one pass each. Written out,
//! the bias and the residual stream are written into a product's output before the product
//! accumulates onto it, LayerNorm is one pass per row each way, the residual stream's gradient
//! is one buffer updated in place, and the activations live in buffers allocated once per batch
//! shape ([`workspace`]).
//!
//! - [`forward`], [`backward`]: the two passes, in order.
//! - [`attention`]: causal attention in blocks of queries (also behind the CUDA op's CPU twin).
//! - [`lm_head`]: the tied lm_head and cross-entropy in vocabulary chunks.
//! - [`linear`], [`layer_norm`]: the layers' kernels.
//! - [`workspace`]: the buffers.

pub mod attention;
mod backward;
mod forward;
pub mod layer_norm;
pub mod linear;
pub mod lm_head;
mod workspace;

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::tensors::GptTensors;
use super::{GptConfig, ModelError, Params};
use workspace::Workspace;

/// The parameters, borrowed as slices (in forward order, see [`GptTensors`]).
pub type Weights<'a> = GptTensors<&'a [f32]>;
/// Gradient buffers, one per parameter.
pub type Grads = GptTensors<Vec<f32>>;

/// B sequences of T token ids, row-major.
#[derive(Clone, Copy, Debug)]
pub struct TokenBatch<'a> {
    pub inputs: &'a [u32],
    pub targets: &'a [u32],
    pub b: usize,
    pub t: usize,
}

/// What one optimizer step's forward and backward passes produce.
#[derive(Debug)]
pub struct StepGrads {
    /// Mean loss of each sequence, in batch order.
    pub per_sequence: Vec<f32>,
    /// Gradients of the mean loss over every token of the step.
    pub grads: Grads,
    pub forward_ms: f64,
    pub backward_ms: f64,
}

/// The model's CPU passes and their buffers (kept between calls; one model runs one call at a
/// time).
#[derive(Debug)]
pub struct CpuModel {
    cfg: GptConfig,
    workspace: Mutex<Workspace>,
}

impl CpuModel {
    pub fn new(cfg: &GptConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            workspace: Mutex::new(Workspace::default()),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Workspace>, ModelError> {
        self.workspace
            .lock()
            .map_err(|_| ModelError::BadInput("CPU model: a previous call panicked".into()))
    }

    /// Final hidden states [B*T, D] (after `ln_f`) of `idx` [B*T].
    pub fn hidden(
        &self,
        w: &Weights<'_>,
        idx: &[u32],
        b: usize,
        t: usize,
    ) -> Result<Vec<f32>, ModelError> {
        self.check_ids(idx, b, t, "idx")?;
        let mut ws = self.lock()?;
        ws.ensure(&self.cfg, b, t, false);
        forward::hidden(&mut ws, w, &self.cfg, idx);
        Ok(ws.ln_f.clone())
    }

    /// Mean next-token NLL of each sequence, [B], from a forward pass without backward.
    pub fn per_sequence_loss(
        &self,
        w: &Weights<'_>,
        batch: TokenBatch<'_>,
    ) -> Result<Vec<f32>, ModelError> {
        let TokenBatch {
            inputs,
            targets,
            b,
            t,
        } = batch;
        self.check_ids(inputs, b, t, "inputs")?;
        self.check_ids(targets, b, t, "targets")?;
        let mut ws = self.lock()?;
        ws.ensure(&self.cfg, b, t, false);
        forward::hidden(&mut ws, w, &self.cfg, inputs);
        forward::loss(&mut ws, w, &self.cfg, targets, false);
        Ok(forward::per_sequence(&ws.nll, t))
    }

    /// Forward and backward over every micro-batch of one optimizer step: per-sequence losses
    /// and the gradients of the step's mean token loss (each micro-batch weighs its share).
    pub fn loss_and_grads(
        &self,
        w: &Weights<'_>,
        batches: &[TokenBatch<'_>],
    ) -> Result<StepGrads, ModelError> {
        for batch in batches {
            self.check_ids(batch.inputs, batch.b, batch.t, "inputs")?;
            self.check_ids(batch.targets, batch.b, batch.t, "targets")?;
        }
        let mut grads = zero_grads(&self.cfg)?;
        let mut ws = self.lock()?;
        let (mut per_sequence, mut forward_ms, mut backward_ms) = (Vec::new(), 0.0, 0.0);
        for batch in batches {
            let t0 = Instant::now();
            ws.ensure(&self.cfg, batch.b, batch.t, true);
            forward::hidden(&mut ws, w, &self.cfg, batch.inputs);
            forward::loss(&mut ws, w, &self.cfg, batch.targets, true);
            per_sequence.extend(forward::per_sequence(&ws.nll, batch.t));
            let t1 = Instant::now();
            let token_weight = 1.0 / (batches.len() * batch.b * batch.t) as f32;
            let ids = (batch.inputs, batch.targets);
            backward::backward(&mut ws, w, &mut grads, &self.cfg, ids, token_weight);
            forward_ms += (t1 - t0).as_secs_f64() * 1e3;
            backward_ms += t1.elapsed().as_secs_f64() * 1e3;
        }
        Ok(StepGrads {
            per_sequence,
            grads,
            forward_ms,
            backward_ms,
        })
    }

    /// `ids` must hold B x T ids below the vocabulary size, T within the context.
    fn check_ids(&self, ids: &[u32], b: usize, t: usize, what: &str) -> Result<(), ModelError> {
        if b == 0 || t == 0 || ids.len() != b * t {
            return Err(ModelError::BadInput(format!(
                "{what}: {} ids for [{b}, {t}]",
                ids.len()
            )));
        }
        if t > self.cfg.n_positions {
            return Err(ModelError::ContextTooLong {
                t,
                n_positions: self.cfg.n_positions,
            });
        }
        match ids.iter().find(|&&id| id as usize >= self.cfg.vocab_size) {
            Some(bad) => Err(ModelError::BadInput(format!(
                "{what}: token id {bad} is outside the vocabulary ({})",
                self.cfg.vocab_size
            ))),
            None => Ok(()),
        }
    }
}

/// A zero gradient buffer for every parameter (zeroed in parallel).
fn zero_grads(cfg: &GptConfig) -> Result<Grads, ModelError> {
    use rayon::prelude::*;
    let shapes = Params::expected_shapes(cfg);
    GptTensors::try_from_names(cfg.n_layer, |name| {
        let len: usize = shapes
            .get(&name)
            .ok_or(ModelError::MissingParam(name))?
            .iter()
            .product();
        Ok(rayon::iter::repeat_n(0f32, len).collect())
    })
}
