//! Eval inputs and outputs on disk: parse errors name file, line, field and expectation; task
//! selection (auto mode, missing files); `eval.json` is merged per step and never clobbered.

mod eval_support;

use std::path::Path;

use eval_support::{write_gz, write_tasks_dir};
use syllabus::eval::suite::resolve;
use syllabus::eval::{datasets, EvalError, Task, TaskSelection};

fn parse_error(name: &str, lines: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    write_gz(dir.path(), name, lines);
    let path = dir.path().join(name);
    let err = match name {
        "lambada.jsonl.gz" => datasets::lambada(&path, 0).map(|_| ()),
        "hellaswag.jsonl.gz" => datasets::hellaswag(&path, 0).map(|_| ()),
        "piqa.jsonl.gz" => datasets::piqa(&path, 0).map(|_| ()),
        "arc.jsonl.gz" => datasets::arc(&path, 0).map(|_| ()),
        "winogrande.jsonl.gz" => datasets::winogrande(&path, 0).map(|_| ()),
        other => panic!("no parser for {other}"),
    };
    err.expect_err("malformed input must fail").to_string()
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} should mention {p:?}");
    }
}

#[test]
fn malformed_examples_name_file_line_field_and_expectation() {
    let good_hs = r#"{"activity_label": "A", "ctx": "b", "endings": ["c", "d"], "label": 1}"#;
    let msg = parse_error(
        "hellaswag.jsonl.gz",
        &[
            good_hs,
            r#"{"activity_label": "A", "ctx": "b", "endings": ["c"], "label": "0"}"#,
        ],
    );
    assert_mentions(
        &msg,
        &[
            "hellaswag.jsonl.gz:2:",
            "field `label`",
            "expected an integer",
            "\"0\"",
        ],
    );

    let msg = parse_error(
        "hellaswag.jsonl.gz",
        &[r#"{"ctx": "b", "endings": [], "label": 0}"#],
    );
    assert_mentions(
        &msg,
        &[
            ":1:",
            "field `activity_label`",
            "expected a string",
            "missing",
        ],
    );

    let msg = parse_error(
        "piqa.jsonl.gz",
        &["", r#"{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}"#],
    );
    assert_mentions(
        &msg,
        &[
            "piqa.jsonl.gz:2:",
            "field `label`",
            "option index in 0..2",
            "found 2",
        ],
    );

    let msg = parse_error("piqa.jsonl.gz", &["{not json"]);
    assert_mentions(&msg, &["piqa.jsonl.gz:1:", "invalid JSON"]);

    let msg = parse_error("piqa.jsonl.gz", &["[1, 2]"]);
    assert_mentions(&msg, &[":1:", "expected a JSON object", "[1,2]"]);

    let arc = r#"{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}"#;
    let msg = parse_error("arc.jsonl.gz", &[arc]);
    assert_mentions(
        &msg,
        &[
            "arc.jsonl.gz:1:",
            "field `answerKey`",
            "[\"A\", \"B\"]",
            "\"C\"",
        ],
    );

    let arc =
        r#"{"question": "q", "choices": {"text": ["a", "b"], "label": ["A"]}, "answerKey": "A"}"#;
    let msg = parse_error("arc.jsonl.gz", &[arc]);
    assert_mentions(&msg, &["field `choices.label`", "one label per choice"]);

    let arc = r#"{"question": "q", "choices": {"text": "a"}, "answerKey": "A"}"#;
    let msg = parse_error("arc.jsonl.gz", &[arc]);
    assert_mentions(&msg, &["field `choices.text`", "non-empty list of strings"]);

    let wg = r#"{"sentence": "A _ and _", "option1": "x", "option2": "y", "answer": "1"}"#;
    let msg = parse_error("winogrande.jsonl.gz", &[wg]);
    assert_mentions(
        &msg,
        &[
            "winogrande.jsonl.gz:1:",
            "field `sentence`",
            "exactly one `_`",
            "found 2",
        ],
    );

    let wg = r#"{"sentence": "A _ b", "option1": "x", "option2": "y", "answer": 1}"#;
    let msg = parse_error("winogrande.jsonl.gz", &[wg]);
    assert_mentions(&msg, &["field `answer`", "expected a string"]);

    let msg = parse_error("lambada.jsonl.gz", &[r#"{"text": "alone"}"#]);
    assert_mentions(
        &msg,
        &["lambada.jsonl.gz:1:", "field `text`", "several words"],
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = datasets::piqa(Path::new("/nonexistent/piqa.jsonl.gz"), 0).unwrap_err();
    assert!(matches!(err, EvalError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/piqa.jsonl.gz"));
}

#[test]
fn auto_mode_runs_what_exists_and_explicit_tasks_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let none = dir.path().join("no-such-dir");
    // A fresh machine: no eval files, but the run has a validation split.
    let (run, skipped) = resolve(&TaskSelection::Auto, &none, true).expect("auto never fails");
    assert_eq!(run, vec![Task::Val]);
    assert_eq!(skipped.len(), 6);
    assert!(skipped[0].reason.contains("lambada_openai_test.jsonl.gz"));
    let (run, skipped) = resolve(&TaskSelection::Auto, &none, false).expect("auto");
    assert!(run.is_empty());
    assert!(skipped.iter().any(|s| s.task == "val"));

    write_tasks_dir(dir.path());
    let (run, skipped) = resolve(&TaskSelection::Auto, dir.path(), true).expect("auto");
    assert_eq!(run, Task::ALL.to_vec());
    assert!(skipped.is_empty());

    let err = resolve(&TaskSelection::List(vec![Task::Piqa]), &none, true).unwrap_err();
    assert!(matches!(err, EvalError::MissingTaskFile { .. }));
    assert!(
        err.to_string().contains("no-such-dir/piqa_valid.jsonl.gz"),
        "{err}"
    );
    let err = resolve(&TaskSelection::List(vec![Task::Val]), &none, false).unwrap_err();
    assert!(err.to_string().contains("validation split"), "{err}");
}

#[test]
fn task_names_parse_and_auto_does_not_mix() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        TaskSelection::parse(&names(&["auto"])).unwrap(),
        TaskSelection::Auto
    );
    assert_eq!(
        TaskSelection::parse(&names(&["val", "piqa", "val"])).unwrap(),
        TaskSelection::List(vec![Task::Piqa, Task::Val])
    );
    let err = TaskSelection::parse(&names(&["piqa", "mmlu"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("mmlu") && err.contains("arc_easy"), "{err}");
    assert!(TaskSelection::parse(&names(&["auto", "piqa"])).is_err());
}

#[test]
fn config_validates_suite_fields_together() {
    let base = r#"
[data]
prepared_dir = "p"
[model]
preset = "tiny"
[schedule]
warmup_steps = 1
[budget]
steps = 4
[train]
batch_size = 2
"#;
    let cfg = syllabus::config::Config::from_toml_str(base, "t.toml", &[]).expect("defaults");
    assert_eq!(cfg.eval.tasks, ["auto"]);
    assert_eq!(cfg.eval.tasks_dir, None, "unset: the user cache");
    assert_eq!(cfg.eval.stride, None);
    let opts = syllabus::train::suite_options(&cfg, None).expect("options");
    assert_eq!(
        (opts.context, opts.stride),
        (128, 32),
        "default stride is context / 4"
    );

    let bad = format!("{base}[eval]\ntasks = [\"piqa\", \"mmlu\"]\nstride = 129\n");
    let err = syllabus::config::Config::from_toml_str(&bad, "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("eval.tasks") && err.contains("mmlu"), "{err}");
    assert!(
        err.contains("eval.stride (129)") && err.contains("(128)"),
        "{err}"
    );
    let zero = format!("{base}[eval]\nstride = 0\n");
    let err = syllabus::config::Config::from_toml_str(&zero, "t.toml", &[]).unwrap_err();
    assert!(err.to_string().contains("eval.stride must be > 0"));
}
