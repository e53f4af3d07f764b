//! Hugging Face `transformers` interop for GPT-2: a model as a `GPT2LMHeadModel` directory
//! (`config.json`, `generation_config.json`, `model.safetensors`) and back.
//!
//! Our parameter names and layouts are GPT-2's own (Radford et al. 2019, as `transformers`
//! stores them: Conv1D weights as [in, out]), so tensors map 1:1. The LM head is tied to
//! `transformer.wte.weight` and not stored, as in the published GPT-2 checkpoints. GELU is the
//! tanh approximation (`gelu_new`) and LayerNorm's epsilon 1e-5, both as in GPT-2.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::json;

use super::params::gpt2_specs;
use super::{GptConfig, ModelError, Params, LN_EPS};

pub const HF_CONFIG: &str = "config.json";
pub const HF_GENERATION_CONFIG: &str = "generation_config.json";
pub const HF_WEIGHTS: &str = "model.safetensors";
/// GPT-2's `<|endoftext|>`: beginning and end of every document.
const EOT: u32 = 50256;

/// `config.json` of a `GPT2LMHeadModel` with `cfg`'s shape (no dropout: a trained model).
pub fn hf_config(cfg: &GptConfig) -> serde_json::Value {
    json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.n_positions,
        "n_ctx": cfg.n_positions,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": null,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": LN_EPS,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "bos_token_id": EOT,
        "eos_token_id": EOT,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
    })
}

/// Writes `params` as a Hugging Face directory into `dir` (created if needed): `config`
/// (an architecture's [`hf_config`](super::Architecture::hf_config)), the generation config
/// with its begin/end token ids, and every parameter under its own name.
pub fn export_hf(
    config: &serde_json::Value,
    params: &Params,
    dir: &Path,
) -> Result<(), ModelError> {
    let io = |e: std::io::Error| ModelError::Io(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .to_tensors()
        .into_iter()
        .map(|(name, t)| {
            let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            Ok((name, t.dims().to_vec(), bytes))
        })
        .collect::<Result<_, ModelError>>()?;
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(safetensors_error)?;
    // transformers refuses a safetensors file without a framework tag.
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), &dir.join(HF_WEIGHTS))
        .map_err(safetensors_error)?;
    let generation = json!({
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
    });
    for (name, value) in [
        (HF_CONFIG, config.clone()),
        (HF_GENERATION_CONFIG, generation),
    ] {
        let text =
            serde_json::to_string_pretty(&value).map_err(|e| ModelError::Io(e.to_string()))?;
        std::fs::write(dir.join(name), text + "\n").map_err(io)?;
    }
    Ok(())
}

/// Reads a Hugging Face GPT-2 directory (ours, or a published one such as `gpt2`) as the
/// parameters of `cfg`: its `config.json` must describe the same shape. Keys may lack the
/// `transformer.` prefix (`GPT2Model` files); the attention-mask buffers some files carry are
/// skipped, and an `lm_head.weight` must equal the tied embedding.
pub fn load_gpt2(cfg: &GptConfig, dir: &Path, device: &Device) -> Result<Params, ModelError> {
    check_config(cfg, dir)?;
    let path = dir.join(HF_WEIGHTS);
    let bytes =
        std::fs::read(&path).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))?;
    let mut tensors = BTreeMap::new();
    let mut head = None;
    for (name, view) in file.tensors() {
        let t = to_tensor(&view)
            .map_err(|e| ModelError::Io(format!("{}: {name}: {e}", path.display())))?;
        match our_name(&name) {
            Some(ours) if ours == "lm_head.weight" => head = Some(t),
            Some(ours) => {
                tensors.insert(ours, t);
            }
            None => {} // a causal-mask buffer, not a parameter
        }
    }
    if let (Some(head), Some(wte)) = (head, tensors.get("transformer.wte.weight")) {
        let same = head.dims() == wte.dims()
            && (&head - wte)?.abs()?.max_all()?.to_scalar::<f32>()? == 0.0;
        if !same {
            return Err(ModelError::InvalidConfig(format!(
                "{}: lm_head.weight differs from transformer.wte.weight; only the tied head of \
                 GPT-2 is supported",
                path.display()
            )));
        }
    }
    Params::from_tensors(&gpt2_specs(cfg), tensors, device)
}

/// Our name for a key of a GPT-2 safetensors file; `None` for buffers that are not parameters.
fn our_name(key: &str) -> Option<String> {
    if key.ends_with(".attn.bias") || key.ends_with(".attn.masked_bias") {
        return None;
    }
    Some(
        match key.starts_with("transformer.") || key == "lm_head.weight" {
            true => key.to_string(),
            false => format!("transformer.{key}"),
        },
    )
}

fn to_tensor(view: &TensorView<'_>) -> Result<Tensor, String> {
    let dtype = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        other => return Err(format!("dtype {other:?}; expected f32, f16 or bf16")),
    };
    Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(|e| e.to_string())
}

/// Errors unless `dir/config.json` is a GPT-2 config with `cfg`'s shape, listing every field
/// that differs.
fn check_config(cfg: &GptConfig, dir: &Path) -> Result<(), ModelError> {
    let path = dir.join(HF_CONFIG);
    let bad = |m: String| ModelError::InvalidConfig(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let hf: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if hf["model_type"] != "gpt2" {
        return Err(bad(format!(
            "model_type {}, expected \"gpt2\"",
            hf["model_type"]
        )));
    }
    let ours = [
        ("vocab_size", "model.vocab_size", cfg.vocab_size),
        ("n_positions", "model.n_positions", cfg.n_positions),
        ("n_embd", "model.d_model", cfg.d_model),
        ("n_layer", "model.n_layer", cfg.n_layer),
        ("n_head", "model.n_head", cfg.n_head),
    ];
    let differences: Vec<String> = ours
        .iter()
        .filter(|(key, _, value)| hf[key].as_u64() != Some(*value as u64))
        .map(|(key, field, value)| format!("{key} = {} but {field} = {value}", hf[key]))
        .collect();
    match differences.is_empty() {
        true => Ok(()),
        false => Err(bad(format!("another shape: {}", differences.join(", ")))),
    }
}

fn safetensors_error(e: safetensors::SafeTensorError) -> ModelError {
    ModelError::Io(format!("safetensors: {e}"))
}

#[cfg(test)]
mod tests {
    use super::our_name;

    #[test]
    fn published_gpt2_keys_map_onto_ours() {
        assert_eq!(
            our_name("h.0.ln_1.weight").as_deref(),
            Some("transformer.h.0.ln_1.weight")
        );
        assert_eq!(
            our_name("wte.weight").as_deref(),
            Some("transformer.wte.weight")
        );
        assert_eq!(
            our_name("transformer.ln_f.bias").as_deref(),
            Some("transformer.ln_f.bias")
        );
        assert_eq!(
            our_name("lm_head.weight").as_deref(),
            Some("lm_head.weight")
        );
        assert_eq!(our_name("h.3.attn.bias"), None, "causal-mask buffer");
        assert_eq!(our_name("h.3.attn.masked_bias"), None);
        assert!(
            our_name("h.3.attn.c_attn.bias").is_some(),
            "a parameter, not the mask"
        );
    }
}
