//! The parameter store: Hugging Face `GPT2LMHeadModel` names, kept sorted so that every
//! iteration (init draws, optimizer state, gradient-norm sums, checkpoints) is deterministic.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use super::{GptConfig, ModelError};
use crate::rng::Rng;

/// GPT-2's init standard deviation for matmul weights and both embeddings.
const INIT_STD: f64 = 0.02;

/// Named trainable tensors, sorted by name.
#[derive(Clone, Debug)]
pub struct Params {
    vars: BTreeMap<String, Var>,
}

/// How a parameter is initialised.
enum Init {
    Normal(f64),
    Const(f32),
}

fn block(i: usize, rest: &str) -> String {
    format!("transformer.h.{i}.{rest}")
}

impl Params {
    /// Every parameter name with its shape. The lm_head is tied to `transformer.wte.weight`
    /// and has no entry. Conv1D weights are stored [in, out] as in Hugging Face.
    pub fn expected_shapes(cfg: &GptConfig) -> BTreeMap<String, Vec<usize>> {
        let (d, v, p) = (cfg.d_model, cfg.vocab_size, cfg.n_positions);
        let mut shapes = BTreeMap::new();
        shapes.insert("transformer.wte.weight".to_string(), vec![v, d]);
        shapes.insert("transformer.wpe.weight".to_string(), vec![p, d]);
        for i in 0..cfg.n_layer {
            let entries: [(&str, Vec<usize>); 12] = [
                ("ln_1.weight", vec![d]),
                ("ln_1.bias", vec![d]),
                ("attn.c_attn.weight", vec![d, 3 * d]),
                ("attn.c_attn.bias", vec![3 * d]),
                ("attn.c_proj.weight", vec![d, d]),
                ("attn.c_proj.bias", vec![d]),
                ("ln_2.weight", vec![d]),
                ("ln_2.bias", vec![d]),
                ("mlp.c_fc.weight", vec![d, 4 * d]),
                ("mlp.c_fc.bias", vec![4 * d]),
                ("mlp.c_proj.weight", vec![4 * d, d]),
                ("mlp.c_proj.bias", vec![d]),
            ];
            for (rest, shape) in entries {
                shapes.insert(block(i, rest), shape);
            }
        }
        shapes.insert("transformer.ln_f.weight".to_string(), vec![d]);
        shapes.insert("transformer.ln_f.bias".to_string(), vec![d]);
        shapes
    }

    /// GPT-2 / nanoGPT init: matmul weights and embeddings N(0, 0.02); the two residual output
    /// projections N(0, 0.02 / sqrt(2 n_layer)) so the residual stream's variance does not grow
    /// with depth; biases 0; LayerNorm gain 1, bias 0. Values are drawn from `rng` in sorted
    /// name order, so the result depends only on the config and the rng state.
    pub fn init_gpt2(
        cfg: &GptConfig,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Params, ModelError> {
        cfg.validate()?;
        let residual_std = INIT_STD / (2.0 * cfg.n_layer as f64).sqrt();
        let mut vars = BTreeMap::new();
        for (name, shape) in Self::expected_shapes(cfg) {
            let init = init_for(&name, residual_std);
            let n: usize = shape.iter().product();
            let data: Vec<f32> = match init {
                Init::Normal(std) => (0..n).map(|_| (rng.normal() * std) as f32).collect(),
                Init::Const(c) => vec![c; n],
            };
            let var = Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?;
            vars.insert(name, var);
        }
        Ok(Params { vars })
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

    /// AdamW weight-decay group. Decays only the 2-D matmul weights of the blocks (c_attn,
    /// attn.c_proj, mlp.c_fc, mlp.c_proj). Biases and LayerNorm gains/biases are not decayed
    /// (decaying a gain towards 0 fights normalisation). Embeddings are not decayed either,
    /// following GPT-3 / minGPT (nanoGPT decays every 2-D tensor, wte included): `wte` doubles as
    /// the lm_head, and decaying rarely seen token rows towards 0 only hurts them.
    pub fn decays(name: &str) -> bool {
        const DECAYED: [&str; 4] = [
            ".attn.c_attn.weight",
            ".attn.c_proj.weight",
            ".mlp.c_fc.weight",
            ".mlp.c_proj.weight",
        ];
        name.starts_with("transformer.h.") && DECAYED.iter().any(|s| name.ends_with(s))
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
    /// [`Params::expected_shapes`] are present with those shapes; the error lists every missing,
    /// unexpected and mis-shaped key. Float tensors of another dtype are converted to f32.
    /// The Vars own fresh copies (they never alias the given tensors).
    pub fn from_tensors(
        cfg: &GptConfig,
        tensors: BTreeMap<String, Tensor>,
        device: &Device,
    ) -> Result<Params, ModelError> {
        cfg.validate()?;
        let expected = Self::expected_shapes(cfg);
        check_names_and_shapes(&expected, &tensors)?;
        let mut vars = BTreeMap::new();
        for (name, t) in tensors {
            let t = t.to_device(device)?.to_dtype(DType::F32)?;
            // `make_var` (inside from_tensor) copies into new storage, so no aliasing.
            vars.insert(name, Var::from_tensor(&t.detach())?);
        }
        Ok(Params { vars })
    }

    /// Writes every parameter (f32) to a safetensors file, keyed by the HF names.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), ModelError> {
        let map: HashMap<String, Tensor> = self.to_tensors().into_iter().collect();
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Reads a file written by [`Params::save_safetensors`] (or any file with the same keys),
    /// validated as in [`Params::from_tensors`].
    pub fn load_safetensors(
        cfg: &GptConfig,
        path: &Path,
        device: &Device,
    ) -> Result<Params, ModelError> {
        let loaded = candle_core::safetensors::load(path, &Device::Cpu)?;
        Self::from_tensors(cfg, loaded.into_iter().collect(), device)
    }
}

fn init_for(name: &str, residual_std: f64) -> Init {
    let is_ln = name.contains(".ln_1.") || name.contains(".ln_2.") || name.contains(".ln_f.");
    if is_ln && name.ends_with(".weight") {
        Init::Const(1.0)
    } else if name.ends_with(".bias") {
        Init::Const(0.0)
    } else if name.ends_with(".c_proj.weight") {
        Init::Normal(residual_std)
    } else {
        Init::Normal(INIT_STD)
    }
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
    fn decay_groups() {
        assert!(Params::decays("transformer.h.0.attn.c_attn.weight"));
        assert!(Params::decays("transformer.h.11.mlp.c_proj.weight"));
        assert!(!Params::decays("transformer.h.0.attn.c_attn.bias"));
        assert!(!Params::decays("transformer.h.0.ln_1.weight"));
        assert!(!Params::decays("transformer.wte.weight"));
        assert!(!Params::decays("transformer.wpe.weight"));
        assert!(!Params::decays("transformer.ln_f.weight"));
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
