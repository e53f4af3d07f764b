//! Where suite results go: `RUN_DIR/eval.json` (one entry per checkpoint step), TensorBoard /
//! JSONL scalars through the run's metrics sinks, and a console table.
//!
//! `eval.json` layout: `{"format": "syllabus-eval", "version": 1, "checkpoints": {"<step>":
//! {"step", "checkpoint", "created_unix", "report"}}}`. Evaluating a step again replaces that
//! step's entry and keeps the others. The file is rewritten through a temp file and a rename, and
//! an existing file that cannot be read back is an error, never overwritten.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::suite::SuiteReport;
use super::EvalError;
use crate::logging::MetricsSink;

pub const EVAL_FILE: &str = "eval.json";
const FORMAT: &str = "syllabus-eval";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct EvalFile {
    format: String,
    version: u32,
    /// Entries by checkpoint step (numeric order).
    checkpoints: BTreeMap<u64, serde_json::Value>,
}

#[derive(Serialize)]
struct Entry<'a> {
    step: u64,
    checkpoint: Option<&'a Path>,
    created_unix: u64,
    report: &'a SuiteReport,
}

/// Stores `report` for checkpoint `step` in `run_dir/eval.json`; returns the file's path.
pub fn write_eval_json(
    run_dir: &Path,
    step: u64,
    checkpoint: Option<&Path>,
    report: &SuiteReport,
) -> Result<PathBuf, EvalError> {
    let path = run_dir.join(EVAL_FILE);
    let mut file = read_existing(&path)?;
    let entry = Entry {
        step,
        checkpoint,
        created_unix: crate::fsutil::unix_now(),
        report,
    };
    file.checkpoints.insert(step, serde_json::to_value(&entry)?);
    let bytes = serde_json::to_vec_pretty(&file)?;
    crate::fsutil::write_atomic(&path, &bytes).map_err(|e| EvalError::io(&path, e))?;
    Ok(path)
}

fn read_existing(path: &Path) -> Result<EvalFile, EvalError> {
    if !path.exists() {
        return Ok(EvalFile {
            format: FORMAT.into(),
            version: VERSION,
            checkpoints: BTreeMap::new(),
        });
    }
    let bad = |message: String| EvalError::Report {
        path: path.to_path_buf(),
        message,
    };
    let bytes = fs::read(path).map_err(|e| EvalError::io(path, e))?;
    let file: EvalFile = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "expected a {FORMAT} file ({{format, version, checkpoints}}), cannot parse it: {e}"
        ))
    })?;
    if file.format != FORMAT || file.version != VERSION {
        return Err(bad(format!(
            "expected format {FORMAT:?} version {VERSION}, found {:?} version {}",
            file.format, file.version
        )));
    }
    Ok(file)
}

/// Logs `eval/<task>/acc`, `eval/<task>/acc_centered`, `eval/core_centered_mean`,
/// `eval/lambada/target_ppl`, `eval/<set>/norm_ppl`, `eval/<set>/bits_per_byte` and
/// `eval/<set>/token_ppl` at `step`.
pub fn log_scalars(sink: &mut dyn MetricsSink, report: &SuiteReport, step: u64) {
    for t in &report.tasks {
        sink.scalar(&format!("eval/{}/acc", t.task), t.acc, step);
        sink.scalar(
            &format!("eval/{}/acc_centered", t.task),
            t.acc_centered,
            step,
        );
        if let Some(ppl) = t.target_ppl {
            sink.scalar(&format!("eval/{}/target_ppl", t.task), ppl, step);
        }
    }
    if let Some(mean) = report.core_centered_mean {
        sink.scalar("eval/core_centered_mean", mean, step);
    }
    for p in &report.perplexity {
        sink.scalar(&format!("eval/{}/norm_ppl", p.set), p.norm_ppl, step);
        sink.scalar(
            &format!("eval/{}/bits_per_byte", p.set),
            p.bits_per_byte,
            step,
        );
        sink.scalar(&format!("eval/{}/token_ppl", p.set), p.token_ppl, step);
    }
    sink.flush();
}

/// The report as aligned text tables (zero-shot tasks, then perplexity sets, then skips).
pub fn render_table(report: &SuiteReport) -> String {
    let mut out = match report.tasks.is_empty() {
        true => String::new(),
        false => task_table(report),
    };
    if let Some(mean) = report.core_centered_mean {
        out.push_str(&format!(
            "mean centered accuracy over {} tasks: {mean:+.4}\n",
            report.tasks.len()
        ));
    }
    if !report.perplexity.is_empty() {
        let mut rows = vec![row(&[
            "set",
            "tokens",
            "bytes",
            "norm ppl/byte",
            "norm ppl/char",
            "bits/byte",
            "token ppl",
        ])];
        for p in &report.perplexity {
            rows.push(row(&[
                &p.set,
                &p.tokens.to_string(),
                &p.bytes.to_string(),
                &format!("{:.4}", p.norm_ppl),
                &format!("{:.4}", p.norm_ppl_chars),
                &format!("{:.4}", p.bits_per_byte),
                &format!("{:.2}", p.token_ppl),
            ]));
        }
        out.push('\n');
        out.push_str(&align(&rows));
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.task, s.reason));
    }
    out.push_str(&format!("suite time {:.1} s\n", report.seconds));
    out
}

/// The zero-shot rows of `render_table`.
fn task_table(report: &SuiteReport) -> String {
    let mut rows = vec![row(&[
        "task", "n", "metric", "acc", "±se", "random", "centered", "extra",
    ])];
    for t in &report.tasks {
        let extra = match (t.target_ppl, t.acc_raw) {
            (Some(ppl), _) => format!("target ppl {ppl:.1}"),
            (None, Some(raw)) => format!("acc_raw {raw:.4}"),
            _ => String::new(),
        };
        rows.push(row(&[
            &t.task,
            &t.examples.to_string(),
            &t.metric,
            &format!("{:.4}", t.acc),
            &format!("{:.4}", t.acc_stderr),
            &format!("{:.4}", t.random_baseline),
            &format!("{:+.4}", t.acc_centered),
            &extra,
        ]));
    }
    align(&rows)
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns separated by ` | `, with a rule under the header row.
fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let width: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .zip(&width)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join(" | ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = width.iter().map(|&w| "-".repeat(w)).collect();
            out.push_str(&rule.join("-+-"));
            out.push('\n');
        }
    }
    out
}
