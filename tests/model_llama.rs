//! LLaMA: a model with known weights against `transformers`' numbers, RoPE against the
//! textbook rotation, gradients (flow and central differences), and the initial loss.

use candle_core::{Device, Tensor, Var};
use syllabus::model::llama::LlamaConfig;
use syllabus::model::rope::Rope;
use syllabus::model::{ArchSpec, Architecture, BuildOptions, LanguageModel, ModelError, Params};
use syllabus::rng::Rng;

type R = Result<(), ModelError>;

/// The shape of `scripts/llama_reference.py`.
fn reference_config() -> LlamaConfig {
    LlamaConfig {
        vocab_size: 11,
        n_positions: 16,
        n_layer: 2,
        n_head: 2,
        d_model: 8,
        ffn_hidden: Some(16),
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        tie_embeddings: false,
    }
}

/// The script's weights: element k of the j-th parameter in sorted-name order.
fn reference_params(cfg: &LlamaConfig) -> Result<Params, ModelError> {
    let specs = cfg.param_specs();
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    let mut tensors = std::collections::BTreeMap::new();
    for (j, name) in names.iter().enumerate() {
        let spec = specs.iter().find(|s| s.name == *name).expect("listed");
        let is_norm = name.ends_with("norm.weight");
        let values: Vec<f32> = (0..spec.numel())
            .map(|k| {
                let (k, j) = (k as f64, j as f64);
                match is_norm {
                    true => 1.0 + 0.1 * (k + 0.5 * j).sin(),
                    false => 0.5 * (1.3 * k + 0.7 * j + 0.1).sin(),
                }
            })
            .map(|v| v as f32)
            .collect();
        let t = Tensor::from_vec(values, spec.shape.as_slice(), &Device::Cpu)?;
        tensors.insert(name.to_string(), t);
    }
    Params::from_tensors(&specs, tensors, &Device::Cpu)
}

const TOKENS: [u32; 7] = [1, 5, 3, 7, 2, 9, 4];

/// `python scripts/llama_reference.py` (transformers' `LlamaForCausalLM` in float64).
const REFERENCE_LOGITS: [[f32; 11]; 7] = [
    [
        0.280399, 0.781761, -1.15751, 0.51693, 0.577532, -1.1649, 0.729452, 0.346481, -1.11819,
        0.908096, 0.0993374,
    ],
    [
        -0.191507, -0.260756, 0.484068, -0.282353, -0.167277, 0.470032, -0.360084, -0.0660289,
        0.434167, -0.421092, 0.0382857,
    ],
    [
        0.512246, -0.710627, 0.285055, 0.390804, -0.723525, 0.420968, 0.251212, -0.70282, 0.53733,
        0.0999526, -0.649474,
    ],
    [
        -0.284922, 1.09668, -0.945517, -0.0358386, 0.985726, -1.07012, 0.214909, 0.828994,
        -1.14501, 0.455676, 0.63376,
    ],
    [
        -0.880072, 0.17685, 0.681652, -0.941642, 0.374841, 0.521082, -0.959479, 0.555423, 0.336312,
        -0.932754, 0.710209,
    ],
    [
        0.529838, -0.411633, -0.0679987, 0.487925, -0.479438, 0.0499891, 0.423352, -0.524976,
        0.165655, 0.339116, -0.546133,
    ],
    [
        0.493753, 0.611585, -1.17993, 0.712262, 0.380797, -1.1395, 0.897691, 0.132323, -1.04615,
        1.04143, -0.122296,
    ],
];
const REFERENCE_MEAN_NLL: f64 = 3.3189200;

#[test]
fn known_weights_give_the_logits_transformers_gives() -> R {
    let cfg = reference_config();
    let params = reference_params(&cfg)?;
    let model = cfg.build(&params, BuildOptions::inference())?;
    let ids = Tensor::new(&TOKENS, &Device::Cpu)?.unsqueeze(0)?; // [1, 7]
    let logits = model.forward(&ids)?.squeeze(0)?.to_vec2::<f32>()?; // [7, 11]
    let mut worst = 0f32;
    for (row, want) in logits.iter().zip(REFERENCE_LOGITS) {
        for (got, want) in row.iter().zip(want) {
            worst = worst.max((got - want).abs());
        }
    }
    eprintln!("largest logit difference from transformers: {worst:.2e}");
    assert!(worst < 2e-5, "largest logit difference {worst}");
    let x = ids.narrow(1, 0, 6)?;
    let y = ids.narrow(1, 1, 6)?;
    let loss = model.per_sequence_loss(&x, &y)?.to_vec1::<f32>()?[0] as f64;
    assert!((loss - REFERENCE_MEAN_NLL).abs() < 1e-5, "{loss}");
    Ok(())
}

#[test]
fn rope_rotates_each_pair_by_its_angle() -> R {
    let (hd, t, theta) = (6, 5, 100.0);
    let rope = Rope::new(hd, 8, theta, &Device::Cpu)?;
    let x: Vec<f32> = (0..t * hd)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
        .collect();
    let input = Tensor::from_vec(x.clone(), (1, t, 1, hd), &Device::Cpu)?;
    let got = rope.apply(&input)?.flatten_all()?.to_vec1::<f32>()?;
    for pos in 0..t {
        for i in 0..hd / 2 {
            // Pair i is the complex number (x[i], x[i + hd/2]), turned by pos · θ^(−2i/hd).
            let angle = pos as f64 * theta.powf(-2.0 * i as f64 / hd as f64);
            let (a, b) = (x[pos * hd + i] as f64, x[pos * hd + i + hd / 2] as f64);
            let re = a * angle.cos() - b * angle.sin();
            let im = a * angle.sin() + b * angle.cos();
            assert!(
                (got[pos * hd + i] as f64 - re).abs() < 1e-5,
                "pos {pos} pair {i}"
            );
            assert!(
                (got[pos * hd + i + hd / 2] as f64 - im).abs() < 1e-5,
                "pos {pos} pair {i}"
            );
        }
    }
    Ok(())
}

fn tokens(rng: &mut Rng, b: usize, t: usize, vocab: usize) -> Result<Tensor, ModelError> {
    let data: Vec<u32> = (0..b * t).map(|_| rng.below(vocab as u64) as u32).collect();
    Ok(Tensor::from_vec(data, (b, t), &Device::Cpu)?)
}

fn mean_loss(m: &dyn LanguageModel, x: &Tensor, y: &Tensor) -> Result<f64, ModelError> {
    Ok(m.per_sequence_loss(x, y)?.mean_all()?.to_scalar::<f32>()? as f64)
}

#[test]
fn every_parameter_gets_a_finite_nonzero_gradient_tied_or_not() -> R {
    for tie in [false, true] {
        let cfg = LlamaConfig {
            tie_embeddings: tie,
            ..reference_config()
        };
        let mut rng = Rng::new(3);
        let params = Params::init(&cfg.param_specs(), &mut rng, &Device::Cpu)?;
        let model = cfg.build(&params, BuildOptions::training())?;
        let (x, y) = (tokens(&mut rng, 3, 9, 11)?, tokens(&mut rng, 3, 9, 11)?);
        let step = model.loss_and_grads(&[(x, y)], syllabus::model::Timing::Queued)?;
        assert_eq!(step.grads.len(), params.len(), "tie = {tie}");
        for (name, g) in &step.grads {
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(
                norm.is_finite() && norm > 0.0,
                "{name}: |g|² = {norm} (tie = {tie})"
            );
        }
    }
    Ok(())
}

fn set_element(var: &Var, index: usize, value: f32) -> R {
    let mut data = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    data[index] = value;
    var.set(&Tensor::from_vec(data, var.dims(), &Device::Cpu)?)?;
    Ok(())
}

#[test]
fn gradients_match_central_differences() -> R {
    let cfg = reference_config();
    let params = reference_params(&cfg)?;
    let mut rng = Rng::new(9);
    let (x, y) = (tokens(&mut rng, 2, 6, 11)?, tokens(&mut rng, 2, 6, 11)?);
    let train = cfg.build(&params, BuildOptions::training())?;
    let grads = train.loss_and_grads(&[(x.clone(), y.clone())], syllabus::model::Timing::Queued)?;
    let eval = cfg.build(&params, BuildOptions::inference())?; // shares the Vars' storage
    let mut failures = Vec::new();
    for (name, var) in params.iter() {
        let g = grads.grads[name].flatten_all()?.to_vec1::<f32>()?;
        // The entry with the largest analytic gradient: an informative check.
        let (index, &analytic) = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .expect("non-empty");
        let orig = var.as_tensor().flatten_all()?.to_vec1::<f32>()?[index];
        let eps = 1e-2f32;
        set_element(var, index, orig + eps)?;
        let plus = mean_loss(eval.as_ref(), &x, &y)?;
        set_element(var, index, orig - eps)?;
        let minus = mean_loss(eval.as_ref(), &x, &y)?;
        set_element(var, index, orig)?;
        let numeric = (plus - minus) / (2.0 * eps as f64);
        let analytic = analytic as f64;
        let tol = 2e-2 * analytic.abs().max(numeric.abs()) + 1e-4;
        if (analytic - numeric).abs() > tol || numeric.abs() < 1e-3 {
            failures.push(format!(
                "{name}[{index}]: analytic {analytic:.6e} numeric {numeric:.6e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

#[test]
fn initial_loss_is_ln_vocab_for_the_tiny_preset() -> R {
    let spec = ArchSpec {
        preset: Some("llama-tiny".into()),
        fields: toml::Table::new(),
    };
    let arch =
        LlamaConfig::construct(&spec).map_err(|e| ModelError::InvalidConfig(e.join("; ")))?;
    let mut rng = Rng::new(4);
    let params = Params::init(&arch.param_specs(), &mut rng, &Device::Cpu)?;
    let model = arch.build(&params, BuildOptions::inference())?;
    let v = arch.vocab_size();
    let (x, y) = (tokens(&mut rng, 2, 64, v)?, tokens(&mut rng, 2, 64, v)?);
    let loss = mean_loss(model.as_ref(), &x, &y)?;
    let ln_v = (v as f64).ln();
    assert!(
        (loss - ln_v).abs() < 0.1,
        "initial loss {loss} vs ln V {ln_v}"
    );
    Ok(())
}
