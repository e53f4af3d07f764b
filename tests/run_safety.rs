//! What a hostile or careless user can do to a run, and what the framework must do about it:
//! one writer per directory, corruption detected and named, resume that verifies before it
//! replaces anything, skipped steps that leave no trace in the ledger, paths and sizes from
//! configs kept in bounds, and a `kill -9` inside the checkpoint writer that resumes bit for bit.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use syllabus::fsutil::DirLock;
use syllabus::train::{train, TrainOptions};

fn syllabus(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syllabus"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The directory's files and their contents, to show a refused command touched nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_writer_on_a_live_directory_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = common::tiny_config(d, 3, "");
    train(&cfg, &TrainOptions::default()).unwrap();
    let run = cfg.run.run_dir();
    std::fs::write(d.join("c.toml"), cfg.to_toml()).unwrap();

    // This test process plays the live run: it holds the run directory.
    let held = DirLock::acquire(&run, "train").unwrap();
    let before = snapshot(&run);
    let pid = format!("pid {}", std::process::id());
    for flag in ["--resume", "--overwrite"] {
        let o = syllabus(&["train", "--config", "c.toml", flag], d);
        let e = stderr(&o);
        assert!(!o.status.success(), "train {flag} on a live run succeeded");
        assert!(
            e.contains("in use by another syllabus process") && e.contains(&pid),
            "{e}"
        );
    }
    assert_eq!(
        snapshot(&run),
        before,
        "a refused train touched the run directory"
    );
    drop(held);
    let resumed = TrainOptions {
        resume: true,
        ..Default::default()
    };
    train(&cfg, &resumed).expect("free again once the holder is gone");

    // The same for a prepared-data directory and a sweep directory.
    let prepared = d.join("prepared");
    let held = DirLock::acquire(&prepared, "prepare").unwrap();
    let input = d.join("train.txt").display().to_string();
    let args = [
        "prepare",
        "--input",
        &input,
        "--out",
        "prepared",
        "--overwrite",
    ];
    let o = syllabus(&args, d);
    assert!(
        !o.status.success() && stderr(&o).contains(&pid),
        "{}",
        stderr(&o)
    );
    drop(held);
}
