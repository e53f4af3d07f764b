//! LLaMA (Touvron et al. 2023), the softmax-attention baseline of the linear-complexity scaling
//! study (arXiv 2406.16690): pre-norm RMSNorm blocks, rotary position embeddings, a SwiGLU MLP
//! (Shazeer 2020), no biases, and an untied output head unless `tie_embeddings`.
//!
//! Parameter names are Hugging Face `LlamaForCausalLM`'s (weights [out, in], as `nn.Linear`
//! stores them), so a checkpoint maps 1:1 onto `transformers`:
//!
//! ```text
//! model.embed_tokens.weight                      [V, D]
//! model.layers.{i}.input_layernorm.weight        [D]
//! model.layers.{i}.self_attn.{q,k,v,o}_proj.weight   [D, D]
//! model.layers.{i}.post_attention_layernorm.weight   [D]
//! model.layers.{i}.mlp.{gate,up}_proj.weight     [F, D]
//! model.layers.{i}.mlp.down_proj.weight          [D, F]
//! model.norm.weight                              [D]
//! lm_head.weight                                 [V, D]   (absent when tied)
//! ```

mod model;

use serde::{Deserialize, Serialize};
use serde_json::json;

pub use model::Llama;

use super::arch::{step_bytes_f32, Architecture, BuildOptions, Init, LanguageModel, ParamSpec};
use super::registry::{accept, resolve_fields, ArchSpec};
use super::{ModelError, Params};

/// GPT-2 BPE vocabulary (the framework's tokenizer) and its `<|endoftext|>` id.
const GPT2_VOCAB: usize = 50257;
const EOT: u32 = 50256;
/// Init standard deviation of every matrix (Hugging Face's `initializer_range`).
const INIT_STD: f64 = 0.02;

/// LLaMA's shape. Field names follow this framework's GPT-2 config where they overlap
/// (`hf_config` gives the Hugging Face names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    /// Longest context (Hugging Face's `max_position_embeddings`; RoPE has no table to
    /// outgrow, but positions past the trained context were never seen).
    pub n_positions: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub d_model: usize,
    /// SwiGLU hidden width. Default: 8/3 · d_model rounded up to a multiple of 64 (the
    /// parameter count of a 4·d GELU MLP with three matrices instead of two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_hidden: Option<usize>,
    /// RoPE base θ. Default 10000.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm ε. Default 1e-5.
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// Share the output head with the token embedding. Default false (LLaMA's choice).
    #[serde(default)]
    pub tie_embeddings: bool,
}

fn default_rope_theta() -> f64 {
    10000.0
}

fn default_rms_norm_eps() -> f64 {
    1e-5
}

impl LlamaConfig {
    /// Names accepted by [`LlamaConfig::preset`].
    pub const PRESETS: &'static [&'static str] = &[
        "llama-tiny",
        "llama-70m",
        "llama-160m",
        "llama-410m",
        "llama-1b",
    ];

    /// A CPU size matching GPT-2's `tiny`, and the Pythia-style widths and depths the
    /// linear-complexity study compares at (70M ... 1B parameters with GPT-2's vocabulary and
    /// an untied head), context 2048.
    pub fn preset(name: &str) -> Option<LlamaConfig> {
        let (n_positions, n_layer, n_head, d_model) = match name {
            "llama-tiny" => (128, 4, 4, 128),
            "llama-70m" => (2048, 6, 8, 512),
            "llama-160m" => (2048, 12, 12, 768),
            "llama-410m" => (2048, 24, 16, 1024),
            "llama-1b" => (2048, 16, 8, 2048),
            _ => return None,
        };
        Some(LlamaConfig {
            vocab_size: GPT2_VOCAB,
            n_positions,
            n_layer,
            n_head,
            d_model,
            ffn_hidden: None,
            rope_theta: default_rope_theta(),
            rms_norm_eps: default_rms_norm_eps(),
            tie_embeddings: false,
        })
    }

    /// The registry constructor: a preset and/or the fields of `[model.llama]`.
    pub fn construct(spec: &ArchSpec) -> Result<Box<dyn Architecture>, Vec<String>> {
        let cfg: LlamaConfig = resolve_fields("llama", spec, Self::PRESETS, Self::preset)?;
        let problems = cfg.problems();
        accept(cfg, problems)
    }

    /// Every problem of the shape, each naming its `model.llama` field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("d_model", self.d_model),
            ("ffn_hidden", self.ffn_hidden.unwrap_or(1)),
        ];
        for (field, v) in sizes.iter().filter(|(_, v)| *v == 0) {
            p.push(format!("model.llama.{field} must be > 0, got {v}"));
        }
        if self.n_head > 0 && self.d_model % self.n_head != 0 {
            p.push(format!(
                "model.llama.n_head ({}) must divide d_model ({})",
                self.n_head, self.d_model
            ));
        } else if self.n_head > 0 && self.head_dim() % 2 != 0 {
            p.push(format!(
                "model.llama: head width d_model / n_head = {} must be even for rotary \
                 embeddings",
                self.head_dim()
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            p.push(format!(
                "model.llama.rope_theta must be > 1, got {}",
                self.rope_theta
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            p.push(format!(
                "model.llama.rms_norm_eps must be > 0, got {}",
                self.rms_norm_eps
            ));
        }
        p
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// The SwiGLU hidden width (explicit, or 8/3 · d_model rounded up to a multiple of 64).
    pub fn ffn(&self) -> usize {
        self.ffn_hidden
            .unwrap_or_else(|| (8 * self.d_model / 3).div_ceil(64) * 64)
    }

    /// Weights of one block's matmuls: q, k, v, o (4 D²) and the three SwiGLU matrices.
    fn block_matmul_params(&self) -> usize {
        4 * self.d_model * self.d_model + 3 * self.d_model * self.ffn()
    }
}

fn layer(i: usize, rest: &str) -> String {
    format!("model.layers.{i}.{rest}")
}

impl Architecture for LlamaConfig {
    fn name(&self) -> &str {
        "llama"
    }

    fn resolved(&self) -> toml::Table {
        let explicit = LlamaConfig {
            ffn_hidden: Some(self.ffn()),
            ..self.clone()
        };
        // Invariant: integers, floats and a bool always serialise.
        toml::Table::try_from(&explicit).expect("LlamaConfig serialises")
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn max_context(&self) -> Option<usize> {
        Some(self.n_positions)
    }

    /// Every matrix N(0, 0.02) except the residual outputs (`o_proj`, `down_proj`), which get
    /// 0.02 / sqrt(2 n_layer) as in GPT-2 so the residual stream's variance does not grow with
    /// depth; RMSNorm gains 1. Matmul weights (the untied head included) are decayed; the
    /// embedding and the gains are not.
    fn param_specs(&self) -> Vec<ParamSpec> {
        let (d, f, v) = (self.d_model, self.ffn(), self.vocab_size);
        let normal = Init::Normal(INIT_STD);
        let residual = Init::Normal(INIT_STD / (2.0 * self.n_layer as f64).sqrt());
        let one = Init::Const(1.0);
        let mut specs = vec![
            ParamSpec::new("model.embed_tokens.weight", vec![v, d], normal, false),
            ParamSpec::new("model.norm.weight", vec![d], one, false),
        ];
        if !self.tie_embeddings {
            specs.push(ParamSpec::new("lm_head.weight", vec![v, d], normal, true));
        }
        for i in 0..self.n_layer {
            let entries: [(&str, Vec<usize>, Init, bool); 9] = [
                ("input_layernorm.weight", vec![d], one, false),
                ("self_attn.q_proj.weight", vec![d, d], normal, true),
                ("self_attn.k_proj.weight", vec![d, d], normal, true),
                ("self_attn.v_proj.weight", vec![d, d], normal, true),
                ("self_attn.o_proj.weight", vec![d, d], residual, true),
                ("post_attention_layernorm.weight", vec![d], one, false),
                ("mlp.gate_proj.weight", vec![f, d], normal, true),
                ("mlp.up_proj.weight", vec![f, d], normal, true),
                ("mlp.down_proj.weight", vec![d, f], residual, true),
            ];
            for (rest, shape, init, decay) in entries {
                specs.push(ParamSpec::new(layer(i, rest), shape, init, decay));
            }
        }
        specs
    }

    /// Everything but the input embedding table (the untied head does a matmul per token, so
    /// it counts, as in Chinchilla's N).
    fn num_params_non_embedding(&self) -> usize {
        self.num_params() - self.vocab_size * self.d_model
    }

    /// PaLM's convention (as GPT-2's): 6 FLOPs per matmul weight (the blocks' q, k, v, o and
    /// SwiGLU matrices, and the head) plus 12 n_layer d_model T for the attention scores and
    /// values, without the causal halving. RoPE, RMSNorm and SiLU are O(D) per token.
    fn flops_per_token(&self, context: usize) -> f64 {
        let matmul = self.n_layer * self.block_matmul_params() + self.vocab_size * self.d_model;
        let attention = 12.0 * (self.n_layer * self.d_model * context) as f64;
        6.0 * matmul as f64 + attention
    }

    /// Weights with gradients and two AdamW moments, plus per token what the autograd graph
    /// keeps: ~24 D + 3 F per layer (norms, q, k, v and RoPE temporaries, attention output,
    /// SwiGLU branches) and one row of logits.
    fn step_bytes(&self, batch: usize, context: usize, training: bool) -> f64 {
        let (d, f) = (self.d_model as f64, self.ffn() as f64);
        let per_token = match training {
            true => self.n_layer as f64 * (24.0 * d + 3.0 * f) + self.vocab_size as f64,
            false => 4.0 * d + 2.0 * f,
        };
        step_bytes_f32(self.num_params(), batch * context, per_token, training)
    }

    fn build(
        &self,
        params: &Params,
        opts: BuildOptions,
    ) -> Result<Box<dyn LanguageModel>, ModelError> {
        Ok(Box::new(Llama::new(self, params, opts)?))
    }

    fn hf_config(&self) -> Option<serde_json::Value> {
        Some(json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.d_model,
            "intermediate_size": self.ffn(),
            "num_hidden_layers": self.n_layer,
            "num_attention_heads": self.n_head,
            "num_key_value_heads": self.n_head,
            "max_position_embeddings": self.n_positions,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
            "tie_word_embeddings": self.tie_embeddings,
            "initializer_range": INIT_STD,
            "bos_token_id": EOT,
            "eos_token_id": EOT,
            "torch_dtype": "float32",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_sized_as_named() {
        let want = [
            ("llama-70m", 60e6..80e6),
            ("llama-160m", 150e6..175e6),
            ("llama-410m", 390e6..430e6),
            ("llama-1b", 0.95e9..1.3e9),
        ];
        for (name, range) in want {
            let cfg = LlamaConfig::preset(name).expect("preset");
            assert!(cfg.problems().is_empty(), "{name}: {:?}", cfg.problems());
            let n = cfg.num_params() as f64;
            assert!(range.contains(&n), "{name}: {n}");
        }
        assert_eq!(
            LlamaConfig::preset("llama-tiny").map(|c| c.ffn()),
            Some(384)
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let spec = ArchSpec {
            preset: Some("llama-tiny".into()),
            fields: toml::toml! { n_head = 3
            rope_theta = 0.5 },
        };
        let err = LlamaConfig::construct(&spec).unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(
            err[0].contains("n_head") && err[1].contains("rope_theta"),
            "{err:?}"
        );
        let spec = ArchSpec {
            preset: Some("llama-tiny".into()),
            fields: toml::toml! { n_heads = 3 },
        };
        let err = LlamaConfig::construct(&spec).unwrap_err();
        assert!(err[0].contains("n_heads"), "{err:?}");
    }

    #[test]
    fn resolved_rebuilds_the_same_shape() {
        let cfg = LlamaConfig::preset("llama-tiny").expect("preset");
        let again = LlamaConfig::construct(&ArchSpec::resolved(cfg.resolved())).expect("valid");
        assert_eq!(again.resolved(), cfg.resolved());
        assert_eq!(again.num_params(), cfg.num_params());
    }
}
