//! The quasi-LSTM's parameter table: checkpoint names, shapes, init and weight-decay groups.
//!
//! Names follow GPT-2's `transformer.*` layout so checkpoints read alike:
//!
//! | name | shape | init | decay |
//! |---|---|---|---|
//! | `transformer.wte.weight` | [V, D] | N(0, 0.02) | no |
//! | `transformer.h.{i}.ln_1.{weight,bias}` | [D] | 1, 0 | no |
//! | `transformer.h.{i}.lstm.w_gates.weight` | [D, 4D] | N(0, 0.02) | yes |
//! | `transformer.h.{i}.lstm.w_gates.bias` | [4D] | 0 | no |
//! | `transformer.h.{i}.lstm.c_proj.{weight,bias}` | [D, D], [D] | N(0, 0.02), 0 | yes, no |
//! | `transformer.h.{i}.ln_2.{weight,bias}` | [D] | 1, 0 | no |
//! | `transformer.h.{i}.mlp.c_fc.{weight,bias}` | [D, F], [F] | N(0, 0.02), 0 | yes, no |
//! | `transformer.h.{i}.mlp.c_proj.{weight,bias}` | [F, D], [D] | N(0, 0.02 / sqrt(2 n_layer)), 0 | yes, no |
//! | `transformer.ln_f.{weight,bias}` | [D] | 1, 0 | no |
//! | `lm_head.weight` | [V, D] | N(0, 0.02) | yes |
//!
//! Linear weights are stored [in, out] (GPT-2's Conv1D convention, `model::linear`);
//! `w_gates` holds the four gate projections side by side, columns `[f | i | z | o]` (forget
//! gate, input gate, cell input, output gate), each D wide, so one matmul computes all four.
//! `lm_head.weight` is [V, D] like an embedding (logits = h · Wᵀ).
//!
//! Init follows Languini's `projects/lstm` (arXiv 2309.11197): every weight N(0, 0.02), the
//! MLP's output projection scaled by 1/sqrt(2 n_layer), the head projection not scaled,
//! biases 0 (the forget gate's +1 is a constant in the forward, not an initial bias).
//!
//! The output head is untied, as in Languini: its input embedding is scaled by sqrt(D) in the
//! forward, which a tied matrix would carry into the logits. Being a matmul weight, the head
//! is decayed; the input embedding, like GPT-2's, is not.

use crate::model::arch::{Init, ParamSpec};

use super::QlstmConfig;

/// Languini's (and GPT-2's) init standard deviation.
const INIT_STD: f64 = 0.02;

/// Columns of `w_gates` per gate, in order: forget, input, cell input, output.
pub(crate) const GATES: usize = 4;

fn block(i: usize, rest: &str) -> String {
    format!("transformer.h.{i}.{rest}")
}

/// Every trainable tensor of `cfg` (see the module table).
pub fn qlstm_specs(cfg: &QlstmConfig) -> Vec<ParamSpec> {
    let (d, f, v) = (cfg.d_model, cfg.ff_dim, cfg.vocab_size);
    let residual = Init::Normal(INIT_STD / (2.0 * cfg.n_layer as f64).sqrt());
    let (normal, one, zero) = (Init::Normal(INIT_STD), Init::Const(1.0), Init::Const(0.0));
    let mut specs = vec![ParamSpec::new(
        "transformer.wte.weight",
        vec![v, d],
        normal,
        false,
    )];
    for i in 0..cfg.n_layer {
        let entries: [(&str, Vec<usize>, Init, bool); 12] = [
            ("ln_1.weight", vec![d], one, false),
            ("ln_1.bias", vec![d], zero, false),
            ("lstm.w_gates.weight", vec![d, GATES * d], normal, true),
            ("lstm.w_gates.bias", vec![GATES * d], zero, false),
            ("lstm.c_proj.weight", vec![d, d], normal, true),
            ("lstm.c_proj.bias", vec![d], zero, false),
            ("ln_2.weight", vec![d], one, false),
            ("ln_2.bias", vec![d], zero, false),
            ("mlp.c_fc.weight", vec![d, f], normal, true),
            ("mlp.c_fc.bias", vec![f], zero, false),
            ("mlp.c_proj.weight", vec![f, d], residual, true),
            ("mlp.c_proj.bias", vec![d], zero, false),
        ];
        for (rest, shape, init, decay) in entries {
            specs.push(ParamSpec::new(block(i, rest), shape, init, decay));
        }
    }
    let tail = [
        ("transformer.ln_f.weight", vec![d], one, false),
        ("transformer.ln_f.bias", vec![d], zero, false),
        ("lm_head.weight", vec![v, d], normal, true),
    ];
    for (name, shape, init, decay) in tail {
        specs.push(ParamSpec::new(name, shape, init, decay));
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_counts_and_decay_groups() {
        let cfg = QlstmConfig::preset("qlstm-small").expect("preset");
        let specs = qlstm_specs(&cfg);
        let total: usize = specs.iter().map(ParamSpec::numel).sum();
        assert_eq!(total, cfg.num_params());
        assert_eq!(specs.len(), 1 + 12 * cfg.n_layer + 3);
        let decayed: Vec<&str> = specs
            .iter()
            .filter(|s| s.decay)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(decayed.len(), 4 * cfg.n_layer + 1);
        assert!(decayed.iter().all(|n| n.ends_with(".weight")));
        assert!(!decayed
            .iter()
            .any(|n| n.contains("ln_") || n.contains("wte")));
    }
}
