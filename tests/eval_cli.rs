//! `syllabus eval` end to end on a briefly trained tiny model: tables, JSON, `eval.json` keyed by
//! checkpoint step, scalars in the run's metrics, and errors that name the problem.

mod common;

use common::syllabus;
mod eval_support;

use std::path::Path;

use syllabus::train::{train, TrainOptions};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn eval_json(run: &Path) -> serde_json::Value {
    let bytes = std::fs::read(run.join("eval.json")).expect("eval.json written");
    serde_json::from_slice(&bytes).expect("eval.json is JSON")
}

#[test]
fn eval_command_stores_results_per_checkpoint_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = common::tiny_config(d, 6, "");
    train(&cfg, &TrainOptions::default()).unwrap();
    let tasks = d.join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    eval_support::write_tasks_dir(&tasks);
    let run = d.join("run");
    let run_s = run.to_str().unwrap();
    let tasks_s = tasks.to_str().unwrap();

    // Newest checkpoint (step 6), auto mode: every task file plus the validation split.
    let o = syllabus(
        &[
            "eval",
            "--run",
            run_s,
            "--tasks-dir",
            tasks_s,
            "--tasks",
            "auto",
            "--limit",
            "2",
            "--ppl-tokens",
            "40",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for want in [
        "step_00000006",
        "hellaswag",
        "winogrande",
        "wikitext2",
        "val",
        "eval.json",
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    let j = eval_json(&run);
    assert_eq!(j["format"], "syllabus-eval");
    let report = &j["checkpoints"]["6"]["report"];
    assert_eq!(report["tasks"].as_array().unwrap().len(), 5);
    assert_eq!(report["tasks"][1]["examples"], 2);
    assert_eq!(report["perplexity"][1]["tokens"], 40);
    assert!(report["core_centered_mean"].is_number());

    // An older checkpoint, one task, JSON output: a second entry, the first one kept.
    let step3 = run.join("checkpoints/step_00000003");
    let o = syllabus(
        &[
            "eval",
            "--run",
            run_s,
            "--checkpoint",
            step3.to_str().unwrap(),
            "--tasks",
            "val",
            "--json",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert_eq!(printed["perplexity"][0]["set"], "val");
    let j = eval_json(&run);
    let steps: Vec<&String> = j["checkpoints"].as_object().unwrap().keys().collect();
    assert_eq!(steps, ["3", "6"]);

    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("eval/val/norm_ppl"));
    assert!(metrics.contains("eval/core_centered_mean"));
}

#[test]
fn eval_errors_name_the_missing_file_or_the_unreadable_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = common::tiny_config(d, 3, "");
    train(&cfg, &TrainOptions::default()).unwrap();
    let run = d.join("run");
    let run_s = run.to_str().unwrap();

    let o = syllabus(
        &[
            "eval",
            "--run",
            run_s,
            "--tasks",
            "piqa",
            "--tasks-dir",
            "nowhere",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("nowhere/piqa_valid.jsonl.gz"),
        "{}",
        text(&o.stderr)
    );

    let o = syllabus(&["eval", "--run", run_s, "--tasks", "mmlu"], d);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("mmlu"), "{}", text(&o.stderr));

    // A report that cannot be read back is left alone.
    std::fs::write(run.join("eval.json"), "{ truncated").unwrap();
    let o = syllabus(
        &[
            "eval",
            "--run",
            run_s,
            "--tasks",
            "val",
            "--ppl-tokens",
            "20",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("eval.json"), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(run.join("eval.json")).unwrap(),
        "{ truncated"
    );

    let o = syllabus(&["eval", "--run", d.join("empty").to_str().unwrap()], d);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no such run directory"),
        "{}",
        text(&o.stderr)
    );
}
