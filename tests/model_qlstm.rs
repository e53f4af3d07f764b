//! The quasi-LSTM (Languini, arXiv 2309.11197): the block-parallel form against the
//! step-by-step recurrence, the carried state, the decoder against the forward, finite
//! differences against autograd, gradient flow, the initial loss and config errors.
//! Measured numbers are printed (run with `--nocapture` to see them).

use candle_core::{Device, Tensor};
use syllabus::model::qlstm::{qlstm_specs, Mixer, Qlstm, QlstmConfig};
use syllabus::model::{
    ArchSpec, Architecture, BuildOptions, Init, LanguageModel, ModelError, ModelRegistry,
    ParamSpec, Params, Precision, Timing,
};
use syllabus::rng::Rng;

type R = Result<(), ModelError>;

fn small(block_length: usize) -> QlstmConfig {
    QlstmConfig {
        vocab_size: 37,
        n_layer: 2,
        d_model: 16,
        n_head: 4,
        block_length,
        ff_dim: 32,
    }
}

/// Weights with std `std` instead of 0.02, so every gate takes varied values (forget gates
/// from near 0 to near 1) and the recurrence is really exercised; LayerNorm gains stay 1.
fn params(cfg: &QlstmConfig, std: f64, seed: u64) -> Result<Params, ModelError> {
    let specs: Vec<ParamSpec> = qlstm_specs(cfg)
        .into_iter()
        .map(|mut s| {
            if let Init::Normal(_) = s.init {
                s.init = Init::Normal(std);
            }
            s
        })
        .collect();
    Params::init(&specs, &mut Rng::new(seed), &Device::Cpu)
}

fn tokens(rng: &mut Rng, b: usize, t: usize, vocab: usize) -> Result<Tensor, ModelError> {
    let data: Vec<u32> = (0..b * t).map(|_| rng.below(vocab as u64) as u32).collect();
    Ok(Tensor::from_vec(data, (b, t), &Device::Cpu)?)
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("f32 tensor")
}

/// max |a − b| / max |b|: the error relative to the tensor's scale.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    diff / scale.max(1e-30)
}

fn inference(cfg: &QlstmConfig, p: &Params) -> Result<Qlstm, ModelError> {
    Qlstm::new(cfg, p, BuildOptions::inference())
}

/// Block lengths 1, 3, 4 and 16 at T = 10 (3 and 4 do not divide T, 16 exceeds it): hidden
/// states and logits of every position equal the step-by-step recurrence's. T > L for 1, 3
/// and 4, so this also checks the state carried across blocks.
#[test]
fn block_parallel_equals_the_recurrence() -> R {
    let p = params(&small(1), 0.3, 1)?;
    let x = tokens(&mut Rng::new(2), 3, 10, 37)?;
    for l in [1, 3, 4, 16] {
        let m = inference(&small(l), &p)?;
        let par = m.hidden_states_with(&x, Mixer::BlockParallel)?; // [B*T, D]
        let rec = m.hidden_states_with(&x, Mixer::Recurrent)?;
        let h_err = rel_err(&flat(&par), &flat(&rec));
        let z_err = rel_err(&flat(&m.project(&par)?), &flat(&m.project(&rec)?));
        eprintln!("L={l}: hidden rel err {h_err:.2e}, logits rel err {z_err:.2e}");
        assert!(h_err <= 1e-5 && z_err <= 1e-5, "L={l}: {h_err} {z_err}");
    }
    Ok(())
}

/// With L = 4, positions 4..8 are the second block. Without the carried state they would see
/// only tokens 4..8, i.e. equal a fresh run on those tokens; they must not.
#[test]
fn state_carried_across_blocks_changes_outputs() -> R {
    let p = params(&small(4), 0.3, 3)?;
    let m = inference(&small(4), &p)?;
    let x = tokens(&mut Rng::new(4), 1, 10, 37)?;
    let full = m.forward(&x)?.narrow(1, 4, 4)?; // [1, 4, V]
    let fresh = m.forward(&x.narrow(1, 4, 4)?)?; // [1, 4, V]
    let err = rel_err(&flat(&full), &flat(&fresh));
    eprintln!("second block with vs without carried state: rel diff {err:.2e}");
    assert!(err > 1e-2, "the carried state changed nothing: {err}");
    // And the first block is unaffected by what follows (causality).
    let head = m.forward(&x.narrow(1, 0, 4)?)?;
    let err0 = rel_err(&flat(&m.forward(&x)?.narrow(1, 0, 4)?), &flat(&head));
    assert!(err0 <= 1e-6, "{err0}");
    Ok(())
}

/// The decoder fed one token at a time gives the forward's logits at every position; feeding
/// a prompt at once gives the same last logits.
#[test]
fn decoder_matches_forward_at_every_position() -> R {
    let cfg = small(3);
    let p = params(&cfg, 0.3, 5)?;
    let m = inference(&cfg, &p)?;
    let ids: Vec<u32> = (0..11).map(|i| (i * 7 + 3) % 37).collect();
    let x = Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu)?;
    let logits = m.forward(&x)?; // [1, T, V]
    let mut dec = m.decoder().expect("qlstm has a decoder");
    let mut worst = 0f64;
    for (t, tok) in ids.iter().enumerate() {
        let got = dec.feed(&[*tok])?;
        let want = flat(&logits.narrow(1, t, 1)?);
        worst = worst.max(rel_err(&got, &want));
    }
    eprintln!("decoder vs forward: max rel err {worst:.2e}");
    assert!(worst <= 1e-5, "{worst}");
    let mut at_once = m.decoder().expect("decoder");
    let last = at_once.feed(&ids)?;
    let want = flat(&logits.narrow(1, ids.len() - 1, 1)?);
    assert!(rel_err(&last, &want) <= 1e-5);
    assert!(at_once.feed(&[37]).is_err(), "out-of-vocab token");
    assert!(m.decoder().expect("decoder").feed(&[]).is_err());
    Ok(())
}

/// Sum of per-sequence losses with parameter `name` entry `k` set to `v`.
fn loss_at(m: &Qlstm, p: &Params, name: &str, k: usize, v: f32, xy: (&Tensor, &Tensor)) -> f64 {
    let var = p.get(name).expect("param");
    let mut data = flat(var.as_tensor());
    data[k] = v;
    let t = Tensor::from_vec(data, var.dims(), &Device::Cpu).expect("tensor");
    var.set(&t).expect("set");
    let loss = m.per_sequence_loss(xy.0, xy.1).expect("loss");
    loss.sum_all()
        .and_then(|l| l.to_scalar::<f32>())
        .expect("scalar") as f64
}

/// Autograd against central differences on the block-parallel path (L = 3, T = 7: a carry
/// between blocks and a padded last block). The params are f32, so the differencing is f32
/// too (no f64 model path); a fourth-order stencil with step 3e-2 keeps the truncation error
/// below the f32 rounding of the loss (measured |fd − autograd| <= 5e-5 for gradients of
/// 2e-4 .. 1e-1). One entry of each kind of parameter, each gate's columns of `w_gates` once.
/// Tolerance: 2e-4 absolute + 1e-2 relative.
#[test]
fn finite_differences_match_autograd() -> R {
    let cfg = small(3);
    let p = params(&cfg, 0.3, 7)?;
    let m = Qlstm::new(&cfg, &p, BuildOptions::training())?;
    let mut rng = Rng::new(8);
    let (x, y) = (tokens(&mut rng, 2, 7, 37)?, tokens(&mut rng, 2, 7, 37)?);
    let grads = m.per_sequence_loss(&x, &y)?.sum_all()?.backward()?;
    let first_token = flat(&x.to_dtype(candle_core::DType::F32)?)[0] as usize;
    let d = cfg.d_model;
    let picks: Vec<(&str, usize)> = vec![
        ("transformer.wte.weight", first_token * d + 3),
        ("transformer.h.0.lstm.w_gates.weight", 5 * 4 * d + 2), // forget
        ("transformer.h.0.lstm.w_gates.weight", 2 * 4 * d + d + 7), // input
        ("transformer.h.1.lstm.w_gates.weight", 9 * 4 * d + 2 * d + 1), // cell input
        (
            "transformer.h.1.lstm.w_gates.weight",
            4 * 4 * d + 3 * d + 11,
        ), // output
        ("transformer.h.1.lstm.w_gates.bias", 4),
        ("transformer.h.0.lstm.c_proj.weight", 37),
        ("transformer.h.0.ln_1.weight", 6),
        ("transformer.h.1.mlp.c_fc.weight", 100),
        ("transformer.h.0.mlp.c_proj.bias", 2),
        ("transformer.ln_f.bias", 9),
        (
            "lm_head.weight",
            y.flatten_all()?.to_vec1::<u32>()?[0] as usize * d + 1,
        ),
    ];
    let eps = 3e-2f32;
    let mut failures = Vec::new();
    for (name, k) in picks {
        let var = p.get(name)?;
        let ad = flat(grads.get(var.as_tensor()).expect("gradient"))[k] as f64;
        let v0 = flat(var.as_tensor())[k];
        let f = |delta: f32| loss_at(&m, &p, name, k, v0 + delta, (&x, &y));
        let fd = (8.0 * (f(eps) - f(-eps)) - (f(2.0 * eps) - f(-2.0 * eps))) / (12.0 * eps as f64);
        loss_at(&m, &p, name, k, v0, (&x, &y)); // restore
        let err = (fd - ad).abs();
        eprintln!("{name}[{k}]: autograd {ad:+.6e}, fd {fd:+.6e}, |diff| {err:.2e}");
        if err > 2e-4 + 1e-2 * ad.abs() || ad == 0.0 {
            failures.push(format!("{name}[{k}]: autograd {ad}, fd {fd}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

/// After one `loss_and_grads` (the default autograd path), every parameter has a finite,
/// non-zero gradient; each gate's columns of `w_gates` are checked on their own.
#[test]
fn every_parameter_gets_a_finite_nonzero_gradient() -> R {
    let cfg = small(4);
    let p = Params::init(&qlstm_specs(&cfg), &mut Rng::new(9), &Device::Cpu)?;
    let model = cfg.build(&p, BuildOptions::training())?;
    let mut rng = Rng::new(10);
    // Every token id appears, so every embedding row gets gradient.
    let ids: Vec<u32> = (0..3 * 16).map(|i| i as u32 % 37).collect();
    let x = Tensor::from_vec(ids, (3, 16), &Device::Cpu)?;
    let y = tokens(&mut rng, 3, 16, 37)?;
    let step = model.loss_and_grads(&[(x, y)], Timing::Queued)?;
    let mut failures = Vec::new();
    for spec in cfg.param_specs() {
        let Some(g) = step.grads.get(&spec.name) else {
            failures.push(format!("{}: no gradient", spec.name));
            continue;
        };
        let parts: Vec<(String, Tensor)> = match spec.name.contains("w_gates") {
            true => ["f", "i", "z", "o"]
                .iter()
                .enumerate()
                .map(|(i, gate)| {
                    let last = g.rank() - 1;
                    Ok((
                        format!("{} ({gate})", spec.name),
                        g.narrow(last, i * cfg.d_model, cfg.d_model)?,
                    ))
                })
                .collect::<Result<_, ModelError>>()?,
            false => vec![(spec.name.clone(), g.clone())],
        };
        for (part, g) in parts {
            let g = flat(&g);
            if g.iter().any(|v| !v.is_finite()) {
                failures.push(format!("{part}: non-finite"));
            } else if g.iter().all(|v| *v == 0.0) {
                failures.push(format!("{part}: all zero"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(step.per_sequence.len(), 3);
    Ok(())
}

/// qlstm-tiny at the GPT-2 vocabulary starts at ~ln(50257) ≈ 10.82.
#[test]
fn initial_loss_is_about_ln_vocab() -> R {
    let spec = ArchSpec {
        preset: Some("qlstm-tiny".into()),
        fields: toml::Table::new(),
    };
    let arch = ModelRegistry::builtin()
        .create("qlstm", &spec)
        .expect("qlstm-tiny resolves");
    let p = Params::init(&arch.param_specs(), &mut Rng::new(11), &Device::Cpu)?;
    let m = arch.build(&p, BuildOptions::inference())?;
    let mut rng = Rng::new(12);
    let v = arch.vocab_size();
    let (x, y) = (tokens(&mut rng, 2, 32, v)?, tokens(&mut rng, 2, 32, v)?);
    let loss = m
        .per_sequence_loss(&x, &y)?
        .mean_all()?
        .to_scalar::<f32>()? as f64;
    let want = (v as f64).ln();
    eprintln!("initial loss {loss:.4} vs ln(V) {want:.4}");
    assert!((loss - want).abs() < 0.5, "{loss} vs {want}");
    Ok(())
}

/// Unknown keys and invalid shapes come back together, each naming its field; the resolved
/// table rebuilds the same architecture.
#[test]
fn config_errors_are_reported_together() {
    let registry = ModelRegistry::builtin();
    let mut fields = toml::Table::new();
    fields.insert("n_head".into(), toml::Value::Integer(3));
    fields.insert("n_heads".into(), toml::Value::Integer(4));
    let spec = ArchSpec {
        preset: Some("qlstm-tiny".into()),
        fields,
    };
    let errs = registry.create("qlstm", &spec).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs.iter().any(|e| e.contains("unknown field `n_heads`")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("n_head") && e.contains("divisible")),
        "{errs:?}"
    );

    let bad_preset = ArchSpec {
        preset: Some("qlstm-huge".into()),
        fields: toml::Table::new(),
    };
    let errs = registry.create("qlstm", &bad_preset).unwrap_err();
    assert!(
        errs[0].contains("qlstm-tiny"),
        "lists the presets: {errs:?}"
    );

    let no_preset = ArchSpec::default();
    let errs = registry.create("qlstm", &no_preset).unwrap_err();
    assert!(errs[0].contains("model.qlstm"), "{errs:?}");

    let arch = registry
        .create(
            "qlstm",
            &ArchSpec {
                preset: Some("qlstm-small".into()),
                ..ArchSpec::default()
            },
        )
        .expect("preset");
    let again = registry
        .rebuild("qlstm", &arch.resolved())
        .expect("rebuilds");
    assert_eq!(again.resolved(), arch.resolved());
    assert_eq!(arch.max_context(), None);
}

/// Any length runs (T = 1, T far beyond a block), and bf16 matmuls stay close to f32.
#[test]
fn any_length_and_bf16() -> R {
    let cfg = small(4);
    let p = params(&cfg, 0.1, 13)?;
    let m = inference(&cfg, &p)?;
    let one = tokens(&mut Rng::new(14), 2, 1, 37)?;
    assert_eq!(m.forward(&one)?.dims(), &[2, 1, 37]);
    let x = tokens(&mut Rng::new(15), 2, 50, 37)?;
    let f32_logits = flat(&m.forward(&x)?);
    let opts = BuildOptions::inference().with(Precision::Bf16, syllabus::kernels::Kernels::Fused);
    let bf16 = Qlstm::new(&cfg, &p, opts)?;
    let err = rel_err(&flat(&bf16.forward(&x)?), &f32_logits);
    eprintln!("bf16 vs f32 logits: rel err {err:.2e}");
    assert!(err < 3e-2, "{err}");
    Ok(())
}
