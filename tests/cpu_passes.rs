//! The CPU passes (`model/cpu`, the path training takes on the CPU in f32) against candle's
//! autograd over composed ops: losses and every gradient, with gradient accumulation over
//! micro-batches, and the forward-only entry points against the training forward.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use syllabus::kernels::Kernels;
use syllabus::model::{Gpt, GptConfig, LossAndGrads, ModelError, Params, Timing};
use syllabus::rng::Rng;

type R = Result<(), ModelError>;

/// Vocabulary over one lm_head chunk (2048) and T over one attention query block (64), so the
/// partial chunk and block paths run; head_dim 12 leaves a SIMD tail.
fn config() -> GptConfig {
    GptConfig {
        vocab_size: 2100,
        n_positions: 80,
        n_layer: 2,
        n_head: 2,
        d_model: 24,
    }
}

fn batch(rng: &mut Rng, b: usize, t: usize, v: usize) -> Result<(Tensor, Tensor), ModelError> {
    let ids: Vec<u32> = (0..b * (t + 1))
        .map(|_| rng.below(v as u64) as u32)
        .collect();
    let block = Tensor::from_vec(ids, (b, t + 1), &Device::Cpu)?;
    Ok((
        block.narrow(1, 0, t)?.contiguous()?,
        block.narrow(1, 1, t)?.contiguous()?,
    ))
}

/// Parameters with larger-than-init values, so every term of every gradient matters.
fn params(cfg: &GptConfig) -> Result<Params, ModelError> {
    let mut rng = Rng::new(11);
    let params = Params::init_gpt2(cfg, &mut rng, &Device::Cpu)?;
    let mut scaled = BTreeMap::new();
    for (name, var) in params.iter() {
        let noise: Vec<f32> = (0..var.elem_count())
            .map(|_| (rng.normal() * 0.3) as f32)
            .collect();
        let noise = Tensor::from_vec(noise, var.shape(), &Device::Cpu)?;
        scaled.insert(name.clone(), (var.as_tensor() + noise)?);
    }
    Params::from_tensors(
        &syllabus::model::Architecture::param_specs(cfg),
        scaled,
        &Device::Cpu,
    )
}

fn run(
    params: &Params,
    kernels: Kernels,
    batches: &[(Tensor, Tensor)],
) -> Result<LossAndGrads, ModelError> {
    let gpt = Gpt::new(&config(), params)?.with_kernels(kernels);
    assert_eq!(gpt.uses_cpu_passes(), kernels == Kernels::Fused);
    gpt.loss_and_grads(batches, Timing::Queued)
}

#[test]
fn cpu_passes_match_the_composed_graph_with_accumulation() -> R {
    let cfg = config();
    let params = params(&cfg)?;
    let mut rng = Rng::new(3);
    let batches = vec![
        batch(&mut rng, 3, 70, cfg.vocab_size)?,
        batch(&mut rng, 3, 70, cfg.vocab_size)?,
    ];
    let fast = run(&params, Kernels::Fused, &batches)?;
    let reference = run(&params, Kernels::Composed, &batches)?;
    assert_eq!(fast.per_sequence.len(), 6);
    for (a, b) in fast.per_sequence.iter().zip(&reference.per_sequence) {
        assert!((a - b).abs() < 1e-5 * b.abs(), "loss {a} vs {b}");
    }
    assert_eq!(fast.grads.len(), params.len());
    for (name, g_ref) in &reference.grads {
        let g = fast
            .grads
            .get(name)
            .ok_or(ModelError::NoGradient(name.clone()))?;
        let (g, g_ref) = (
            g.flatten_all()?.to_vec1::<f32>()?,
            g_ref.flatten_all()?.to_vec1::<f32>()?,
        );
        let norm = g_ref
            .iter()
            .map(|x| (*x as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let diff = g
            .iter()
            .zip(&g_ref)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(norm > 0.0, "{name}: zero reference gradient");
        assert!(
            diff <= 2e-5 * norm,
            "{name}: relative error {}",
            diff / norm
        );
    }
    Ok(())
}

#[test]
fn forward_only_entry_points_match_the_training_forward() -> R {
    let cfg = config();
    let params = params(&cfg)?;
    let mut rng = Rng::new(4);
    let (x, y) = batch(&mut rng, 2, 70, cfg.vocab_size)?;
    let trained = run(&params, Kernels::Fused, &[(x.clone(), y.clone())])?;
    let inference = Gpt::new_inference(&cfg, &params)?;
    assert!(inference.uses_cpu_passes());
    // Same arithmetic whether the logits are kept for a backward or not.
    let scored = inference.per_sequence_loss(&x, &y)?.to_vec1::<f32>()?;
    assert_eq!(scored, trained.per_sequence);
    let reference = Gpt::new_inference(&cfg, &params)?.with_kernels(Kernels::Composed);
    let (h, h_ref) = (inference.hidden_states(&x)?, reference.hidden_states(&x)?);
    let diff = (&h - &h_ref)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff < 1e-4, "hidden states differ by {diff}");
    let logits = inference.forward(&x)?;
    assert_eq!(logits.dims(), &[2, 70, cfg.vocab_size]);
    Ok(())
}

#[test]
fn out_of_vocabulary_ids_are_errors_not_panics() -> R {
    let cfg = config();
    let params = params(&cfg)?;
    let bad = Tensor::from_vec(vec![1u32, 2, cfg.vocab_size as u32], (1, 3), &Device::Cpu)?;
    let ok = Tensor::from_vec(vec![1u32, 2, 3], (1, 3), &Device::Cpu)?;
    let train = Gpt::new(&cfg, &params)?;
    let err = train
        .loss_and_grads(&[(bad.clone(), ok.clone())], Timing::Queued)
        .unwrap_err()
        .to_string();
    assert!(err.contains("2100"), "{err}");
    assert!(train
        .loss_and_grads(&[(ok.clone(), bad.clone())], Timing::Queued)
        .is_err());
    let inference = Gpt::new_inference(&cfg, &params)?;
    assert!(inference.per_sequence_loss(&ok, &bad).is_err());
    assert!(inference.hidden_states(&bad).is_err());
    Ok(())
}
