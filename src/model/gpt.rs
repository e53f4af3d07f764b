//! GPT-2, the whole forward pass in order (nanoGPT style): token + position embeddings,
//! n_layer pre-norm blocks (LayerNorm → causal self-attention → residual, LayerNorm → MLP →
//! residual), final LayerNorm, lm_head tied to the token embedding. No dropout: single-epoch
//! pretraining does not need it (nanoGPT's pretraining default is 0 as well).
//!
//! Every op has a backward (no candle-nn fused LayerNorm / softmax_last_dim, which drop
//! gradients silently). The residual stream is kept as [B*T, D] so each linear layer is one
//! 2-D matmul; it is reshaped to [B, H, T, hd] only inside attention. The training loss
//! ([`Gpt::per_sequence_loss`]) fuses the lm_head with the cross-entropy (`lm_head.rs`).
//!
//! Mixed precision ([`Precision`], `precision.rs`): every matmul (the four linear layers,
//! QKᵀ, attention · V, the lm_head) goes through `Precision::matmul`, which runs it in bf16 in
//! bf16 mode and returns f32. The residual stream, biases, GELU, LayerNorm, the softmax and the
//! cross-entropy stay f32, so only the matmul operands are ever rounded to bf16.

use std::sync::Arc;

use candle_core::{DType, Tensor};

use super::attention::{causal_self_attention, AttentionShape};
use super::layer_norm::LayerNorm;
use super::linear::{Activation, Linear};
use super::lm_head::{lm_head_nll, LogitsPool};
use super::{GptConfig, ModelError, Params, Precision};
use crate::kernels::Kernels;

#[derive(Clone, Debug)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Linear, // D → 3D (q, k, v)
    attn_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear, // D → 4D
    mlp_proj: Linear,
}

/// The model: tensors looked up once from [`Params`]. They share storage with the Vars, so an
/// optimizer writing the Vars in place is seen by the next forward without rebuilding.
#[derive(Clone, Debug)]
pub struct Gpt {
    cfg: GptConfig,
    wte: Tensor, // [V, D], also the lm_head
    wpe: Tensor, // [n_positions, D]
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    precision: Precision,
    kernels: Kernels,
    /// The training loss's [B*T, V] logits buffer, reused from step to step (CPU).
    logits: Arc<LogitsPool>,
}

/// How parameters are taken from the store.
#[derive(Clone, Copy)]
enum Mode {
    /// The Vars themselves: ops on them are recorded for backward.
    Train,
    /// Detached views of the Vars: no backward graph is built.
    Inference,
}

struct Lookup<'a> {
    params: &'a Params,
    mode: Mode,
}

impl Lookup<'_> {
    fn tensor(&self, name: &str) -> Result<Tensor, ModelError> {
        let var = self.params.get(name)?;
        Ok(match self.mode {
            Mode::Train => var.as_tensor().clone(),
            Mode::Inference => var.as_detached_tensor(),
        })
    }

    fn linear(&self, prefix: &str) -> Result<Linear, ModelError> {
        Ok(Linear::new(
            self.tensor(&format!("{prefix}.weight"))?,
            self.tensor(&format!("{prefix}.bias"))?,
        ))
    }

    fn layer_norm(&self, prefix: &str) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm::new(
            self.tensor(&format!("{prefix}.weight"))?,
            self.tensor(&format!("{prefix}.bias"))?,
        ))
    }

    fn block(&self, i: usize) -> Result<Block, ModelError> {
        let p = format!("transformer.h.{i}");
        Ok(Block {
            ln_1: self.layer_norm(&format!("{p}.ln_1"))?,
            c_attn: self.linear(&format!("{p}.attn.c_attn"))?,
            attn_proj: self.linear(&format!("{p}.attn.c_proj"))?,
            ln_2: self.layer_norm(&format!("{p}.ln_2"))?,
            c_fc: self.linear(&format!("{p}.mlp.c_fc"))?,
            mlp_proj: self.linear(&format!("{p}.mlp.c_proj"))?,
        })
    }
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
        let look = Lookup { params, mode };
        Ok(Gpt {
            cfg: cfg.clone(),
            wte: look.tensor("transformer.wte.weight")?,
            wpe: look.tensor("transformer.wpe.weight")?,
            blocks: (0..cfg.n_layer)
                .map(|i| look.block(i))
                .collect::<Result<_, _>>()?,
            ln_f: look.layer_norm("transformer.ln_f")?,
            precision: Precision::F32,
            kernels: Kernels::Fused,
            logits: Arc::new(LogitsPool::default()),
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

    /// Logits [B, T, V] (f32) for token ids `idx` [B, T] (u32), T <= n_positions.
    pub fn forward(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = self.check_idx(idx, "idx")?;
        let h = self.hidden_2d(idx, b, t)?; // [B*T, D]

        // Tied lm_head: logits = h · wteᵀ; gemm reads the transposed view by strides, no copy.
        let logits = self.precision.matmul(&h, &self.wte.t()?)?; // [B*T, V] f32
        Ok(logits.reshape((b, t, self.cfg.vocab_size))?) // [B, T, V]
    }

    /// Mean next-token NLL of each sequence, [B] f32, from a single forward pass. The training
    /// loss is its mean (all sequences have T tokens, so that equals the mean over tokens).
    pub fn per_sequence_loss(
        &self,
        inputs: &Tensor,
        targets: &Tensor,
    ) -> Result<Tensor, ModelError> {
        let (b, t) = self.check_idx(inputs, "inputs")?;
        if targets.dims() != inputs.dims() || targets.dtype() != DType::U32 {
            return Err(ModelError::BadInput(format!(
                "targets must be u32 {:?} like inputs, got {:?} {:?}",
                inputs.dims(),
                targets.dtype(),
                targets.dims()
            )));
        }
        let h = self.hidden_2d(inputs, b, t)?; // [B*T, D]

        // lm_head and cross-entropy fused: the [B*T, V] logits never enter the autograd graph.
        let targets = targets.flatten_all()?; // [B*T]
        let (p, k) = (self.precision, self.kernels);
        let nll = lm_head_nll(&h, &self.wte, &targets, p, k, &self.logits)?; // [B*T]
        Ok(nll.reshape((b, t))?.mean(1)?) // [B]
    }

    /// Final hidden states [B*T, D] (after `ln_f`) for `idx` [B, T] (u32). Evaluation projects
    /// only the rows it scores with [`Gpt::project`]: at V = 50257 the lm_head is most of a small
    /// model's forward cost, and a sliding-window or multiple-choice scorer needs a few positions.
    pub fn hidden_states(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = self.check_idx(idx, "idx")?;
        self.hidden_2d(idx, b, t) // [B*T, D]
    }

    /// Logits [N, V] of hidden rows `h` [N, D] through the tied lm_head.
    pub fn project(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        Ok(h.matmul(&self.wte.t()?)?) // [N, V]
    }

    /// Validates token ids and returns (B, T).
    fn check_idx(&self, idx: &Tensor, what: &str) -> Result<(usize, usize), ModelError> {
        let (b, t) = idx.dims2().map_err(|_| {
            ModelError::BadInput(format!("{what} must be [B, T], got {:?}", idx.dims()))
        })?;
        if idx.dtype() != DType::U32 {
            return Err(ModelError::BadInput(format!(
                "{what} must be u32, got {:?}",
                idx.dtype()
            )));
        }
        if t == 0 || b == 0 {
            return Err(ModelError::BadInput(format!("{what} is empty: [{b}, {t}]")));
        }
        if t > self.cfg.n_positions {
            return Err(ModelError::ContextTooLong {
                t,
                n_positions: self.cfg.n_positions,
            });
        }
        Ok((b, t))
    }

    /// The whole network up to (and including) the final LayerNorm, on the flattened batch.
    fn hidden_2d(&self, idx: &Tensor, b: usize, t: usize) -> Result<Tensor, ModelError> {
        let d = self.cfg.d_model;
        let tok = self.wte.index_select(&idx.flatten_all()?, 0)?; // [B*T, D]
        let pos = self.wpe.narrow(0, 0, t)?; // [T, D]
        let x = tok.reshape((b, t, d))?.broadcast_add(&pos)?; // [B, T, D]
        let mut x = x.reshape((b * t, d))?; // [B*T, D]
        for block in &self.blocks {
            x = self.block_forward(block, &x, b, t)?; // [B*T, D]
        }
        self.ln_f.forward(&x, self.kernels) // [B*T, D]
    }

    fn block_forward(
        &self,
        block: &Block,
        x: &Tensor,
        b: usize,
        t: usize,
    ) -> Result<Tensor, ModelError> {
        let (p, k) = (self.precision, self.kernels);
        let h = block.ln_1.forward(x, k)?; // [B*T, D]
        let x = (x + self.attention(block, &h, b, t)?)?; // [B*T, D]
        let h = block.ln_2.forward(&x, k)?; // [B*T, D]
        let h = block.c_fc.forward(&h, Activation::Gelu, p, k)?; // [B*T, 4D]
        let x = (x + block.mlp_proj.forward(&h, Activation::Identity, p, k)?)?; // [B*T, D]
        Ok(x)
    }

    /// Causal multi-head self-attention on `h` [B*T, D].
    fn attention(
        &self,
        block: &Block,
        h: &Tensor,
        b: usize,
        t: usize,
    ) -> Result<Tensor, ModelError> {
        let (p, k) = (self.precision, self.kernels);
        let qkv = block.c_attn.forward(h, Activation::Identity, p, k)?; // [B*T, 3D] f32
        let shape = AttentionShape {
            b,
            t,
            n_head: self.cfg.n_head,
            head_dim: self.cfg.head_dim(),
        };
        let y = causal_self_attention(&qkv, shape, p, k)?; // [B*T, D]
        block.attn_proj.forward(&y, Activation::Identity, p, k)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

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
