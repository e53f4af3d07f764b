//! `syllabus sweep` end to end on a tiny grid: every run trains once, a second invocation
//! skips them, results.csv has the ColPret columns and one row per evaluation.

mod common;

use syllabus::sweep::{run_sweep, RunOutcome, COLUMNS};

fn write_sweep(dir: &std::path::Path) -> std::path::PathBuf {
    let base = common::tiny_config(dir, 10, "");
    std::fs::write(dir.join("base.toml"), base.to_toml()).unwrap();
    let sweep = format!(
        r#"
name = "tiny-grid"
base = "base.toml"
out_dir = "{out}"
seeds = [1, 2]
eval_points = 3

[budgets.small]
steps = 3
[budgets.large]
tokens = 768

[policies.uniform]
policy = "uniform"
[policies.lfr]
policy = "lfr"
params = {{ phases = [{{ kind = "learn", steps = 2 }}, {{ kind = "focus", steps = 2, drop_fraction = 0.5 }}] }}
"#,
        out = dir.join("sweeps").display()
    );
    let path = dir.join("sweep.toml");
    std::fs::write(&path, sweep).unwrap();
    path
}

#[test]
fn a_sweep_runs_the_grid_once_and_writes_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sweep(dir.path());
    let first = run_sweep(&path).unwrap();
    assert_eq!(first.outcomes.len(), 8, "2 budgets x 2 policies x 2 seeds");
    assert!(first
        .outcomes
        .iter()
        .all(|(_, o)| *o == RunOutcome::Started));

    let csv = std::fs::read_to_string(first.dir.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), COLUMNS.join(","));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), first.rows);
    // small: 3 steps, evals at 1, 2, 3; large: 768 / 128 = 6 steps, evals at 2, 4, 6 (step 0
    // is not a scaling checkpoint).
    assert_eq!(rows.len(), 4 * 3 * 2);
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
    let large_final: Vec<&Vec<&str>> = rows
        .iter()
        .filter(|r| r[col("compute_class")] == "large" && r[col("checkpoint")] == "6")
        .collect();
    assert_eq!(large_final.len(), 4);
    assert!(large_final.iter().all(|r| r[col("tokens_seen")] == "768"));
    assert!(rows
        .iter()
        .all(|r| r[col("loss")].parse::<f64>().unwrap() > 0.0));

    let summary = std::fs::read_to_string(first.dir.join("summary.md")).unwrap();
    let small = summary.find("`small`").unwrap();
    let large = summary.find("`large`").unwrap();
    assert!(small < large, "classes ordered by compute:\n{summary}");
    assert!(summary.contains("/ lfr | 2 |"), "{summary}");
    assert!(summary.contains("## Loss vs compute"), "{summary}");
    assert!(summary.contains("Compute to reach `uniform`"), "{summary}");

    for png in ["loss_curves.png", "loss_vs_compute.png"] {
        let bytes = std::fs::read(first.dir.join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png} is a PNG");
        assert!(bytes.len() > 10_000, "{png}: {} bytes", bytes.len());
    }

    // Finished runs are skipped; a run whose summary is gone resumes from its checkpoint.
    let gone = first.dir.join("runs/base-small-lfr-s1/summary.json");
    std::fs::remove_file(&gone).unwrap();
    let second = run_sweep(&path).unwrap();
    let resumed: Vec<&String> = second
        .outcomes
        .iter()
        .filter(|(_, o)| *o == RunOutcome::Resumed)
        .map(|(l, _)| l)
        .collect();
    assert_eq!(resumed, ["base-small-lfr-s1"]);
    assert_eq!(
        second
            .outcomes
            .iter()
            .filter(|(_, o)| *o == RunOutcome::Skipped)
            .count(),
        7
    );
    // The resumed run re-evaluates its last step: only that row's wall time may change.
    let without_wall = |text: &str| -> Vec<String> {
        let w = col("wall_hours");
        text.lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.remove(w);
                f.join(",")
            })
            .collect()
    };
    let again = std::fs::read_to_string(second.dir.join("results.csv")).unwrap();
    assert_eq!(without_wall(&again), without_wall(&csv));

    // Changing the base after runs exist is refused for those runs, not silently mixed in.
    let base = dir.path().join("base.toml");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(&base, text.replace("lr = 0.01", "lr = 0.02")).unwrap();
    let err = run_sweep(&path).unwrap_err().to_string();
    assert!(
        err.contains("8 of 8 runs failed") && err.contains("different config"),
        "{err}"
    );
}

#[test]
fn bad_sweep_files_name_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sweep(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let bad = text
        .replace("seeds = [1, 2]", "seeds = []")
        .replace("steps = 3", "steps = 3\ntokens = 5")
        .replace("policy = \"uniform\"", "policy = \"unifrom\"");
    std::fs::write(&path, bad).unwrap();
    let err = run_sweep(&path).unwrap_err().to_string();
    assert!(err.contains("seeds: at least one entry"), "{err}");
    assert!(
        err.contains("budgets.small: budget: set exactly one amount"),
        "{err}"
    );
    std::fs::write(
        &path,
        text.replace("policy = \"uniform\"", "policy = \"unifrom\""),
    )
    .unwrap();
    let err = run_sweep(&path).unwrap_err().to_string();
    assert!(err.contains("unifrom"), "{err}");
}

#[test]
fn labels_that_escape_and_repeated_seeds_are_refused_before_any_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sweep(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let bad = text
        .replace("[budgets.small]", "[budgets.\"../../../escape\"]")
        .replace("seeds = [1, 2]", "seeds = [1, 1]");
    std::fs::write(&path, bad).unwrap();
    let err = run_sweep(&path).unwrap_err().to_string();
    assert!(
        err.contains("budgets.\"../../../escape\": a label must be a plain name"),
        "{err}"
    );
    assert!(err.contains("seeds: 1 is listed twice"), "{err}");
    assert!(!dir.path().join("sweeps").exists(), "nothing was written");
}
