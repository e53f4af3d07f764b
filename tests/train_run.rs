//! End-to-end training behaviour on a tiny model: determinism, resume equivalence, the
//! non-finite guard, run-directory safety and checkpoint integrity.

mod common;

use std::collections::BTreeMap;

use candle_core::Device;
use syllabus::config::Config;
use syllabus::model::ModelRegistry;
use syllabus::plugins::Plugins;
use syllabus::train::{checkpoint, train, train_with, TrainError, TrainOptions};

fn weights(run_dir: &std::path::Path) -> BTreeMap<String, Vec<f32>> {
    let path = checkpoint::latest(run_dir).unwrap().expect("a checkpoint");
    let ckpt = checkpoint::load(&path, &ModelRegistry::builtin(), &Device::Cpu).unwrap();
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
    let (run, end) = (b.path().join("run"), "_hparams_/session_end_info");
    assert_eq!(tag_count(&run, end), 0, "a run stopped early has no end");
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
    // The HParams dashboard's session: started once, ended once when the run finished.
    assert_eq!(tag_count(&run, end), 1);
    assert_eq!(tag_count(&run, "_hparams_/session_start_info"), 1);
}

/// Occurrences of `tag` in the run's event files (tags are stored verbatim in the records).
fn tag_count(run: &std::path::Path, tag: &str) -> usize {
    let files = std::fs::read_dir(run).unwrap().map(|e| e.unwrap().path());
    let events = files.filter(|p| p.to_string_lossy().contains("events.out.tfevents."));
    let count = |bytes: Vec<u8>| {
        let windows = bytes.windows(tag.len());
        windows.filter(|w| *w == tag.as_bytes()).count()
    };
    events.map(|p| count(std::fs::read(p).unwrap())).sum()
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
    assert!(err.contains("budget.steps: 2 -> 3"), "{err}");
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
    let ckpt = checkpoint::load(&path, &ModelRegistry::builtin(), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
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
    let err = checkpoint::load(&path, &ModelRegistry::builtin(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    std::fs::write(&model, &bytes[..100]).unwrap();
    let err = checkpoint::load(&path, &ModelRegistry::builtin(), &Device::Cpu)
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

/// Resume equivalence for every built-in policy: losses, weights, the ledger file and the
/// sampler state after N steps + resume + K steps equal those of N + K uninterrupted steps.
#[test]
fn resume_is_exact_for_every_policy_including_ledger_bytes() {
    let scores = tempfile::tempdir().unwrap();
    train(
        &common::tiny_config(scores.path(), 4, ""),
        &TrainOptions::default(),
    )
    .unwrap();
    let score_ledger = scores.path().join("run/ledger.bin");
    let policies = [
        String::new(),
        r#"[sampling]
policy = "lfr"
[sampling.lfr]
phases = [{ kind = "learn", steps = 2 }, { kind = "focus", steps = 2, drop_fraction = 0.5 },
          { kind = "review", steps = 2 }, { kind = "focus", steps = 1, drop_fraction = 0.7 }]
repeat_last = 2"#
            .to_string(),
        "[sampling]\npolicy = \"loss-priority\"".to_string(),
        "[sampling]\npolicy = \"spaced\"".to_string(),
        // Scores a pool each step: 6 of the 9 steps' budget remain after charging (1 + 1/3 per
        // step), so the stop at 5 splits it.
        "[sampling]\npolicy = \"online-batch\"\n[sampling.online-batch]\npool_factor = 1.0"
            .to_string(),
        format!(
            "[sampling]\npolicy = \"curriculum\"\n[sampling.curriculum]\nledger = \"{}\"",
            score_ledger.display()
        ),
    ];
    for extra in &policies {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let full = train(
            &common::tiny_config(a.path(), 9, extra),
            &TrainOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{extra}: {e}"));
        let cfg = common::tiny_config(b.path(), 9, extra);
        let stop = TrainOptions {
            stop_after: Some(5),
            ..Default::default()
        };
        let first = train(&cfg, &stop).unwrap();
        let resume = TrainOptions {
            resume: true,
            ..Default::default()
        };
        let rest = train(&cfg, &resume).unwrap();
        let stitched: Vec<f64> = first.losses.iter().chain(&rest.losses).copied().collect();
        assert_eq!(stitched, full.losses, "{extra}: losses");
        let (ra, rb) = (a.path().join("run"), b.path().join("run"));
        assert_eq!(weights(&ra), weights(&rb), "{extra}: weights");
        // The two runs live in different temp dirs, so their configs (paths) and hence run ids
        // differ: compare every record byte and the header's generation.
        let ledger = |r: &std::path::Path| {
            let path = r.join("ledger.bin");
            let bytes = std::fs::read(&path).unwrap();
            let header = syllabus::ledger::LedgerReader::open(&path)
                .unwrap()
                .header();
            (header.generation, header.block_count, bytes[64..].to_vec())
        };
        assert!(ledger(&ra) == ledger(&rb), "{extra}: ledger records differ");
        let cursor = |r: &std::path::Path| {
            let p = checkpoint::latest(r).unwrap().unwrap();
            checkpoint::load(&p, &ModelRegistry::builtin(), &Device::Cpu)
                .unwrap()
                .manifest
                .state
                .data_cursor
        };
        assert_eq!(cursor(&ra), cursor(&rb), "{extra}: sampler state");
    }
}

#[test]
fn ledger_records_every_trained_block_and_sampler_metrics_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[sampling]\npolicy = \"lfr\"\n[sampling.lfr]\nphases = [{ kind = \"learn\", steps = 2 }, { kind = \"focus\", steps = 3, drop_fraction = 0.5 }]";
    train(
        &common::tiny_config(dir.path(), 5, extra),
        &TrainOptions::default(),
    )
    .unwrap();
    let run = dir.path().join("run");
    let reader = syllabus::ledger::LedgerReader::open(&run.join("ledger.bin")).unwrap();
    use syllabus::ledger::LedgerRead;
    let trained: u64 = (0..reader.len())
        .map(|i| reader.record(i).times_trained as u64)
        .sum();
    assert_eq!(trained, 5 * 8, "5 steps x 8 sequences, each recorded once");
    let dropped = (0..reader.len())
        .filter(|&i| reader.record(i).policy_state == 1)
        .count();
    assert!(
        dropped > 0,
        "the focus phase dropped blocks and the ledger shows it"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for tag in [
        "sampler/phase",
        "sampler/active_fraction",
        "sampler/share/",
        "ledger/loss",
        "ledger/forgotten_fraction",
    ] {
        assert!(metrics.contains(tag), "metrics.jsonl lacks {tag}");
    }
}

#[path = "../examples/custom_policy.rs"]
#[allow(dead_code)]
mod custom_policy;

/// A policy defined outside the crate (the example) gets the whole command line through
/// `syllabus::cli::run`, with arguments of its own (not the test binary's).
#[test]
fn user_policy_from_outside_the_crate_trains_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config(dir.path(), 3, "");
    let path = dir.path().join("user.toml");
    std::fs::write(&path, cfg.to_toml()).unwrap();
    let mut plugins = Plugins::builtin();
    plugins
        .policies
        .register(custom_policy::NAME, custom_policy::construct)
        .unwrap();
    let config = path.to_str().unwrap();
    let set = format!("sampling.policy={}", custom_policy::NAME);
    let args = ["syllabus", "train", "--config", config, "--set", &set];
    syllabus::cli::run(&plugins, args).unwrap_or_else(|e| panic!("{e:#}"));
    let summary = std::fs::read_to_string(dir.path().join("run/summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["steps"], 3, "{summary}");
    let err = train(
        &Config::load(&path, std::slice::from_ref(&set)).unwrap(),
        &TrainOptions {
            overwrite: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(custom_policy::NAME) && err.contains("uniform"),
        "{err}"
    );
}

/// A policy returning a block id out of range stops the run with an error, never a panic.
#[test]
fn a_policy_returning_bad_ids_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config(dir.path(), 3, "[sampling]\npolicy = \"beyond\"");
    let mut plugins = Plugins::builtin();
    plugins
        .policies
        .register(
            "beyond",
            |_: &toml::Table, env: &syllabus::sampling::PolicyEnv| {
                Ok(Box::new(Beyond(env.n_blocks)) as Box<dyn syllabus::sampling::SamplingPolicy>)
            },
        )
        .unwrap();
    let opts = TrainOptions::default();
    let err = train_with(&cfg, &opts, &plugins).unwrap_err().to_string();
    assert!(
        err.contains("`beyond` at step 0") && err.contains("out of range"),
        "{err}"
    );
}

struct Beyond(usize);

impl syllabus::sampling::SamplingPolicy for Beyond {
    fn name(&self) -> &str {
        "beyond"
    }

    fn next_batch(
        &mut self,
        n: usize,
        _: &dyn syllabus::ledger::LedgerRead,
        _: u64,
    ) -> syllabus::sampling::Selection {
        syllabus::sampling::Selection::ids(vec![self.0; n])
    }
}

#[test]
fn a_finished_run_ends_with_the_eval_suite_and_an_interrupted_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config(dir.path(), 4, "");
    let run = dir.path().join("run");
    let stop = TrainOptions {
        stop_after: Some(2),
        ..Default::default()
    };
    train(&cfg, &stop).unwrap();
    assert!(
        !run.join("eval.json").exists(),
        "suite ran on an interrupted run"
    );
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    train(&cfg, &resume).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let entry = &j["checkpoints"]["4"];
    assert!(entry["checkpoint"]
        .as_str()
        .unwrap()
        .ends_with("step_00000004"));
    let ppl = &entry["report"]["perplexity"][0];
    assert_eq!(ppl["set"], "val");
    assert!(ppl["norm_ppl"].as_f64().unwrap() > 1.0, "{ppl}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("eval/val/norm_ppl"), "no suite scalars");
}

#[test]
fn a_missing_eval_task_file_fails_before_the_run_directory_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config(dir.path(), 4, "");
    cfg.eval.tasks = vec!["hellaswag".into()];
    cfg.eval.tasks_dir = Some(dir.path().join("no-such-dir"));
    let err = train(&cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-dir"), "{err}");
    assert!(!dir.path().join("run").exists(), "run directory created");
}
