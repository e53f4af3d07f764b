//! What a hostile or careless user can do to a run, and what the framework must do about it:
//! one writer per directory, corruption detected and named, resume that verifies before it
//! replaces anything, skipped steps that leave no trace in the ledger, paths and sizes from
//! configs kept in bounds, and a `kill -9` inside the checkpoint writer that resumes bit for bit.

mod common;

use common::syllabus;

use std::path::Path;
use std::process::Output;

use syllabus::fsutil::DirLock;
use syllabus::train::{train, TrainOptions};

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
    let cfg = common::tiny_config(d, 6, "");
    let stop = TrainOptions {
        stop_after: Some(3),
        ..Default::default()
    };
    train(&cfg, &stop).unwrap();
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

    // The same for a prepared-data directory.
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

/// Trained-block count in a run's live ledger.
fn times_trained(run: &Path) -> u64 {
    let ledger = syllabus::ledger::LedgerReader::open(&run.join("ledger.bin")).unwrap();
    (0..ledger.header().block_count as usize)
        .map(|id| ledger.get(id).unwrap().unwrap().times_trained as u64)
        .sum()
}

#[test]
fn skipped_updates_leave_the_ledger_untouched_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config(dir.path(), 20, "");
    // The first update blows the weights up; every later step is skipped.
    cfg.optim.lr = 1e30;
    cfg.optim.grad_clip = 0.0;
    cfg.train.max_consecutive_skips = 3;
    let err = train(&cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 consecutive updates were skipped"), "{err}");
    assert!(
        err.contains("because the loss is") || err.contains("gradient norm is"),
        "{err}"
    );
    // One applied step of batch 4 x 2 micro-batches: only its 8 blocks count as trained.
    assert_eq!(times_trained(&cfg.run.run_dir()), 8);
}

/// Flips one byte in the middle of `path`.
fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn resume_verifies_the_checkpoint_before_replacing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config(dir.path(), 12, "");
    let stop = TrainOptions {
        stop_after: Some(7),
        ..Default::default()
    };
    train(&cfg, &stop).unwrap();
    let run = cfg.run.run_dir();
    let ckpts = syllabus::train::checkpoint::list(&run).unwrap();
    let (newest_step, newest) = ckpts.last().unwrap().clone();
    let (older_step, older) = ckpts[ckpts.len() - 2].clone();
    assert_eq!((older_step, newest_step), (6, 7));
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };

    // A corrupt weight file, then an edited manifest field: refused, nothing changed, and the
    // error names the file and the older checkpoint to use instead.
    for (file, edit) in [("model.safetensors", "byte"), ("manifest.json", "field")] {
        let path = newest.join(file);
        let good = std::fs::read(&path).unwrap();
        match edit {
            "byte" => flip_byte(&path),
            _ => {
                let text = String::from_utf8(good.clone()).unwrap();
                let edited = text.replacen("\"tokens_seen\": ", "\"tokens_seen\": 1", 1);
                assert_ne!(edited, text);
                std::fs::write(&path, edited).unwrap();
            }
        }
        let before = snapshot(&run);
        let err = train(&cfg, &resume).unwrap_err().to_string();
        assert!(err.contains(file) && err.contains("--resume-from"), "{err}");
        assert!(err.contains(&older.display().to_string()), "{err}");
        assert_eq!(
            snapshot(&run),
            before,
            "a failed resume changed the run directory"
        );
        std::fs::write(&path, good).unwrap();
    }

    // An explicit older checkpoint: resumes, and the newer one is set aside, not deleted.
    flip_byte(&newest.join("optimizer.safetensors"));
    let from_older = TrainOptions {
        resume: true,
        resume_from: Some(older.clone()),
        ..Default::default()
    };
    let rest = train(&cfg, &from_older).unwrap();
    assert_eq!(rest.steps, 12);
    assert!(run.join("checkpoints/.superseded_step_00000007").is_dir());
}

#[test]
fn a_garbage_budget_file_is_rewritten_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config(dir.path(), 8, "");
    let stop = TrainOptions {
        stop_after: Some(4),
        ..Default::default()
    };
    train(&cfg, &stop).unwrap();
    let plan = cfg.run.run_dir().join("budget.json");
    let good = std::fs::read(&plan).unwrap();
    std::fs::write(&plan, b"{\"planned_steps\": 4000000319}").unwrap();
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    train(&cfg, &resume).unwrap();
    assert_eq!(std::fs::read(&plan).unwrap(), good);
}

/// A run saved while `eval.tasks_dir` defaulted to a development folder holds that path in its
/// `config.toml`; under the new default (unset: the user cache) it still resumes, as the key
/// only locates eval files. Twice (the second time from a checkpoint the resumed session wrote)
/// and exactly: the losses are those of an uninterrupted run.
#[test]
fn a_run_saved_with_the_old_tasks_dir_default_still_resumes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut old = common::tiny_config(a.path(), 6, "");
    old.eval.tasks_dir = Some("../eval-files".into());
    let opts = |resume, stop_after| TrainOptions {
        resume,
        stop_after,
        ..Default::default()
    };
    let first = train(&old, &opts(false, Some(2))).unwrap();
    let saved = std::fs::read_to_string(old.run.run_dir().join("config.toml")).unwrap();
    assert!(saved.contains(r#"tasks_dir = "../eval-files""#), "{saved}");

    let mut new = old.clone();
    new.eval.tasks_dir = None;
    assert!(!new.to_toml().contains("tasks_dir"), "unset is not saved");
    let second = train(&new, &opts(true, Some(4))).unwrap();
    let third = train(&new, &opts(true, None)).unwrap();
    assert_eq!(third.steps, 6);
    let resumed = [first.losses, second.losses, third.losses].concat();
    let full = train(&common::tiny_config(b.path(), 6, ""), &opts(false, None)).unwrap();
    assert_eq!(resumed, full.losses, "resumed exactly");
    let kept = std::fs::read_to_string(old.run.run_dir().join("config.toml")).unwrap();
    assert_eq!(kept, saved, "a resume keeps the run's config.toml");
}
