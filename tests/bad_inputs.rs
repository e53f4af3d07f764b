//! Bad input through the command line, as a careless user types it: every case exits non-zero
//! (or, for a harmless no-op, zero with a message), names the field, file or flag, says what
//! was expected, and never panics.

mod common;

use common::syllabus;

use std::path::{Path, PathBuf};
use std::process::Output;

/// Asserts a failure whose stderr holds every one of `needles`, and returns stderr.
fn fails_with(o: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "expected a failure, got success: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    err
}

/// The tiny config written to `dir/c.toml`.
fn config_file(dir: &Path, steps: u64, extra: &str) -> PathBuf {
    let path = dir.join("c.toml");
    std::fs::write(&path, common::tiny_config_toml(dir, steps, extra)).unwrap();
    path
}

#[test]
fn config_values_that_escape_or_exhaust_the_machine_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config_file(d, 4, "");
    let c = cfg.to_str().unwrap();
    let train = |set: &str| syllabus(&["train", "--config", c, "--set", set], d);
    fails_with(&train("run.out_dir="), &["run.out_dir"]);
    fails_with(
        &train("run.threads=100000"),
        &["run.threads = 100000", "per core"],
    );
    fails_with(
        &train("train.batch_size=100000000"),
        &["train.batch_size", "GB"],
    );
    fails_with(&train("data.prepared_dir="), &["data.prepared_dir"]);
    let o = syllabus(&["train", "--config", c, "--stop-after", "0"], d);
    fails_with(&o, &["--stop-after"]);
    // Nothing of a run was started by any of them.
    assert!(!d.join("run").exists());

    let unused = config_file(d, 4, "[sampling.lfr]\nrepeat_last = 2");
    let o = syllabus(&["train", "--config", unused.to_str().unwrap()], d);
    fails_with(&o, &["sampling.lfr", "uniform"]);
}

#[test]
fn toml_errors_point_into_the_users_file_or_at_the_override() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config_file(d, 4, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let bad = text.replace("lr = 1e-2", "lr = \"fast\"");
    let line = bad.lines().position(|l| l == "lr = \"fast\"").unwrap() + 1;
    std::fs::write(&cfg, bad).unwrap();
    let c = cfg.to_str().unwrap();
    let o = syllabus(&["train", "--config", c, "--set", "budget.steps=3"], d);
    let err = fails_with(&o, &["lr = \"fast\""]);
    assert!(err.contains(&format!("line {line}")), "{err}");

    std::fs::write(&cfg, &text).unwrap();
    let o = syllabus(&["train", "--config", c, "--set", "model.n_layer=-1"], d);
    fails_with(&o, &["--set model.n_layer=-1", "expected usize"]);
}

#[test]
fn missing_files_get_messages_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An OS error is printed once.
    let o = syllabus(&["train", "--config", "nope.toml"], d);
    let err = fails_with(&o, &["nope.toml", "No such file"]);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");

    // A directory that is not a run.
    std::fs::create_dir(d.join("empty")).unwrap();
    for args in [
        &["eval", "--run", "empty"][..],
        &["sample", "--run", "missing", "--prompt", "x"],
        &["ledger", "missing"],
    ] {
        fails_with(&syllabus(args, d), &["run directory"]);
    }
    let o = syllabus(&["eval", "--run", "empty"], d);
    fails_with(&o, &["no config.toml"]);

    // Prepared data with a file removed.
    let (train, val) = common::write_corpus(d);
    let prepare = |out: &str| {
        let (t, v) = (train.to_str().unwrap(), val.to_str().unwrap());
        syllabus(&["prepare", "--input", t, "--val", v, "--out", out], d)
    };
    assert!(prepare("prep").status.success());
    std::fs::remove_file(d.join("prep/train.bin")).unwrap();
    fails_with(
        &prepare("prep"),
        &[
            "incomplete prepared data",
            "missing train.bin",
            "--overwrite",
        ],
    );

    // Training inputs with no documents, validation from its own inputs.
    std::fs::write(d.join("blank.txt"), "\n\n").unwrap();
    let v = val.to_str().unwrap();
    let o = syllabus(
        &["prepare", "--input", "blank.txt", "--val", v, "--out", "p2"],
        d,
    );
    fails_with(
        &o,
        &["training inputs hold no documents", "validation inputs"],
    );
}

#[test]
fn resume_before_the_first_checkpoint_and_after_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config_file(d, 4, "");
    let c = cfg.to_str().unwrap();
    let o = syllabus(&["train", "--config", c, "--stop-after", "2"], d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Killed before its first checkpoint (every 3 steps): --resume says how to start over.
    std::fs::remove_dir_all(d.join("run/checkpoints")).unwrap();
    let o = syllabus(&["train", "--config", c, "--resume"], d);
    fails_with(&o, &["no complete checkpoint", "--overwrite"]);

    let o = syllabus(&["train", "--config", c, "--overwrite"], d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read(d.join("run/summary.json")).unwrap();
    let o = syllabus(&["train", "--config", c, "--resume"], d);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("already finished"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(d.join("run/summary.json")).unwrap(),
        summary,
        "untouched"
    );

    let o = syllabus(&["sample", "--run", "run", "--temperature", "NaN"], d);
    fails_with(&o, &["--temperature"]);
}
