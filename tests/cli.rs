//! The `syllabus` binary: exit codes and messages for bad input, and prepare -> train ->
//! sample -> bench end to end on a tiny model.

mod common;

use common::syllabus;

use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CONFIG: &str = r#"
[run]
name = "cli"
out_dir = "run"
[data]
prepared_dir = "prepared"
[model]
vocab_size = 50257
n_positions = 16
n_layer = 1
n_head = 2
d_model = 16
[schedule]
warmup_steps = 1
[budget]
steps = 4
[train]
batch_size = 4
[eval]
every = 2
max_blocks = 4
sample_tokens = 3
"#;

#[test]
fn bad_input_exits_nonzero_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = syllabus(&["prepare", "--input", "missing.txt", "--out", "p"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.txt"), "{}", stderr(&o));

    let o = syllabus(&["train", "--config", "nope.toml"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope.toml"), "{}", stderr(&o));

    std::fs::write(
        d.join("bad.toml"),
        CONFIG.replace("n_head = 2", "n_head = 3"),
    )
    .unwrap();
    let o = syllabus(
        &[
            "train",
            "--config",
            "bad.toml",
            "--set",
            "train.batch_size=0",
        ],
        d,
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("model.n_head must divide model.d_model (16 % 3 != 0)"),
        "{e}"
    );
    assert!(e.contains("train.batch_size must be > 0"), "{e}");

    std::fs::write(d.join("ok.toml"), CONFIG).unwrap();
    let o = syllabus(&["train", "--config", "ok.toml"], d);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("holds no prepared data"),
        "{}",
        stderr(&o)
    );

    let o = syllabus(&["sample", "--run", "run"], d);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no such run directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn prepare_train_sample_bench_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (train, val) = common::write_corpus(d);
    let (train, val) = (train.to_str().unwrap(), val.to_str().unwrap());
    let o = syllabus(
        &[
            "prepare", "--input", train, "--val", val, "--out", "prepared",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = syllabus(
        &[
            "prepare", "--input", train, "--val", val, "--out", "prepared",
        ],
        d,
    );
    assert!(
        !o.status.success(),
        "second prepare must refuse to overwrite"
    );

    std::fs::write(d.join("ok.toml"), CONFIG).unwrap();
    let o = syllabus(&["train", "--config", "ok.toml"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("final val loss"), "{out}");
    assert!(stderr(&o).contains("unigram entropy"), "{}", stderr(&o));

    let o = syllabus(
        &[
            "sample", "--run", "run", "--prompt", "the cat", "--tokens", "5",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("the cat"));

    let o = syllabus(&["ledger", "run"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("forgotten") && text.contains("train"),
        "{text}"
    );
    let o = syllabus(&["ledger", "run", "--json", "--top-k", "3"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report.is_object());
    let o = syllabus(&["ledger", "nowhere"], d);
    assert!(
        !o.status.success() && stderr(&o).contains("nowhere"),
        "{}",
        stderr(&o)
    );

    let o = syllabus(
        &[
            "bench", "--config", "ok.toml", "--warmup", "1", "--steps", "2", "--json",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["mfu"].as_f64().unwrap() > 0.0);
    // Another vocabulary for the timing only; no timed steps is an error, not a NaN report.
    let args = [
        "bench", "--config", "ok.toml", "--warmup", "0", "--steps", "1",
    ];
    let o = syllabus(&[&args[..], &["--vocab-size", "300", "--json"]].concat(), d);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["vocab_size"].as_u64(), Some(300));
    let o = syllabus(&["bench", "--config", "ok.toml", "--steps", "0"], d);
    assert!(
        !o.status.success() && stderr(&o).contains("--steps"),
        "{}",
        stderr(&o)
    );
}
