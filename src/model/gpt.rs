//! GPT-2, the whole forward pass in order (nanoGPT style): token + position embeddings,
//! n_layer pre-norm blocks (LayerNorm → causal self-attention → residual, LayerNorm → MLP →
//! residual), final LayerNorm, lm_head tied to the token embedding. No dropout: single-epoch
//! pretraining does not need it (nanoGPT's pretraining default is 0 as well).
//!
//! Two implementations of the same network:
//!
//! - The graph path, below: candle ops with autograd. Every op has a backward (no candle-nn
//!   fused LayerNorm / softmax_last_dim, which drop gradients silently). The residual stream is
//!   kept as [B*T, D] so each linear layer is one 2-D matmul; attention and the lm_head +
//!   cross-entropy are our fused ops (CPU and CUDA) or candle's composed ones
//!   (`perf.kernels`). This is the reference, and the path on GPUs and in bf16.
//! - The CPU passes (`cpu/`): forward and backward written out over reused buffers, which the
//!   model takes on the CPU in f32 with fused kernels ([`Gpt::uses_cpu_passes`]).
//!
//! Mixed precision ([`Precision`], `precision.rs`, graph path): every matmul (the four linear
//! layers, QKᵀ, attention · V, the lm_head) goes through `Precision::matmul`, which runs it in
//! bf16 in bf16 mode and returns f32. The residual stream, biases, GELU, LayerNorm, the softmax
//! and the cross-entropy stay f32, so only the matmul operands are ever rounded to bf16.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::attention::{causal_self_attention, AttentionShape};
use super::cpu::{CpuModel, TokenBatch, Weights};
use super::ids::{check_ids, check_targets};
use super::layer_norm::LayerNorm;
use super::linear::{Activation, Linear};
use super::lm_head::lm_head_nll;
use super::tensors::{BlockTensors, GptTensors};
use super::{GptConfig, ModelError, Params, Precision};
use crate::kernels::{CpuF32, Kernels};

/// The model: tensors looked up once from [`Params`]. They share storage with the Vars, so an
/// optimizer writing the Vars in place is seen by the next forward without rebuilding.
#[derive(Clone, Debug)]
pub struct Gpt {
    cfg: GptConfig,
    /// The parameters in forward order; `wte` is also the lm_head.
    tensors: GptTensors<Tensor>,
    precision: Precision,
    kernels: Kernels,
    mode: Mode,
    /// The CPU passes and their buffers.
    cpu: Arc<CpuModel>,
}

/// How parameters are taken from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The Vars themselves: ops on them are recorded for backward.
    Train,
    /// Detached views of the Vars: no backward graph is built.
    Inference,
}

impl Gpt {
    /// Training model: forward ops are tracked back to the parameter Vars.
    pub fn new(cfg: &GptConfig, params: &Params) -> Result<Gpt, ModelError> {
        Self::build(cfg, params, Mode::Train)
    }

    /// Evaluation / sampling model: no backward graph is built (cheaper, no retained activations).
    pub fn new_inference(cfg: &GptConfig, params: &Params) -> Result<Gpt, ModelError> {
        Self::build(cfg, params, Mode::Inference)
    }

    fn build(cfg: &GptConfig, params: &Params, mode: Mode) -> Result<Gpt, ModelError> {
        cfg.validate()?;
        // A store built for another config would fail with a shape error deep in the forward;
        // compare the shapes up front instead.
        for (name, shape) in Params::expected_shapes(cfg) {
            let found = params.get(&name)?.dims().to_vec();
            if found != shape {
                return Err(ModelError::ParamMismatch {
                    missing: vec![],
                    unexpected: vec![],
                    misshaped: vec![(name, shape, found)],
                });
            }
        }
        let tensors = GptTensors::try_from_names(cfg.n_layer, |name| {
            let var = params.get(&name)?;
            Ok::<_, ModelError>(match mode {
                Mode::Train => var.as_tensor().clone(),
                Mode::Inference => var.as_detached_tensor(),
            })
        })?;
        Ok(Gpt {
            cfg: cfg.clone(),
            tensors,
            precision: Precision::F32,
            kernels: Kernels::Fused,
            mode,
            cpu: Arc::new(CpuModel::new(cfg)),
        })
    }

    /// The same model with its matmuls in `precision` (default f32). Weights are shared.
    pub fn with_precision(mut self, precision: Precision) -> Gpt {
        self.precision = precision;
        self
    }

    /// The same model with attention and loss run by `kernels` (default fused). Weights are
    /// shared.
    pub fn with_kernels(mut self, kernels: Kernels) -> Gpt {
        self.kernels = kernels;
        self
    }

    pub fn config(&self) -> &GptConfig {
        &self.cfg
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether training and inference run the written-out CPU passes (`cpu/`): on the CPU, in
    /// f32, with fused kernels. Otherwise everything runs on the graph path.
    pub fn uses_cpu_passes(&self) -> bool {
        self.kernels == Kernels::Fused
            && self.precision == Precision::F32
            && self.tensors.wte.device().is_cpu()
    }

    /// True for the training model ([`Gpt::new`]).
    pub(super) fn is_training(&self) -> bool {
        self.mode == Mode::Train
    }

    /// The parameter tensors by name, in forward order.
    pub(super) fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        self.tensors.as_ref().into_named()
    }

    pub(super) fn cpu_model(&self) -> &CpuModel {
        &self.cpu
    }

    /// The parameters as CPU slices, for the CPU passes.
    pub(super) fn with_weights<R>(
        &self,
        f: impl FnOnce(&Weights<'_>) -> Result<R, ModelError>,
    ) -> Result<R, ModelError> {
        let guards = self
            .tensors
            .as_ref()
            .try_map(|t| CpuF32::of(t, "parameter"))?;
        let weights = guards
            .as_ref()
            .try_map(|g| Ok::<_, ModelError>(g.as_slice()))?;
        f(&weights)
    }

    /// Logits [B, T, V] (f32) for token ids `idx` [B, T] (u32), T <= n_positions.
    pub fn forward(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = self.check_idx(idx, "idx")?;
        let h = self.hidden_states(idx)?; // [B*T, D]

        // Tied lm_head: logits = h · wteᵀ; gemm reads the transposed view by strides, no copy.
        let logits = self.precision.matmul(&h, &self.tensors.wte.t()?)?; // [B*T, V] f32
        Ok(logits.reshape((b, t, self.cfg.vocab_size))?) // [B, T, V]
    }

    /// Mean next-token NLL of each sequence, [B] f32, from a single forward pass. The training
    /// loss is its mean (all sequences have T tokens, so that equals the mean over tokens).
    /// On the training model the result carries the autograd graph (graph path); for training
    /// steps use [`Gpt::loss_and_grads`].
    pub fn per_sequence_loss(
        &self,
        inputs: &Tensor,
        targets: &Tensor,
    ) -> Result<Tensor, ModelError> {
        let (b, t) = self.check_idx(inputs, "inputs")?;
        check_targets(inputs, targets)?;
        if self.mode == Mode::Inference && self.uses_cpu_passes() {
            let (x, y) = (ids(inputs)?, ids(targets)?);
            let batch = TokenBatch {
                inputs: &x,
                targets: &y,
                b,
                t,
            };
            let losses = self.with_weights(|w| self.cpu.per_sequence_loss(w, batch))?;
            return Ok(Tensor::from_vec(losses, b, inputs.device())?); // [B]
        }
        let h = self.hidden_2d(inputs, b, t)?; // [B*T, D]

        // lm_head and cross-entropy fused: the [B*T, V] logits never enter the autograd graph.
        let targets = targets.flatten_all()?; // [B*T]
        let (p, k) = (self.precision, self.kernels);
        let nll = lm_head_nll(&h, &self.tensors.wte, &targets, p, k)?; // [B*T]
        Ok(nll.reshape((b, t))?.mean(1)?) // [B]
    }

    /// Final hidden states [B*T, D] (after `ln_f`) for `idx` [B, T] (u32). Evaluation projects
    /// only the rows it scores with [`Gpt::project`]: at V = 50257 the lm_head is most of a small
    /// model's forward cost, and a sliding-window or multiple-choice scorer needs a few positions.
    pub fn hidden_states(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = self.check_idx(idx, "idx")?;
        if self.mode == Mode::Inference && self.uses_cpu_passes() {
            let x = ids(idx)?;
            let h = self.with_weights(|w| self.cpu.hidden(w, &x, b, t))?;
            return Ok(Tensor::from_vec(
                h,
                (b * t, self.cfg.d_model),
                &Device::Cpu,
            )?);
        }
        self.hidden_2d(idx, b, t) // [B*T, D]
    }

    /// Logits [N, V] of hidden rows `h` [N, D] through the tied lm_head.
    pub fn project(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        Ok(h.matmul(&self.tensors.wte.t()?)?) // [N, V]
    }

    /// Validates token ids and returns (B, T).
    fn check_idx(&self, idx: &Tensor, what: &str) -> Result<(usize, usize), ModelError> {
        check_ids(idx, Some(self.cfg.n_positions), what)
    }

    /// The whole network up to (and including) the final LayerNorm, on the flattened batch.
    fn hidden_2d(&self, idx: &Tensor, b: usize, t: usize) -> Result<Tensor, ModelError> {
        let d = self.cfg.d_model;
        let tok = self.tensors.wte.index_select(&idx.flatten_all()?, 0)?; // [B*T, D]
        let pos = self.tensors.wpe.narrow(0, 0, t)?; // [T, D]
        let x = tok.reshape((b, t, d))?.broadcast_add(&pos)?; // [B, T, D]
        let mut x = x.reshape((b * t, d))?; // [B*T, D]
        for block in &self.tensors.blocks {
            x = self.block_forward(block, &x, b, t)?; // [B*T, D]
        }
        let ln_f = LayerNorm::new(self.tensors.ln_f_w.clone(), self.tensors.ln_f_b.clone());
        ln_f.forward(&x) // [B*T, D]
    }

    fn block_forward(
        &self,
        w: &BlockTensors<Tensor>,
        x: &Tensor,
        b: usize,
        t: usize,
    ) -> Result<Tensor, ModelError> {
        let p = self.precision;
        let ln_1 = LayerNorm::new(w.ln_1_w.clone(), w.ln_1_b.clone());
        let ln_2 = LayerNorm::new(w.ln_2_w.clone(), w.ln_2_b.clone());
        let c_fc = Linear::new(w.c_fc_w.clone(), w.c_fc_b.clone()); // D → 4D
        let mlp_proj = Linear::new(w.mlp_proj_w.clone(), w.mlp_proj_b.clone());
        let h = ln_1.forward(x)?; // [B*T, D]
        let x = (x + self.attention(w, &h, b, t)?)?; // [B*T, D]
        let h = ln_2.forward(&x)?; // [B*T, D]
        let h = c_fc.forward(&h, Activation::Gelu, p)?; // [B*T, 4D]
        let x = (x + mlp_proj.forward(&h, Activation::Identity, p)?)?; // [B*T, D]
        Ok(x)
    }

    /// Causal multi-head self-attention on `h` [B*T, D].
    fn attention(
        &self,
        w: &BlockTensors<Tensor>,
        h: &Tensor,
        b: usize,
        t: usize,
    ) -> Result<Tensor, ModelError> {
        let (p, k) = (self.precision, self.kernels);
        let c_attn = Linear::new(w.c_attn_w.clone(), w.c_attn_b.clone()); // D → 3D (q, k, v)
        let attn_proj = Linear::new(w.attn_proj_w.clone(), w.attn_proj_b.clone());
        let qkv = c_attn.forward(h, Activation::Identity, p)?; // [B*T, 3D] f32
        let shape = AttentionShape {
            b,
            t,
            n_head: self.cfg.n_head,
            head_dim: self.cfg.head_dim(),
        };
        let y = causal_self_attention(&qkv, shape, p, k)?; // [B*T, D]
        attn_proj.forward(&y, Activation::Identity, p)
    }
}

/// Token ids of a u32 tensor, flattened.
pub(super) fn ids(t: &Tensor) -> Result<Vec<u32>, ModelError> {
    Ok(t.flatten_all()?.to_vec1::<u32>()?)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;
    use crate::rng::Rng;

    fn small() -> GptConfig {
        GptConfig {
            vocab_size: 13,
            n_positions: 8,
            n_layer: 1,
            n_head: 2,
            d_model: 8,
        }
    }

    #[test]
    fn rejects_long_context_and_bad_dtype() -> Result<(), ModelError> {
        let cfg = small();
        let params = Params::init_gpt2(&cfg, &mut Rng::new(0), &Device::Cpu)?;
        let gpt = Gpt::new_inference(&cfg, &params)?;
        let long = Tensor::zeros((1, 9), DType::U32, &Device::Cpu)?;
        let msg = gpt.forward(&long).unwrap_err().to_string();
        assert!(msg.contains('9') && msg.contains('8'), "{msg}");
        let float = Tensor::zeros((1, 4), DType::F32, &Device::Cpu)?;
        assert!(gpt.forward(&float).is_err());
        Ok(())
    }

    #[test]
    fn causality_future_tokens_do_not_change_past_logits() -> Result<(), ModelError> {
        let cfg = small();
        let params = Params::init_gpt2(&cfg, &mut Rng::new(1), &Device::Cpu)?;
        let gpt = Gpt::new_inference(&cfg, &params)?;
        let a = Tensor::new(&[[1u32, 2, 3, 4, 5]], &Device::Cpu)?;
        let b = Tensor::new(&[[1u32, 2, 3, 9, 0]], &Device::Cpu)?;
        let la = gpt
            .forward(&a)?
            .narrow(1, 0, 3)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let lb = gpt
            .forward(&b)?
            .narrow(1, 0, 3)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(la, lb);
        let full_a = gpt.forward(&a)?.flatten_all()?.to_vec1::<f32>()?;
        let full_b = gpt.forward(&b)?.flatten_all()?.to_vec1::<f32>()?;
        assert_ne!(full_a, full_b);
        Ok(())
    }
}
