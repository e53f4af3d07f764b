//! The quasi-LSTM's shape: presets, validation, the registry constructor, and parameter and
//! FLOP counts.

use serde::{Deserialize, Serialize};

use crate::model::registry::{resolve_fields, ArchSpec};
use crate::model::Architecture;

/// GPT-2 BPE vocabulary size, the tokenizer every preset keeps.
const GPT2_VOCAB: usize = 50257;

/// The quasi-LSTM's hyper-parameters (`[model.qlstm]`), Languini's `projects/lstm` config with
/// our names: `d_model` is Languini's `h_dim`, `ff_dim` its `mlp_dim`, `n_layer` its
/// `n_layers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QlstmConfig {
    pub vocab_size: usize,
    /// Residual blocks (LayerNorm → qLSTM → residual, LayerNorm → MLP → residual).
    pub n_layer: usize,
    /// Residual stream width, and the total cell width (`n_head * head_dim`).
    pub d_model: usize,
    /// Cell heads (must divide `d_model`); `head_dim = d_model / n_head`. The recurrence is
    /// element-wise per channel, so heads only group channels: the network is the same for any
    /// `n_head` that divides `d_model`. Kept for parity with Languini's configs.
    pub n_head: usize,
    /// Steps per block of the block-parallel training form (Languini: 16, and 8 for its
    /// `tiny`). Any value gives the same function; it trades the L x L mixing work per block
    /// against the number of sequential carries between blocks.
    pub block_length: usize,
    /// Hidden width of each block's MLP.
    pub ff_dim: usize,
}

/// Every field name, in declaration order (unknown keys are reported next to the other
/// problems instead of stopping at the first).
pub(crate) const FIELDS: [&str; 6] = [
    "vocab_size",
    "n_layer",
    "d_model",
    "n_head",
    "block_length",
    "ff_dim",
];

impl QlstmConfig {
    /// Names accepted by [`QlstmConfig::preset`].
    pub const PRESETS: &'static [&'static str] = &[
        "qlstm-tiny",
        "qlstm-mini",
        "qlstm-small",
        "qlstm-medium",
        "qlstm-large",
        "qlstm-xl",
    ];

    /// `qlstm-tiny` is a CPU size next to GPT-2's `tiny` (4 layers, width 128, 4 heads);
    /// the others are the shapes of Languini's qLSTM configs (arXiv 2309.11197; the same
    /// layers / width / MLP as its GPT table) at the GPT-2 vocabulary. One deviation:
    /// Languini's XL has 24 heads of 128 (a 3072-wide cell under a 2048-wide stream); here the
    /// cell is `d_model` wide, so `qlstm-xl` keeps head_dim 128 with 16 heads.
    pub fn preset(name: &str) -> Option<QlstmConfig> {
        // (n_layer, d_model, n_head, ff_dim, block_length)
        let (n_layer, d_model, n_head, ff_dim, block_length) = match name {
            "qlstm-tiny" => (4, 128, 4, 512, 8),
            "qlstm-mini" => (4, 512, 8, 2048, 16),
            "qlstm-small" => (12, 768, 12, 3072, 16),
            "qlstm-medium" => (24, 1024, 16, 4096, 16),
            "qlstm-large" => (24, 1536, 16, 6144, 16),
            "qlstm-xl" => (24, 2048, 16, 8192, 16),
            _ => return None,
        };
        Some(QlstmConfig {
            vocab_size: GPT2_VOCAB,
            n_layer,
            d_model,
            n_head,
            block_length,
            ff_dim,
        })
    }

    /// The registry constructor: a preset and/or `[model.qlstm]` fields. Unknown keys, a
    /// field that does not parse and shapes the network cannot run are reported together.
    pub fn construct(spec: &ArchSpec) -> Result<Box<dyn Architecture>, Vec<String>> {
        let (known, unknown): (toml::Table, toml::Table) = spec
            .fields
            .clone()
            .into_iter()
            .partition(|(k, _)| FIELDS.contains(&k.as_str()));
        let mut problems: Vec<String> = unknown
            .keys()
            .map(|k| {
                format!(
                    "model.qlstm: unknown field `{k}`, expected one of `{}`",
                    FIELDS.join("`, `")
                )
            })
            .collect();
        let spec = ArchSpec {
            preset: spec.preset.clone(),
            fields: known,
        };
        match resolve_fields("qlstm", &spec, Self::PRESETS, Self::preset) {
            Ok(cfg) => {
                problems.extend(cfg.problems());
                if problems.is_empty() {
                    return Ok(Box::new(cfg));
                }
            }
            Err(errs) => problems.extend(errs),
        }
        Err(problems)
    }

    /// Every reason the network cannot be built with this shape (empty when valid), each
    /// naming its field.
    pub fn problems(&self) -> Vec<String> {
        let values = [
            self.vocab_size,
            self.n_layer,
            self.d_model,
            self.n_head,
            self.block_length,
            self.ff_dim,
        ];
        let mut out: Vec<String> = FIELDS
            .iter()
            .zip(values)
            .filter(|(_, v)| *v == 0)
            .map(|(name, _)| format!("model.qlstm.{name}: must be > 0"))
            .collect();
        if self.n_head > 0 && self.d_model % self.n_head != 0 {
            out.push(format!(
                "model.qlstm.n_head: d_model = {} is not divisible by n_head = {}",
                self.d_model, self.n_head
            ));
        }
        out
    }

    /// Width of one cell head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters of one block: two LayerNorms (2D each), the four gate projections fused
    /// (D x 4D + 4D), the head projection (D x D + D), the MLP (D x F + F, F x D + D).
    fn params_per_layer(&self) -> usize {
        let (d, f) = (self.d_model, self.ff_dim);
        5 * d * d + 2 * d * f + f + 10 * d
    }

    /// Unique parameters: the input embedding and the (untied) output head are separate
    /// V x D matrices.
    pub fn num_params(&self) -> usize {
        let (d, v) = (self.d_model, self.vocab_size);
        2 * v * d + self.n_layer * self.params_per_layer() + 2 * d
    }

    /// Parameters excluding both vocabulary matrices (input embedding and output head),
    /// Kaplan et al. (2020)'s N, which a tied GPT-2 head also leaves out.
    pub fn num_params_non_embedding(&self) -> usize {
        self.num_params() - 2 * self.vocab_size * self.d_model
    }

    /// Weights in a matrix multiply per token: per block the fused gates (4 D²), the head
    /// projection (D²) and the MLP (2 D F); plus the output head (V x D). The embedding
    /// lookup, biases and LayerNorms are O(D) per token and left out.
    pub fn num_matmul_params(&self) -> usize {
        let (d, f) = (self.d_model, self.ff_dim);
        self.n_layer * (5 * d * d + 2 * d * f) + self.vocab_size * d
    }

    /// Training FLOPs per token at sequence length `context`: `6 N + 6 n_layer L' d_model`,
    /// N = [`QlstmConfig::num_matmul_params`] (2 FLOPs per weight forward, 4 backward) and
    /// L' = min(block_length, context). The second term is the block-parallel mixing: each
    /// token's cell state is a weighted sum over up to L' updates of its block, one
    /// multiply-add per (step, channel), i.e. 2 L' d_model forward per layer, x3 with backward,
    /// counted for the full L' x L' matrix without the causal halving (as PaLM's attention
    /// term). Gate nonlinearities, the forget-product matrix's exps and the carry between
    /// blocks are element-wise O(d_model) (or O(L' d_model) exps) and not counted, like GELU
    /// and softmax in the GPT-2 count.
    pub fn flops_per_token(&self, context: usize) -> f64 {
        let n = self.num_matmul_params() as f64;
        let l = self.block_length.min(context.max(1)) as f64;
        6.0 * n + 6.0 * self.n_layer as f64 * l * self.d_model as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_fields_list_matches_serde() {
        for name in QlstmConfig::PRESETS {
            let cfg = QlstmConfig::preset(name).expect("every listed preset exists");
            assert!(cfg.problems().is_empty(), "{name}: {:?}", cfg.problems());
            let table = toml::Table::try_from(&cfg).expect("serialises");
            let keys: Vec<&str> = table.keys().map(String::as_str).collect();
            let mut want = FIELDS.to_vec();
            want.sort_unstable();
            assert_eq!(keys, want);
        }
        assert!(QlstmConfig::preset("qlstm-huge").is_none());
    }

    #[test]
    fn counts_and_flops() {
        let cfg = QlstmConfig::preset("qlstm-tiny").expect("preset");
        let (d, f, v, l) = (128, 512, 50257, 4);
        let per_layer = 4 * d * d + 4 * d + d * d + d + d * f + f + f * d + d + 4 * d;
        assert_eq!(cfg.num_params(), 2 * v * d + l * per_layer + 2 * d);
        assert_eq!(cfg.num_params_non_embedding(), l * per_layer + 2 * d);
        let n = (l * (5 * d * d + 2 * d * f) + v * d) as f64;
        assert_eq!(cfg.flops_per_token(128), 6.0 * n + 6.0 * 4.0 * 8.0 * 128.0);
        // A context shorter than a block mixes over the context only.
        assert_eq!(cfg.flops_per_token(2), 6.0 * n + 6.0 * 4.0 * 2.0 * 128.0);
    }
}
