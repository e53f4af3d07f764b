//! `kill -9` inside the checkpoint writer: a real `syllabus train` process is killed with
//! SIGKILL at each point of a checkpoint write (armed through `SYLLABUS_FAULT`, see
//! `fsutil::fault`), resumed with `--resume`, and must end bit-identical to a run that was never
//! interrupted: weights, every ledger record, the sampler's state and the logged losses.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use candle_core::Device;
use syllabus::fsutil::fault::FAULT_ENV;
use syllabus::train::checkpoint;

/// LFR reads the ledger to choose blocks, so a ledger restored wrongly changes the batches.
const LFR: &str = r#"[sampling]
policy = "lfr"
[sampling.lfr]
phases = [{ kind = "learn", steps = 3 }, { kind = "focus", steps = 3, drop_fraction = 0.5 },
          { kind = "review", steps = 3 }]"#;
const STEPS: u64 = 9;

fn train(cfg: &Path, fault: Option<&str>, resume: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_syllabus"));
    cmd.args(["train", "--config"]).arg(cfg);
    if resume {
        cmd.arg("--resume");
    }
    cmd.env("RAYON_NUM_THREADS", "2").env_remove(FAULT_ENV);
    if let Some(f) = fault {
        cmd.env(FAULT_ENV, f);
    }
    cmd.output().expect("binary runs")
}

/// Everything a resumed run must reproduce exactly.
#[derive(Debug, PartialEq)]
struct Outcome {
    weights: BTreeMap<String, Vec<u32>>,
    ledger_records: Vec<u8>,
    ledger_generation: u64,
    cursor: serde_json::Value,
    /// (step, loss) of every training line in metrics.jsonl, in file order.
    losses: Vec<(u64, String)>,
}

fn outcome(run: &Path) -> Outcome {
    let ckpt = checkpoint::load(
        &checkpoint::latest(run).unwrap().unwrap(),
        &syllabus::model::ModelRegistry::builtin(),
        &Device::Cpu,
    )
    .unwrap();
    let weights = ckpt
        .params
        .to_tensors()
        .into_iter()
        .map(|(k, t)| {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (k, v.into_iter().map(f32::to_bits).collect())
        })
        .collect();
    let ledger = run.join("ledger.bin");
    let bytes = std::fs::read(&ledger).unwrap();
    let header = syllabus::ledger::LedgerReader::open(&ledger)
        .unwrap()
        .header();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let losses = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("whole JSON lines"))
        .filter(|v| v["tag"] == "train/loss")
        .map(|v| (v["step"].as_u64().unwrap(), v["value"].to_string()))
        .collect();
    Outcome {
        weights,
        // The runs live in different directories, so their run ids (a hash of the config)
        // differ: compare every record and the generation.
        ledger_records: bytes[64..].to_vec(),
        ledger_generation: header.generation,
        cursor: ckpt.manifest.state.data_cursor,
        losses,
    }
}

fn setup(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, common::tiny_config_toml(dir, STEPS, LFR)).unwrap();
    cfg
}

#[test]
fn killed_inside_the_checkpoint_writer_resumes_bit_identical() {
    let reference = tempfile::tempdir().unwrap();
    let out = train(&setup(reference.path()), None, false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = outcome(&reference.path().join("run"));
    assert!(
        !expected.losses.is_empty(),
        "the reference logged its losses"
    );

    // Checkpoints are written at steps 3, 6 and 9: the 2nd hit is the step-6 checkpoint, with
    // one complete checkpoint (step 3) behind it; the 3rd is the final one.
    let points = [
        "checkpoint-model",
        "checkpoint-optimizer",
        "checkpoint-extra",
        "checkpoint-manifest",
        "checkpoint-renamed",
    ];
    for point in points {
        for hit in [2, 3] {
            let fault = format!("{point}@{hit}");
            let dir = tempfile::tempdir().unwrap();
            let cfg = setup(dir.path());
            let killed = train(&cfg, Some(&fault), false);
            assert_eq!(
                killed.status.signal(),
                Some(libc::SIGKILL),
                "{fault}: the run was killed there ({:?})",
                killed.status
            );
            let resumed = train(&cfg, None, true);
            assert!(
                resumed.status.success(),
                "{fault}: resume failed: {}",
                String::from_utf8_lossy(&resumed.stderr)
            );
            let got = outcome(&dir.path().join("run"));
            assert_eq!(got.losses, expected.losses, "{fault}: logged losses");
            assert_eq!(got.cursor, expected.cursor, "{fault}: sampler state");
            assert_eq!(
                got.ledger_generation, expected.ledger_generation,
                "{fault}: ledger"
            );
            assert!(
                got.ledger_records == expected.ledger_records,
                "{fault}: ledger records"
            );
            assert!(got.weights == expected.weights, "{fault}: weights");
        }
    }
}
