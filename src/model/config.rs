//! Model shape: presets, validation, parameter and FLOP counts.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// GPT-2 hyper-parameters. Field names follow Hugging Face's `GPT2Config` where they overlap
/// (`vocab_size`, `n_positions`, `n_layer`, `n_head`); `d_model` is HF's `n_embd`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptConfig {
    pub vocab_size: usize,
    /// Maximum context length (rows of the position embedding).
    pub n_positions: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub d_model: usize,
}

/// GPT-2 BPE vocabulary size; every preset keeps it so the tokenizer never changes.
const GPT2_VOCAB: usize = 50257;

impl GptConfig {
    /// Names accepted by [`GptConfig::preset`].
    pub const PRESETS: &'static [&'static str] =
        &["tiny", "gpt2-124m", "gpt2-350m", "gpt2-774m", "gpt2-1.5b"];

    /// The GPT-2 family sizes, plus `tiny`, sized to train on a 2-core CPU in about ten minutes.
    pub fn preset(name: &str) -> Option<GptConfig> {
        // (n_positions, n_layer, n_head, d_model)
        let (n_positions, n_layer, n_head, d_model) = match name {
            "tiny" => (128, 4, 4, 128),
            "gpt2-124m" => (1024, 12, 12, 768),
            "gpt2-350m" => (1024, 24, 16, 1024),
            "gpt2-774m" => (1024, 36, 20, 1280),
            "gpt2-1.5b" => (1024, 48, 25, 1600),
            _ => return None,
        };
        Some(GptConfig {
            vocab_size: GPT2_VOCAB,
            n_positions,
            n_layer,
            n_head,
            d_model,
        })
    }

    /// Rejects shapes the forward pass cannot run.
    pub fn validate(&self) -> Result<(), ModelError> {
        let fields = [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("d_model", self.d_model),
        ];
        if let Some((name, _)) = fields.iter().find(|(_, v)| *v == 0) {
            return Err(ModelError::InvalidConfig(format!("{name} must be > 0")));
        }
        if self.d_model % self.n_head != 0 {
            return Err(ModelError::InvalidConfig(format!(
                "d_model = {} is not divisible by n_head = {}",
                self.d_model, self.n_head
            )));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters of one transformer block: two LayerNorms (2D each), c_attn (D x 3D + 3D),
    /// attn.c_proj (D x D + D), mlp.c_fc (D x 4D + 4D), mlp.c_proj (4D x D + D).
    fn params_per_layer(&self) -> usize {
        let d = self.d_model;
        12 * d * d + 13 * d
    }

    /// Unique parameters. The lm_head is tied to `wte`, so it is counted once
    /// (gpt2-124m gives 124,439,808, the number `transformers` reports).
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        self.vocab_size * d + self.n_positions * d + self.n_layer * self.params_per_layer() + 2 * d
        // ln_f
    }

    /// Parameters excluding both embedding tables (`wte` and `wpe`), Kaplan et al. (2020)'s N.
    /// Note the tied `wte` still does work as the lm_head matmul; [`GptConfig::flops_per_token`]
    /// adds that back.
    pub fn num_params_non_embedding(&self) -> usize {
        self.num_params() - (self.vocab_size + self.n_positions) * self.d_model
    }

    /// Weights that take part in a matrix multiply per token: the four block matmuls (12 D^2 per
    /// layer) plus the lm_head projection (V x D, the tied `wte`). Embedding lookups (`wte` as an
    /// input table, `wpe`), biases and LayerNorms are excluded: they cost O(D) per token.
    pub fn num_matmul_params(&self) -> usize {
        let d = self.d_model;
        self.n_layer * 12 * d * d + self.vocab_size * d
    }

    /// Training FLOPs per token at sequence length `context`, PaLM appendix B / Chinchilla
    /// convention: `6 N + 12 n_layer d_model T`, where N = [`GptConfig::num_matmul_params`]
    /// (2 FLOPs per weight forward, 4 backward) and the second term is the attention score and
    /// value matmuls (QK^T and AV, 2 x 2 T D per layer forward, x3 with backward), counted without
    /// the causal-mask halving, as PaLM does.
    pub fn flops_per_token(&self, context: usize) -> f64 {
        let n = self.num_matmul_params() as f64;
        let attn = 12.0 * self.n_layer as f64 * self.d_model as f64 * context as f64;
        6.0 * n + attn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_gpt2_sizes() {
        for name in GptConfig::PRESETS {
            let cfg = GptConfig::preset(name).expect("every listed preset exists");
            cfg.validate().expect("presets are valid");
        }
        // Hugging Face parameter counts (tied lm_head counted once).
        let counts = [
            ("gpt2-124m", 124_439_808),
            ("gpt2-350m", 354_823_168),
            ("gpt2-774m", 774_030_080),
            ("gpt2-1.5b", 1_557_611_200),
        ];
        for (name, want) in counts {
            let cfg = GptConfig::preset(name).expect("preset");
            assert_eq!(cfg.num_params(), want, "{name}");
        }
        assert!(GptConfig::preset("gpt5").is_none());
    }

    #[test]
    fn non_embedding_and_flops() {
        let cfg = GptConfig::preset("gpt2-124m").expect("preset");
        assert_eq!(
            cfg.num_params_non_embedding(),
            124_439_808 - 50257 * 768 - 1024 * 768
        );
        let n = (12 * 12 * 768 * 768 + 50257 * 768) as f64;
        let want = 6.0 * n + 12.0 * 12.0 * 768.0 * 1024.0;
        assert_eq!(cfg.flops_per_token(1024), want);
    }

    #[test]
    fn validate_rejects_bad_shapes() {
        let mut cfg = GptConfig::preset("tiny").expect("preset");
        cfg.n_head = 3;
        assert!(cfg.validate().is_err());
        cfg.n_head = 0;
        assert!(cfg.validate().unwrap_err().to_string().contains("n_head"));
    }
}
