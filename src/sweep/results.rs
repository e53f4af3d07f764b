//! `results.csv`: one row per evaluation after step 0 of every run, ColPret-compatible (the
//! Hitchhiker's guide's dataset columns, arXiv 2410.11840, so its tools and `syllabus fit` read it), plus the sweep's own
//! columns. Rows come from each run's `metrics.jsonl` (`eval/loss` and the `budget/*` scalars
//! logged with every evaluation) and its `budget.json`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use serde::Serialize;

use super::{RunSpec, SweepError};
use crate::ledger::LedgerReader;

/// Column order of `results.csv`.
pub const COLUMNS: [&str; 17] = [
    "model_name",
    "model_type",
    "scaled_set",
    "tokens_seen",
    "flops",
    "num_params",
    "data",
    "checkpoint",
    "seed",
    "epochs",
    "arch",
    "loss",
    "policy",
    "compute_class",
    "theoretical_hours",
    "wall_hours",
    "run",
];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResultRow {
    /// The run label (one trajectory).
    pub model_name: String,
    pub model_type: String,
    /// Runs of one recipe (policy) across sizes and budgets: the family a scaling law is fit to.
    pub scaled_set: String,
    pub tokens_seen: u64,
    /// Model FLOPs of the charged compute (training tokens plus scoring at its forward cost).
    pub flops: f64,
    pub num_params: u64,
    pub data: String,
    /// Optimizer step of the evaluation.
    pub checkpoint: u64,
    pub seed: u64,
    pub epochs: f64,
    pub arch: String,
    /// Validation loss, nats per token.
    pub loss: f64,
    pub policy: String,
    pub compute_class: String,
    /// Reference accelerator-hours charged (empty without a reference throughput).
    pub theoretical_hours: Option<f64>,
    pub wall_hours: f64,
    pub run: String,
}

/// Scalars of a run's `metrics.jsonl`: tag -> step -> value (the last line wins: a resumed run
/// re-logs the steps after its checkpoint).
pub fn read_scalars(path: &Path) -> Result<BTreeMap<String, BTreeMap<u64, f64>>, SweepError> {
    let io = |e: std::io::Error| SweepError::Results(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| SweepError::Results(format!("{} line {}: {e}", path.display(), i + 1)))?;
        let (Some(tag), Some(step), Some(value)) = (
            v["tag"].as_str(),
            v["step"].as_u64(),
            v.get("value").and_then(|x| x.as_f64()),
        ) else {
            continue; // text, histogram, or non-finite scalar lines
        };
        out.entry(tag.to_string()).or_default().insert(step, value);
    }
    Ok(out)
}

/// The rows of one finished (or partly finished) run.
pub fn run_rows(run: &RunSpec) -> Result<Vec<ResultRow>, SweepError> {
    let dir = run.config.run.run_dir();
    let scalars = read_scalars(&dir.join(crate::logging::jsonl::JSONL_FILE_NAME))?;
    let plan_path = dir.join(crate::budget::PLAN_FILE);
    let bytes = std::fs::read(&plan_path)
        .map_err(|e| SweepError::Results(format!("{}: {e}", plan_path.display())))?;
    let plan: serde_json::Value = crate::fsutil::from_checksummed_json(&bytes, false)
        .map_err(|e| SweepError::Results(format!("{}: {e}", plan_path.display())))?;
    let tokens_per_step = plan["tokens_per_step"].as_u64().unwrap_or(0);
    let step_units = tokens_per_step as f64
        + plan["scored_tokens_per_step"].as_f64().unwrap_or(0.0)
            * plan["forward_cost"].as_f64().unwrap_or(0.0);
    let arch = run.config.arch();
    let train_tokens = train_tokens(&dir)?;
    let get = |tag: &str, step: u64| scalars.get(tag).and_then(|m| m.get(&step)).copied();
    let Some(losses) = scalars.get("eval/loss") else {
        return Ok(Vec::new());
    };
    // Step 0 (untrained) is not a checkpoint of a scaling trajectory: zero tokens and compute
    // have no place on the log axes of a fit. It stays in metrics.jsonl.
    Ok(losses
        .iter()
        .filter(|(&step, _)| step > 0)
        .map(|(&step, &loss)| {
            let tokens = step * tokens_per_step;
            ResultRow {
                model_name: run.label.clone(),
                model_type: "gpt2".into(),
                scaled_set: run.policy.clone(),
                tokens_seen: tokens,
                flops: step as f64 * step_units * arch.flops_per_token(run.config.context()),
                num_params: arch.num_params() as u64,
                data: run.config.data.prepared_dir.display().to_string(),
                checkpoint: step,
                seed: run.seed,
                epochs: tokens as f64 / train_tokens.max(1) as f64,
                arch: "dec".into(),
                loss,
                policy: run.policy.clone(),
                compute_class: run.budget.clone(),
                theoretical_hours: get("budget/theoretical_hours", step),
                wall_hours: get("budget/wall_hours", step).unwrap_or(f64::NAN),
                run: dir.display().to_string(),
            }
        })
        .collect())
}

/// Training tokens of the run's corpus (blocks x context), from its ledger header.
fn train_tokens(dir: &Path) -> Result<u64, SweepError> {
    let path = dir.join(crate::ledger::LEDGER_FILE);
    let h = LedgerReader::open(&path)
        .map_err(|e| SweepError::Results(format!("{}: {e}", path.display())))?
        .header();
    Ok(h.block_count * (u64::from(h.block_len) - 1))
}

/// Writes `rows` as CSV atomically (temp file + rename): the header is [`COLUMNS`], also
/// when there are no rows.
pub fn write_csv(path: &Path, rows: &[ResultRow]) -> Result<(), SweepError> {
    let csv_error =
        |e: &dyn std::fmt::Display| SweepError::Results(format!("{}: {e}", path.display()));
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(COLUMNS).map_err(|e| csv_error(&e))?;
    for r in rows {
        w.serialize(r).map_err(|e| csv_error(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| csv_error(&e))?;
    super::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_the_rows_fields_and_text_is_quoted() {
        let row = ResultRow {
            model_name: "a,b".into(),
            model_type: "say \"hi\"".into(),
            scaled_set: String::new(),
            tokens_seen: 1,
            flops: 2.5,
            num_params: 3,
            data: String::new(),
            checkpoint: 4,
            seed: 5,
            epochs: 0.5,
            arch: String::new(),
            loss: 1.25,
            policy: String::new(),
            compute_class: String::new(),
            theoretical_hours: None,
            wall_hours: 0.0,
            run: String::new(),
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(COLUMNS.join(",").as_str()));
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("\"a,b\",\"say \"\"hi\"\"\",,1,2.5,3,"),
            "{text}"
        );
    }

    #[test]
    fn the_last_logged_value_of_a_step_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(
            &path,
            "{\"step\":4,\"tag\":\"eval/loss\",\"value\":3.0,\"wall_time\":1}\n\
             {\"step\":4,\"tag\":\"config\",\"text\":\"x\",\"wall_time\":1}\n\
             {\"step\":4,\"tag\":\"eval/loss\",\"value\":2.5,\"wall_time\":2}\n\
             {\"step\":5,\"tag\":\"eval/loss\",\"value\":null,\"nonfinite\":\"nan\",\"wall_time\":2}\n",
        )
        .unwrap();
        let s = read_scalars(&path).unwrap();
        assert_eq!(s["eval/loss"].len(), 1);
        assert_eq!(s["eval/loss"][&4], 2.5);
        std::fs::write(&path, "not json\n").unwrap();
        let err = read_scalars(&path).unwrap_err().to_string();
        assert!(err.contains("m.jsonl line 1"), "{err}");
    }
}
