//! The parameter store: tensors by name (each architecture's checkpoint names, e.g. Hugging
//! Face's), kept sorted so that every iteration (init draws, optimizer state, gradient-norm
//! sums, checkpoints) is deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use super::arch::{shapes_of, Init, ParamSpec};
use super::{GptConfig, ModelError};
use crate::rng::Rng;

/// GPT-2's init standard deviation for matmul weights and both embeddings.
const INIT_STD: f64 = 0.02;

/// Named trainable tensors, sorted by name, with their weight-decay group.
#[derive(Clone, Debug)]
pub struct Params {
    vars: BTreeMap<String, Var>,
    decayed: BTreeSet<String>,
}

fn block(i: usize, rest: &str) -> String {
    format!("transformer.h.{i}.{rest}")
}

/// GPT-2's parameter table: Hugging Face `GPT2LMHeadModel` names (the lm_head is tied to
/// `transformer.wte.weight` and has no entry; Conv1D weights are stored [in, out]), GPT-2 /
/// nanoGPT init (matmul weights and embeddings N(0, 0.02), the two residual output projections
/// N(0, 0.02 / sqrt(2 n_layer)) so the residual stream's variance does not grow with depth,
/// biases 0, LayerNorm gain 1), and decay on the four block matmul weights only. Embeddings are
/// not decayed, following GPT-3 / minGPT (nanoGPT decays every 2-D tensor, wte included): `wte`
/// doubles as the lm_head, and decaying rarely seen token rows towards 0 only hurts them.
pub fn gpt2_specs(cfg: &GptConfig) -> Vec<ParamSpec> {
    let (d, v, p) = (cfg.d_model, cfg.vocab_size, cfg.n_positions);
    let residual = Init::Normal(INIT_STD / (2.0 * cfg.n_layer as f64).sqrt());
    let (normal, one, zero) = (Init::Normal(INIT_STD), Init::Const(1.0), Init::Const(0.0));
    let mut specs = vec![
        ParamSpec::new("transformer.wte.weight", vec![v, d], normal, false),
        ParamSpec::new("transformer.wpe.weight", vec![p, d], normal, false),
    ];
    for i in 0..cfg.n_layer {
        let entries: [(&str, Vec<usize>, Init, bool); 12] = [
            ("ln_1.weight", vec![d], one, false),
            ("ln_1.bias", vec![d], zero, false),
            ("attn.c_attn.weight", vec![d, 3 * d], normal, true),
            ("attn.c_attn.bias", vec![3 * d], zero, false),
            ("attn.c_proj.weight", vec![d, d], residual, true),
            ("attn.c_proj.bias", vec![d], zero, false),
            ("ln_2.weight", vec![d], one, false),
            ("ln_2.bias", vec![d], zero, false),
            ("mlp.c_fc.weight", vec![d, 4 * d], normal, true),
            ("mlp.c_fc.bias", vec![4 * d], zero, false),
            ("mlp.c_proj.weight", vec![4 * d, d], residual, true),
            ("mlp.c_proj.bias", vec![d], zero, false),
        ];
        for (rest, shape, init, decay) in entries {
            specs.push(ParamSpec::new(block(i, rest), shape, init, decay));
        }
    }
    specs.push(ParamSpec::new(
        "transformer.ln_f.weight",
        vec![d],
        one,
        false,
    ));
    specs.push(ParamSpec::new(
        "transformer.ln_f.bias",
        vec![d],
        zero,
        false,
    ));
    specs
}

impl Params {
    /// GPT-2's parameter names and shapes ([`gpt2_specs`]), sorted.
    pub fn expected_shapes(cfg: &GptConfig) -> BTreeMap<String, Vec<usize>> {
        shapes_of(&gpt2_specs(cfg))
    }

    /// Fresh parameters for `specs`. Values are drawn from `rng` in sorted name order, so the
    /// result depends only on the specs and the rng state.
    pub fn init(specs: &[ParamSpec], rng: &mut Rng, device: &Device) -> Result<Params, ModelError> {
        let sorted: BTreeMap<&str, &ParamSpec> =
            specs.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut vars = BTreeMap::new();
        for (name, spec) in sorted {
            let n = spec.numel();
            let data: Vec<f32> = match spec.init {
                Init::Normal(std) => (0..n).map(|_| (rng.normal() * std) as f32).collect(),
                Init::Const(c) => vec![c; n],
            };
            let t = Tensor::from_vec(data, spec.shape.as_slice(), device)?;
            vars.insert(name.to_string(), Var::from_tensor(&t)?);
        }
        Ok(Params {
            vars,
            decayed: decayed_names(specs),
        })
    }

    /// GPT-2 with the seeded init of [`gpt2_specs`].
    pub fn init_gpt2(
        cfg: &GptConfig,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Params, ModelError> {
        cfg.validate()?;
        Self::init(&gpt2_specs(cfg), rng, device)
    }

    /// Sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    pub fn get(&self, name: &str) -> Result<&Var, ModelError> {
        self.vars
            .get(name)
            .ok_or_else(|| ModelError::MissingParam(name.to_string()))
    }

    /// The device the parameters live on (the CPU for an empty store).
    pub fn device(&self) -> Device {
        self.vars
            .values()
            .next()
            .map_or(Device::Cpu, |v| v.device().clone())
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Number of scalar parameters.
    pub fn num_elements(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// AdamW weight-decay group: whether the architecture's spec decays `name`.
    pub fn decays(&self, name: &str) -> bool {
        self.decayed.contains(name)
    }

    /// The current values, detached from any graph. These share storage with the Vars (no
    /// copy, cannot fail): an optimizer step (`Var::set` writes in place) changes them, so use
    /// them for a synchronous save, not to keep values across steps.
    pub fn to_tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_detached_tensor()))
            .collect()
    }

    /// Builds a store from named tensors (e.g. a checkpoint), checking that exactly the names of
    /// `specs` are present with their shapes; the error lists every missing, unexpected and
    /// mis-shaped key. Float tensors of another dtype are converted to f32. The Vars own fresh
    /// copies (they never alias the given tensors).
    pub fn from_tensors(
        specs: &[ParamSpec],
        tensors: BTreeMap<String, Tensor>,
        device: &Device,
    ) -> Result<Params, ModelError> {
        check_names_and_shapes(&shapes_of(specs), &tensors)?;
        let mut vars = BTreeMap::new();
        for (name, t) in tensors {
            let t = t.to_device(device)?.to_dtype(DType::F32)?;
            // `make_var` (inside from_tensor) copies into new storage, so no aliasing.
            vars.insert(name, Var::from_tensor(&t.detach())?);
        }
        Ok(Params {
            vars,
            decayed: decayed_names(specs),
        })
    }

    /// Writes every parameter (f32) to a safetensors file, keyed by name.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), ModelError> {
        let map: HashMap<String, Tensor> = self.to_tensors().into_iter().collect();
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Reads a file written by [`Params::save_safetensors`] (or any file with the same keys),
    /// validated as in [`Params::from_tensors`].
    pub fn load_safetensors(
        specs: &[ParamSpec],
        path: &Path,
        device: &Device,
    ) -> Result<Params, ModelError> {
        let loaded = candle_core::safetensors::load(path, &Device::Cpu)?;
        Self::from_tensors(specs, loaded.into_iter().collect(), device)
    }
}

fn decayed_names(specs: &[ParamSpec]) -> BTreeSet<String> {
    specs
        .iter()
        .filter(|s| s.decay)
        .map(|s| s.name.clone())
        .collect()
}

fn check_names_and_shapes(
    expected: &BTreeMap<String, Vec<usize>>,
    tensors: &BTreeMap<String, Tensor>,
) -> Result<(), ModelError> {
    let missing: Vec<String> = expected
        .keys()
        .filter(|k| !tensors.contains_key(*k))
        .cloned()
        .collect();
    let unexpected: Vec<String> = tensors
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .cloned()
        .collect();
    let misshaped: Vec<(String, Vec<usize>, Vec<usize>)> = tensors
        .iter()
        .filter_map(|(k, t)| {
            let want = expected.get(k)?;
            (t.dims() != want.as_slice()).then(|| (k.clone(), want.clone(), t.dims().to_vec()))
        })
        .collect();
    if missing.is_empty() && unexpected.is_empty() && misshaped.is_empty() {
        Ok(())
    } else {
        Err(ModelError::ParamMismatch {
            missing,
            unexpected,
            misshaped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_groups() -> Result<(), ModelError> {
        let cfg = GptConfig::preset("gpt2-124m").expect("preset");
        let p = Params::init_gpt2(
            &GptConfig {
                n_layer: 12,
                d_model: 8,
                n_head: 2,
                vocab_size: 5,
                n_positions: 4,
            },
            &mut Rng::new(0),
            &Device::Cpu,
        )?;
        assert!(p.decays("transformer.h.0.attn.c_attn.weight"));
        assert!(p.decays("transformer.h.11.mlp.c_proj.weight"));
        assert!(!p.decays("transformer.h.0.attn.c_attn.bias"));
        assert!(!p.decays("transformer.h.0.ln_1.weight"));
        assert!(!p.decays("transformer.wte.weight"));
        assert!(!p.decays("transformer.wpe.weight"));
        assert!(!p.decays("transformer.ln_f.weight"));
        assert_eq!(gpt2_specs(&cfg).iter().filter(|s| s.decay).count(), 4 * 12);
        Ok(())
    }

    #[test]
    fn shapes_count_matches_config() {
        let cfg = GptConfig::preset("gpt2-124m").expect("preset");
        let shapes = Params::expected_shapes(&cfg);
        let total: usize = shapes.values().map(|s| s.iter().product::<usize>()).sum();
        assert_eq!(total, cfg.num_params());
        assert_eq!(shapes.len(), 2 + 12 * 12 + 2);
    }
}
