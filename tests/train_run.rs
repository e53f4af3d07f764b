//! End-to-end training behaviour on a tiny model: determinism, resume equivalence, the
//! non-finite guard, run-directory safety and checkpoint integrity.

mod common;

use std::collections::BTreeMap;

use candle_core::Device;
use syllabus::train::{checkpoint, train, TrainError, TrainOptions};

fn weights(run_dir: &std::path::Path) -> BTreeMap<String, Vec<f32>> {
    let path = checkpoint::latest(run_dir).unwrap().expect("a checkpoint");
    let ckpt = checkpoint::load(&path, &Device::Cpu).unwrap();
    ckpt.params
        .to_tensors()
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn same_seed_gives_identical_loss_sequences_and_weights() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = train(
        &common::tiny_config(a.path(), 6, ""),
        &TrainOptions::default(),
    )
    .unwrap();
    let sb = train(
        &common::tiny_config(b.path(), 6, ""),
        &TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(sa.losses.len(), 6);
    assert_eq!(sa.losses, sb.losses, "bit-identical losses");
    assert_eq!(
        weights(&a.path().join("run")),
        weights(&b.path().join("run"))
    );
    assert!(sa.losses.iter().all(|l| l.is_finite()));
}

#[test]
fn n_steps_then_resume_k_steps_equals_n_plus_k() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let full = train(
        &common::tiny_config(a.path(), 8, ""),
        &TrainOptions::default(),
    )
    .unwrap();

    let cfg = common::tiny_config(b.path(), 8, "");
    let first = train(
        &cfg,
        &TrainOptions {
            stop_after: Some(5),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.steps, 5);
    let rest = train(
        &cfg,
        &TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rest.steps, 8);
    let stitched: Vec<f64> = first.losses.iter().chain(&rest.losses).copied().collect();
    assert_eq!(stitched, full.losses, "loss sequence continues bit for bit");
    assert_eq!(
        weights(&a.path().join("run")),
        weights(&b.path().join("run"))
    );
    assert_eq!(rest.tokens_seen, full.tokens_seen);
}

#[test]
fn existing_run_is_refused_without_overwrite_and_resume_needs_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config(dir.path(), 2, "");
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let err = train(&cfg, &resume).unwrap_err().to_string();
    assert!(err.contains("no complete checkpoint"), "{err}");

    train(&cfg, &TrainOptions::default()).unwrap();
    let err = train(&cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already holds a run") && err.contains("--overwrite"),
        "{err}"
    );
    let overwrite = TrainOptions {
        overwrite: true,
        ..Default::default()
    };
    train(&cfg, &overwrite).unwrap();

    let other = common::tiny_config(dir.path(), 3, "");
    let err = train(&other, &resume).unwrap_err().to_string();
    assert!(err.contains("train.steps: 2 -> 3"), "{err}");
}

#[test]
fn diverging_run_skips_updates_then_stops_with_a_usable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // An absurd LR blows the weights up after the first update; every later step is
    // non-finite and must be skipped without touching the weights.
    let mut cfg = common::tiny_config(dir.path(), 20, "");
    cfg.optim.lr = 1e30;
    cfg.optim.grad_clip = 0.0;
    cfg.train.max_consecutive_skips = 3;
    let err = train(&cfg, &TrainOptions::default()).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { skips: 3, .. }),
        "{err}"
    );
    let run_dir = dir.path().join("run");
    let path = checkpoint::latest(&run_dir)
        .unwrap()
        .expect("checkpoint written on stop");
    let ckpt = checkpoint::load(&path, &Device::Cpu).unwrap();
    assert_eq!(ckpt.manifest.state.consecutive_skips, 3);
}

#[test]
fn corrupted_or_truncated_checkpoint_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    train(
        &common::tiny_config(dir.path(), 3, ""),
        &TrainOptions::default(),
    )
    .unwrap();
    let path = checkpoint::latest(&dir.path().join("run"))
        .unwrap()
        .unwrap();
    let model = path.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&model, &bytes).unwrap();
    let err = checkpoint::load(&path, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    std::fs::write(&model, &bytes[..100]).unwrap();
    let err = checkpoint::load(&path, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn run_writes_events_metrics_and_keeps_last_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let s = train(
        &common::tiny_config(dir.path(), 9, ""),
        &TrainOptions::default(),
    )
    .unwrap();
    let run = dir.path().join("run");
    let kept: Vec<u64> = checkpoint::list(&run)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(kept, vec![6, 9], "keep_last = 2");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for tag in [
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "eval/loss",
        "eval/ppl",
        "perf/mfu",
    ] {
        assert!(metrics.contains(tag), "metrics.jsonl lacks {tag}");
    }
    let events = std::fs::read_dir(&run)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().starts_with("events.out.tfevents.")
        })
        .count();
    assert_eq!(events, 1);
    assert!(s.final_eval.loss.is_finite());
    assert!(run.join("config.toml").exists() && run.join("summary.json").exists());
}
