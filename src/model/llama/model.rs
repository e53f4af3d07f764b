//! LLaMA's forward pass, in order: token embedding, n_layer pre-norm blocks (RMSNorm →
//! causal self-attention with RoPE on q and k → residual; RMSNorm → SwiGLU MLP → residual),
//! final RMSNorm, output head. Candle ops with autograd on the [B*T, D] residual stream; the
//! attention and the head + cross-entropy are the same fused ops GPT-2's graph path uses.

use candle_core::{Tensor, D};

use super::LlamaConfig;
use crate::kernels::Kernels;
use crate::model::arch::{check_ids, check_targets, BuildOptions, LanguageModel};
use crate::model::attention::{causal_self_attention, AttentionShape};
use crate::model::lm_head::lm_head_nll;
use crate::model::rms_norm::RmsNorm;
use crate::model::rope::Rope;
use crate::model::{ModelError, Params, Precision};

/// One block's weights ([out, in], as Hugging Face stores them).
struct Block {
    input_layernorm: Tensor,
    q_proj: Tensor,
    k_proj: Tensor,
    v_proj: Tensor,
    o_proj: Tensor,
    post_attention_layernorm: Tensor,
    gate_proj: Tensor,
    up_proj: Tensor,
    down_proj: Tensor,
}

pub struct Llama {
    cfg: LlamaConfig,
    embed_tokens: Tensor,
    layers: Vec<Block>,
    norm: Tensor,
    /// `lm_head.weight`, or the embedding when tied.
    head: Tensor,
    /// Every tensor by name, as the forward uses it.
    named: Vec<(String, Tensor)>,
    rope: Rope,
    precision: Precision,
    kernels: Kernels,
}

impl Llama {
    /// The network over `params` (checked against the config's names and shapes).
    pub fn new(cfg: &LlamaConfig, params: &Params, opts: BuildOptions) -> Result<Self, ModelError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(ModelError::InvalidConfig(problems.join("; ")));
        }
        let get = |name: &str| -> Result<Tensor, ModelError> {
            let var = params.get(name)?;
            Ok(match opts.training {
                true => var.as_tensor().clone(),
                false => var.as_detached_tensor(),
            })
        };
        let mut named = Vec::new();
        let mut take = |name: String| -> Result<Tensor, ModelError> {
            let t = get(&name)?;
            named.push((name, t.clone()));
            Ok(t)
        };
        let embed_tokens = take("model.embed_tokens.weight".into())?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let mut w = |rest: &str| take(format!("model.layers.{i}.{rest}"));
            layers.push(Block {
                input_layernorm: w("input_layernorm.weight")?,
                q_proj: w("self_attn.q_proj.weight")?,
                k_proj: w("self_attn.k_proj.weight")?,
                v_proj: w("self_attn.v_proj.weight")?,
                o_proj: w("self_attn.o_proj.weight")?,
                post_attention_layernorm: w("post_attention_layernorm.weight")?,
                gate_proj: w("mlp.gate_proj.weight")?,
                up_proj: w("mlp.up_proj.weight")?,
                down_proj: w("mlp.down_proj.weight")?,
            });
        }
        let norm = take("model.norm.weight".into())?;
        let head = match cfg.tie_embeddings {
            true => embed_tokens.clone(),
            false => take("lm_head.weight".into())?,
        };
        check_shapes(cfg, &named)?;
        let device = embed_tokens.device().clone();
        Ok(Llama {
            rope: Rope::new(cfg.head_dim(), cfg.n_positions, cfg.rope_theta, &device)?,
            cfg: cfg.clone(),
            embed_tokens,
            layers,
            norm,
            head,
            named,
            precision: opts.precision,
            kernels: opts.kernels,
        })
    }

    /// `x` [N, in] · Wᵀ for a weight stored [out, in].
    fn linear(&self, x: &Tensor, w: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.precision.matmul(x, &w.t()?)?)
    }

    /// The residual stream through every block and the final norm: [B*T, D].
    fn hidden_2d(&self, idx: &Tensor, b: usize, t: usize) -> Result<Tensor, ModelError> {
        let mut x = self.embed_tokens.index_select(&idx.flatten_all()?, 0)?; // [B*T, D]
        let eps = self.cfg.rms_norm_eps;
        for w in &self.layers {
            let h = RmsNorm::new(w.input_layernorm.clone(), eps).forward(&x)?;
            x = (x + self.attention(w, &h, b, t)?)?;
            let h = RmsNorm::new(w.post_attention_layernorm.clone(), eps).forward(&x)?;
            x = (x + self.mlp(w, &h)?)?;
        }
        RmsNorm::new(self.norm.clone(), eps).forward(&x) // [B*T, D]
    }

    /// Causal self-attention with RoPE on `h` [B*T, D].
    fn attention(&self, w: &Block, h: &Tensor, b: usize, t: usize) -> Result<Tensor, ModelError> {
        let (nh, hd) = (self.cfg.n_head, self.cfg.head_dim());
        let rotate = |proj: &Tensor| -> Result<Tensor, ModelError> {
            let y = self.linear(h, proj)?.reshape((b, t, nh, hd))?;
            Ok(self.rope.apply(&y)?.reshape((b * t, nh * hd))?)
        };
        let (q, k) = (rotate(&w.q_proj)?, rotate(&w.k_proj)?);
        let v = self.linear(h, &w.v_proj)?;
        let qkv = Tensor::cat(&[&q, &k, &v], 1)?; // [B*T, 3D]
        let shape = AttentionShape {
            b,
            t,
            n_head: nh,
            head_dim: hd,
        };
        let y = causal_self_attention(&qkv, shape, self.precision, self.kernels)?; // [B*T, D]
        self.linear(&y, &w.o_proj)
    }

    /// SwiGLU: down(silu(gate(h)) ⊙ up(h)).
    fn mlp(&self, w: &Block, h: &Tensor) -> Result<Tensor, ModelError> {
        let gate = self.linear(h, &w.gate_proj)?.silu()?; // [B*T, F]
        let up = self.linear(h, &w.up_proj)?; // [B*T, F]
        self.linear(&(gate * up)?, &w.down_proj) // [B*T, D]
    }
}

/// A store made for another shape fails here, naming the tensor, not deep in the forward.
fn check_shapes(cfg: &LlamaConfig, named: &[(String, Tensor)]) -> Result<(), ModelError> {
    let want = crate::model::arch::shapes_of(&crate::model::Architecture::param_specs(cfg));
    let misshaped: Vec<(String, Vec<usize>, Vec<usize>)> = named
        .iter()
        .filter_map(|(name, t)| {
            let shape = want.get(name)?;
            (t.dims() != shape.as_slice()).then(|| (name.clone(), shape.clone(), t.dims().to_vec()))
        })
        .collect();
    match misshaped.is_empty() {
        true => Ok(()),
        false => Err(ModelError::ParamMismatch {
            missing: vec![],
            unexpected: vec![],
            misshaped,
        }),
    }
}

impl LanguageModel for Llama {
    fn hidden_states(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = check_ids(idx, Some(self.cfg.n_positions), "idx")?;
        self.hidden_2d(idx, b, t)
    }

    fn project(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        Ok(h.matmul(&self.head.t()?)?) // [N, V]
    }

    fn trainable(&self) -> Vec<(String, Tensor)> {
        self.named.clone()
    }

    fn max_context(&self) -> Option<usize> {
        Some(self.cfg.n_positions)
    }

    fn per_sequence_loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
        check_targets(inputs, targets)?;
        let (b, t) = check_ids(inputs, Some(self.cfg.n_positions), "inputs")?;
        let h = self.hidden_2d(inputs, b, t)?; // [B*T, D]
        let targets = targets.flatten_all()?; // [B*T]
        let nll = lm_head_nll(&h, &self.head, &targets, self.precision, self.kernels)?; // [B*T]
        Ok(nll.reshape((b, t))?.mean(D::Minus1)?) // [B]
    }
}
