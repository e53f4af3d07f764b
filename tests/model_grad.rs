//! Model correctness: gradient flow, finite differences, initial loss, overfitting, the loss
//! paths, parameter I/O and init determinism. Plus an ignored timing probe (`bench_tiny_step`).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use syllabus::model::loss::{token_nll_composed, token_nll_fused};
use syllabus::model::{Architecture, Gpt, GptConfig, ModelError, Params};
use syllabus::rng::Rng;

type R = Result<(), ModelError>;

fn cfg(
    vocab_size: usize,
    n_positions: usize,
    n_layer: usize,
    n_head: usize,
    d: usize,
) -> GptConfig {
    GptConfig {
        vocab_size,
        n_positions,
        n_layer,
        n_head,
        d_model: d,
    }
}

fn tokens(rng: &mut Rng, b: usize, t: usize, vocab: usize) -> Result<Tensor, ModelError> {
    let data: Vec<u32> = (0..b * t).map(|_| rng.below(vocab as u64) as u32).collect();
    Ok(Tensor::from_vec(data, (b, t), &Device::Cpu)?) // [B, T]
}

fn mean_loss(gpt: &Gpt, x: &Tensor, y: &Tensor) -> Result<Tensor, ModelError> {
    Ok(gpt.per_sequence_loss(x, y)?.mean_all()?)
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("f32 tensor")
}

#[test]
fn every_parameter_gets_a_finite_nonzero_gradient() -> R {
    let cfg = cfg(64, 16, 2, 2, 16);
    let mut rng = Rng::new(11);
    let params = Params::init_gpt2(&cfg, &mut rng, &Device::Cpu)?;
    let gpt = Gpt::new(&cfg, &params)?;
    // T = n_positions so every wpe row is used and receives gradient.
    let (x, y) = (tokens(&mut rng, 3, 16, 64)?, tokens(&mut rng, 3, 16, 64)?);
    let grads = mean_loss(&gpt, &x, &y)?.backward()?;
    let mut failures = Vec::new();
    for (name, var) in params.iter() {
        let Some(g) = grads.get(var.as_tensor()) else {
            failures.push(format!("{name}: no gradient"));
            continue;
        };
        // q, k and v share c_attn: check each third of its output columns on its own, since a
        // softmax without backward zeroes exactly the q and k parts.
        let parts: Vec<(String, Tensor)> = if name.contains(".c_attn.") {
            let d = cfg.d_model;
            let last = g.rank() - 1;
            ["q", "k", "v"]
                .iter()
                .enumerate()
                .map(|(i, p)| Ok((format!("{name} ({p} part)"), g.narrow(last, i * d, d)?)))
                .collect::<Result<_, ModelError>>()?
        } else {
            vec![(name.clone(), g.clone())]
        };
        for (part, g) in parts {
            let g = flat(&g);
            // The k bias adds q·b_k to a whole row of scores, which the softmax cancels: its
            // gradient is analytically zero (only rounding noise), so it is exempt.
            let zero_by_design = part.contains("c_attn.bias (k part)");
            if g.iter().any(|v| !v.is_finite()) {
                failures.push(format!("{part}: non-finite"));
            } else if !zero_by_design && g.iter().all(|v| *v == 0.0) {
                failures.push(format!("{part}: all zero"));
            }
        }
    }
    assert_eq!(params.len(), 2 + 2 * 12 + 2);
    assert!(failures.is_empty(), "bad gradients: {failures:#?}");
    Ok(())
}

/// Redraws every parameter at a scale where gradients (q and k included) are large enough for
/// f32 finite differences to be meaningful; GPT-2's 0.02 init makes attention nearly uniform.
fn rescale_for_fd(params: &Params, rng: &mut Rng) -> R {
    for (name, var) in params.iter() {
        let n = var.elem_count();
        let base = if name.contains("ln_") && name.ends_with(".weight") {
            1.0
        } else {
            0.0
        };
        let data: Vec<f32> = (0..n).map(|_| (base + 0.5 * rng.normal()) as f32).collect();
        var.set(&Tensor::from_vec(data, var.shape(), &Device::Cpu)?)?;
    }
    Ok(())
}

fn set_element(var: &Var, index: usize, value: f32) -> R {
    let mut data = flat(var.as_tensor());
    data[index] = value;
    var.set(&Tensor::from_vec(data, var.shape(), &Device::Cpu)?)?;
    Ok(())
}

fn loss_f64(gpt: &Gpt, x: &Tensor, y: &Tensor) -> Result<f64, ModelError> {
    let per_seq = gpt.per_sequence_loss(x, y)?.to_vec1::<f32>()?;
    Ok(per_seq.iter().map(|v| *v as f64).sum::<f64>() / per_seq.len() as f64)
}

#[test]
fn gradients_match_central_differences() -> R {
    let (v, d) = (11, 8);
    let cfg = cfg(v, 8, 2, 2, d);
    let mut rng = Rng::new(5);
    let params = Params::init_gpt2(&cfg, &mut rng, &Device::Cpu)?;
    rescale_for_fd(&params, &mut rng)?;
    let (x, y) = (tokens(&mut rng, 2, 5, v)?, tokens(&mut rng, 2, 5, v)?);
    let grads = mean_loss(&Gpt::new(&cfg, &params)?, &x, &y)?.backward()?;
    // Shares storage with the Vars, so `Var::set` below is seen by every evaluation.
    let eval = Gpt::new_inference(&cfg, &params)?;
    let h = |i: usize, rest: &str| format!("transformer.h.{i}.{rest}");
    // (name, candidate flat indices); the candidate with the largest analytic gradient is
    // checked, so every check is informative (a ~0 gradient would pass vacuously).
    // c_attn weight is [D, 3D]: columns [0, D) are q, [D, 2D) k, [2D, 3D) v.
    let cols = |lo: usize, hi: usize| -> Vec<usize> {
        (0..d)
            .flat_map(|r| (lo..hi).map(move |c| r * 3 * d + c))
            .collect()
    };
    let all = |name: &str| -> Result<Vec<usize>, ModelError> {
        Ok((0..params.get(name)?.elem_count()).collect())
    };
    let checks: Vec<(String, Vec<usize>)> = vec![
        ("transformer.wte.weight".into(), (3 * d..4 * d).collect()), // row of token 3
        ("transformer.wpe.weight".into(), (d..2 * d).collect()),     // row 1 < T
        (h(0, "ln_1.weight"), all(&h(0, "ln_1.weight"))?),
        (h(0, "attn.c_attn.weight"), cols(0, d)),     // q
        (h(0, "attn.c_attn.weight"), cols(d, 2 * d)), // k
        (h(0, "attn.c_attn.weight"), cols(2 * d, 3 * d)), // v
        (h(1, "attn.c_attn.weight"), cols(0, d)),     // q, second layer
        (h(1, "attn.c_attn.weight"), cols(d, 2 * d)), // k, second layer
        (
            h(1, "attn.c_proj.weight"),
            all(&h(1, "attn.c_proj.weight"))?,
        ),
        (h(0, "mlp.c_fc.bias"), all(&h(0, "mlp.c_fc.bias"))?),
        (h(1, "mlp.c_proj.weight"), all(&h(1, "mlp.c_proj.weight"))?),
        (
            "transformer.ln_f.bias".into(),
            all("transformer.ln_f.bias")?,
        ),
    ];
    let eps = 1e-2f32;
    let mut failures = Vec::new();
    let mut informative = 0;
    for (name, candidates) in &checks {
        let var = params.get(name)?;
        let grad = flat(grads.get(var.as_tensor()).expect("gradient present"));
        let index = &candidates
            .iter()
            .copied()
            .max_by(|a, b| grad[*a].abs().total_cmp(&grad[*b].abs()))
            .expect("non-empty candidates");
        let analytic = grad[*index] as f64;
        let orig = flat(var.as_tensor())[*index];
        set_element(var, *index, orig + eps)?;
        let plus = loss_f64(&eval, &x, &y)?;
        set_element(var, *index, orig - eps)?;
        let minus = loss_f64(&eval, &x, &y)?;
        set_element(var, *index, orig)?;
        let numeric = (plus - minus) / (2.0 * eps as f64);
        let tol = 2e-2 * analytic.abs().max(numeric.abs()) + 1e-4;
        if (analytic - numeric).abs() > tol {
            failures.push(format!(
                "{name}[{index}]: analytic {analytic:.6e} numeric {numeric:.6e}"
            ));
        }
        if numeric.abs() > 1e-3 {
            informative += 1;
        }
    }
    assert!(failures.is_empty(), "gradient mismatches: {failures:#?}");
    assert_eq!(informative, checks.len(), "some checked gradients are ~0");
    Ok(())
}

#[test]
fn initial_loss_is_ln_vocab_for_tiny_preset() -> R {
    let cfg = GptConfig::preset("tiny").expect("tiny preset");
    let mut rng = Rng::new(3);
    let params = Params::init_gpt2(&cfg, &mut rng, &Device::Cpu)?;
    let gpt = Gpt::new_inference(&cfg, &params)?;
    let v = cfg.vocab_size;
    let (x, y) = (tokens(&mut rng, 2, 32, v)?, tokens(&mut rng, 2, 32, v)?);
    let loss = loss_f64(&gpt, &x, &y)?;
    let want = (v as f64).ln();
    assert!(
        (loss - want).abs() < 0.1,
        "initial loss {loss}, ln(V) = {want}"
    );
    Ok(())
}

#[test]
fn overfits_one_batch() -> R {
    let cfg = cfg(64, 16, 2, 2, 32);
    let mut rng = Rng::new(9);
    let params = Params::init_gpt2(&cfg, &mut rng, &Device::Cpu)?;
    let gpt = Gpt::new(&cfg, &params)?;
    let (x, y) = (tokens(&mut rng, 4, 16, 64)?, tokens(&mut rng, 4, 16, 64)?);
    // Plain Adam (no decay), written inline so the test does not depend on src/optim.
    let (lr, b1, b2, eps) = (1e-2, 0.9f64, 0.999f64, 1e-8);
    let vars: Vec<&Var> = params.iter().map(|(_, v)| v).collect();
    let mut m: Vec<Tensor> = vars
        .iter()
        .map(|v| v.zeros_like())
        .collect::<Result<_, _>>()?;
    let mut s: Vec<Tensor> = m.clone();
    let mut loss = f32::INFINITY;
    for step in 1..=200 {
        let l = mean_loss(&gpt, &x, &y)?;
        loss = l.to_scalar::<f32>()?;
        let grads = l.backward()?;
        let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
        for (i, var) in vars.iter().enumerate() {
            let g = grads.get(var.as_tensor()).expect("gradient present");
            m[i] = ((&m[i] * b1)? + (g * (1.0 - b1))?)?;
            s[i] = ((&s[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m[i] / c1)? / ((&s[i] / c2)?.sqrt()? + eps)?)?;
            var.set(&(var.as_tensor() - (update * lr)?)?.detach())?;
        }
    }
    assert!(loss < 0.1, "loss after 200 steps: {loss}");
    Ok(())
}

#[test]
fn per_sequence_loss_is_per_row_mean_of_token_nll() -> R {
    let cfg = cfg(64, 16, 2, 2, 16);
    let mut rng = Rng::new(4);
    let params = Params::init_gpt2(&cfg, &mut rng, &Device::Cpu)?;
    let gpt = Gpt::new_inference(&cfg, &params)?;
    let (x, y) = (tokens(&mut rng, 3, 10, 64)?, tokens(&mut rng, 3, 10, 64)?);
    let per_seq = gpt.per_sequence_loss(&x, &y)?;
    assert_eq!(per_seq.dims(), &[3]);
    let logits = gpt.forward(&x)?.reshape((30, 64))?; // [B*T, V]
    let nll = token_nll_composed(&logits, &y.flatten_all()?)?; // [B*T]
    let by_row = flat(&nll.reshape((3, 10))?.mean(1)?);
    for (a, b) in flat(&per_seq).iter().zip(&by_row) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let all_tokens = nll.mean_all()?.to_scalar::<f32>()?;
    let mean_seq = per_seq.mean_all()?.to_scalar::<f32>()?;
    assert!((all_tokens - mean_seq).abs() < 1e-5);
    Ok(())
}

#[test]
fn fused_and_composed_nll_agree_in_value_and_gradient() -> R {
    let (n, v) = (37, 1000);
    let mut rng = Rng::new(21);
    let data: Vec<f32> = (0..n * v).map(|_| (3.0 * rng.normal()) as f32).collect();
    let logits = Var::from_vec(data, (n, v), &Device::Cpu)?;
    let targets = Tensor::from_vec(
        (0..n).map(|_| rng.below(v as u64) as u32).collect(),
        n,
        &Device::Cpu,
    )?;
    // Random per-token weights exercise the upstream-gradient scaling in the fused backward.
    let w = Tensor::from_vec(
        (0..n).map(|_| rng.next_f64() as f32).collect(),
        n,
        &Device::Cpu,
    )?;
    let mut results = Vec::new();
    for fused in [true, false] {
        let nll = if fused {
            token_nll_fused(logits.as_tensor(), &targets)?
        } else {
            token_nll_composed(logits.as_tensor(), &targets)?
        };
        let grads = (&nll * &w)?.sum_all()?.backward()?;
        results.push((
            flat(&nll),
            flat(grads.get(logits.as_tensor()).expect("grad")),
        ));
    }
    let close = |a: &[f32], b: &[f32], what: &str| {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    };
    close(&results[0].0, &results[1].0, "nll");
    close(&results[0].1, &results[1].1, "grad");
    let out_of_range = Tensor::from_vec(vec![v as u32; n], n, &Device::Cpu)?;
    let err = token_nll_fused(logits.as_tensor(), &out_of_range).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    Ok(())
}

#[test]
fn from_tensors_names_every_bad_key_and_safetensors_round_trips() -> R {
    let cfg = cfg(32, 8, 2, 2, 8);
    let params = Params::init_gpt2(&cfg, &mut Rng::new(1), &Device::Cpu)?;
    let mut tensors: BTreeMap<String, Tensor> = params.to_tensors();
    tensors.remove("transformer.h.1.ln_2.bias");
    tensors.insert(
        "lm_head.weight".into(),
        Tensor::zeros((32, 8), DType::F32, &Device::Cpu)?,
    );
    tensors.insert(
        "transformer.wpe.weight".into(),
        Tensor::zeros((9, 8), DType::F32, &Device::Cpu)?,
    );
    let err = Params::from_tensors(&cfg.param_specs(), tensors, &Device::Cpu)
        .unwrap_err()
        .to_string();
    for needle in [
        "transformer.h.1.ln_2.bias",
        "lm_head.weight",
        "transformer.wpe.weight",
        "[9, 8]",
    ] {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("model.safetensors");
    params.save_safetensors(&path)?;
    let loaded = Params::load_safetensors(&cfg.param_specs(), &path, &Device::Cpu)?;
    assert_eq!(loaded.len(), params.len());
    for ((na, a), (nb, b)) in params.iter().zip(loaded.iter()) {
        assert_eq!(na, nb);
        let bits = |t: &Tensor| flat(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a.as_tensor()), bits(b.as_tensor()), "{na}");
    }
    Ok(())
}

#[test]
fn init_is_deterministic_in_the_seed() -> R {
    let cfg = cfg(50, 8, 2, 2, 16);
    let a = Params::init_gpt2(&cfg, &mut Rng::new(42), &Device::Cpu)?;
    let b = Params::init_gpt2(&cfg, &mut Rng::new(42), &Device::Cpu)?;
    let c = Params::init_gpt2(&cfg, &mut Rng::new(43), &Device::Cpu)?;
    let bits = |p: &Params| -> Vec<u32> {
        p.iter()
            .flat_map(|(_, v)| flat(v.as_tensor()))
            .map(f32::to_bits)
            .collect()
    };
    assert_eq!(bits(&a), bits(&b));
    assert_ne!(bits(&a), bits(&c));
    assert_eq!(a.num_elements(), cfg.num_params());
    // Spot-check the init scheme: LayerNorm gains 1, biases 0, residual projections scaled.
    let ln = flat(a.get("transformer.h.0.ln_1.weight")?.as_tensor());
    assert!(ln.iter().all(|v| *v == 1.0));
    let bias = flat(a.get("transformer.h.1.mlp.c_fc.bias")?.as_tensor());
    assert!(bias.iter().all(|v| *v == 0.0));
    Ok(())
}

#[test]
fn forward_backward_is_bit_reproducible() -> R {
    let cfg = cfg(2000, 32, 2, 2, 32);
    let run = || -> Result<(u32, Vec<u32>), ModelError> {
        let mut rng = Rng::new(8);
        let params = Params::init_gpt2(&cfg, &mut rng, &Device::Cpu)?;
        let (x, y) = (
            tokens(&mut rng, 4, 32, 2000)?,
            tokens(&mut rng, 4, 32, 2000)?,
        );
        let loss = mean_loss(&Gpt::new(&cfg, &params)?, &x, &y)?;
        let grads = loss.backward()?;
        let mut bits = Vec::new();
        for (_, var) in params.iter() {
            let g = grads.get(var.as_tensor()).expect("gradient present");
            bits.extend(flat(g).iter().map(|v| v.to_bits()));
        }
        Ok((loss.to_scalar::<f32>()?.to_bits(), bits))
    };
    assert!(run()? == run()?, "two identical runs differ");
    Ok(())
}
