//! Sweeps over models x compute classes x policies x seeds.
//!
//! `syllabus sweep --config configs/sweeps/NAME.toml` runs the grid one run after another.
//! Resumable: a finished run (its `summary.json` says why it stopped) is skipped, a run with a
//! checkpoint resumes, a run that died before its first checkpoint starts over. Every run
//! evaluates at `eval_points` evenly spaced steps (intermediate checkpoints make scaling fits
//! much better: the Hitchhiker's guide, arXiv 2410.11840). The sweep directory gets
//! `results.csv` (ColPret columns, [`results`]), `summary.md` ([`summary`]) and the PNG plots.

mod analysis;
mod plots;
mod results;
mod spec;
mod summary;

pub use plots::{loss_curves, loss_vs_compute, FittedLine};
pub use results::{read_scalars, run_rows, write_csv, ResultRow, COLUMNS};
pub use spec::{ModelAxis, PolicyAxis, RunSpec, SweepSpec};
pub use summary::{final_rows, mean_std, render as render_summary};

use std::path::{Path, PathBuf};

use crate::fsutil::DirLock;
use crate::plugins::Plugins;
use crate::train::CONFIG_FILE;
use crate::train::{checkpoint, same_config, train_with, TrainError, TrainOptions};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("sweep {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("sweep runs have invalid configs:\n{0}")]
    Runs(String),
    #[error("results: {0}")]
    Results(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::fsutil::LockError),
    #[error("{failed} of {total} runs failed:\n{messages}")]
    Failed {
        failed: usize,
        total: usize,
        messages: String,
    },
}

/// What happened to each run of a sweep invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Skipped,
    Resumed,
    Started,
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct SweepReport {
    pub dir: PathBuf,
    pub outcomes: Vec<(String, RunOutcome)>,
    pub rows: usize,
}

/// [`run_sweep_with`] the built-in sampling policies and architectures.
pub fn run_sweep(path: &Path) -> Result<SweepReport, SweepError> {
    run_sweep_with(path, &Plugins::builtin())
}

/// Runs (or continues) every run of the sweep with the policies and architectures of
/// `plugins`, then writes
/// results, summary and plots. Failed runs do not stop the others; they are reported together
/// at the end.
pub fn run_sweep_with(path: &Path, plugins: &Plugins) -> Result<SweepReport, SweepError> {
    let (spec, base) = SweepSpec::load(path)?;
    let runs = spec.expand(&base, &plugins.models)?;
    let dir = spec.dir();
    // One sweep process per sweep directory (each run also locks its own directory).
    let _lock = DirLock::acquire(&dir, "sweep")?;
    let mut outcomes = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        eprintln!("sweep [{}/{}] {}", i + 1, runs.len(), run.label);
        outcomes.push((run.label.clone(), run_one(run, plugins)));
    }
    let rows = write_outputs(&spec, &runs)?;
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(label, o)| match o {
            RunOutcome::Failed(m) => Some(format!("{label}: {m}")),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        return Err(SweepError::Failed {
            failed: failures.len(),
            total: runs.len(),
            messages: failures.join("\n"),
        });
    }
    Ok(SweepReport {
        dir,
        outcomes,
        rows,
    })
}

fn run_one(run: &RunSpec, plugins: &Plugins) -> RunOutcome {
    let dir = run.config.run.run_dir();
    if let Some(message) = config_changed(&dir, &run.config.to_toml()) {
        return RunOutcome::Failed(message);
    }
    if finished(&dir) {
        return RunOutcome::Skipped;
    }
    let resume = matches!(checkpoint::latest(&dir), Ok(Some(_)));
    let opts = TrainOptions {
        resume,
        // A run directory without a checkpoint holds only a run that died at its start.
        overwrite: !resume,
        ..Default::default()
    };
    match train_with(&run.config, &opts, plugins) {
        Ok(_) if resume => RunOutcome::Resumed,
        Ok(_) => RunOutcome::Started,
        Err(TrainError::AlreadyFinished { .. }) => RunOutcome::Skipped,
        Err(e) => RunOutcome::Failed(e.to_string()),
    }
}

/// A run directory made from another config (the sweep file or its base changed since): its
/// results must not be mixed into this sweep's, so the run is reported instead of skipped.
fn config_changed(run_dir: &Path, config_toml: &str) -> Option<String> {
    let saved = std::fs::read_to_string(run_dir.join(CONFIG_FILE)).ok()?;
    match same_config(&saved, config_toml) {
        true => None,
        false => Some(format!(
            "{} holds a run of a different config (the sweep or its base changed); move it \
             away or give the sweep a new name",
            run_dir.display()
        )),
    }
}

/// A run is finished when its `summary.json` records why training ended (an interrupted run
/// records `"stop": null`).
fn finished(run_dir: &Path) -> bool {
    std::fs::read_to_string(run_dir.join(crate::train::SUMMARY_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| !v["stop"].is_null())
}

/// `results.csv` and `summary.md` from every run that has evaluations. Returns the row count.
fn write_outputs(spec: &SweepSpec, runs: &[RunSpec]) -> Result<usize, SweepError> {
    let mut rows = Vec::new();
    for run in runs.iter().filter(|r| r.config.run.run_dir().exists()) {
        rows.extend(run_rows(run)?);
    }
    let dir = spec.dir();
    write_csv(&dir.join("results.csv"), &rows)?;
    let classes = classes_by_compute(spec, &rows);
    let mut md = render_summary(&spec.name, &rows, &classes);
    let mut lines = Vec::new();
    if !rows.is_empty() {
        // Too few classes or seeds make the fit fail; the summary says why instead.
        match analysis::fit_policies(&dir.join("results.csv"), &rows) {
            Ok(report) => {
                lines = analysis::fitted_lines(&report);
                md += &analysis::render(&report, &rows, baseline(spec), &classes);
            }
            Err(e) => {
                md += &format!(
                    "
## Loss vs compute

No fit: {e}
"
                )
            }
        }
    }
    write_atomic(&dir.join("summary.md"), md.as_bytes())?;
    if !rows.is_empty() {
        loss_curves(&dir.join("loss_curves.png"), &rows)?;
        loss_vs_compute(&dir.join("loss_vs_compute.png"), &rows, &lines)?;
    }
    Ok(rows.len())
}

/// The policy others are compared with: `uniform` when the sweep has it, else the first label.
fn baseline(spec: &SweepSpec) -> &str {
    match spec.policies.contains_key("uniform") {
        true => "uniform",
        false => spec.policies.keys().next().map_or("", |k| k.as_str()),
    }
}

/// Compute-class labels in increasing order of the compute their runs were charged (mean FLOPs
/// of the final evaluations); classes without results keep their file order at the end.
fn classes_by_compute(spec: &SweepSpec, rows: &[ResultRow]) -> Vec<String> {
    let finals = final_rows(rows);
    let mut keyed: Vec<(f64, &String)> = spec
        .budgets
        .keys()
        .map(|label| {
            let flops: Vec<f64> = finals
                .iter()
                .filter(|r| &r.compute_class == label)
                .map(|r| r.flops)
                .collect();
            let mean = match flops.is_empty() {
                true => f64::INFINITY,
                false => mean_std(&flops).0,
            };
            (mean, label)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, l)| l.clone()).collect()
}

/// `fsutil::write_atomic` with the path in the error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    crate::fsutil::write_atomic(path, bytes).map_err(|source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    })
}
