//! Loss tables: reading a CSV, recognising its layout ([`Format`]) and turning every row into
//! an [`Observation`] with N, D, FLOPs and a loss in nats. Bad cells are reported with file,
//! line and column; nothing is silently skipped.

mod format;
mod values;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use format::Format;

use super::ScalingError;

/// Column names under which the mapped quantities can be addressed (`--x flops`), whatever
/// the source format called them.
pub const CANONICAL_COLUMNS: [&str; 4] = ["num_params", "tokens_seen", "flops", "loss"];

/// One checkpoint (or final result) of one training run.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// Parameter count N.
    pub num_params: f64,
    /// Training tokens seen so far, D.
    pub tokens: f64,
    /// Training compute in FLOPs (6·N·D where the table has none).
    pub flops: f64,
    /// Validation loss in nats.
    pub loss: f64,
    /// Identifies the training run the row belongs to (see the format table).
    pub run: String,
    pub seed: Option<String>,
    /// The raw cells, aligned with [`Dataset::columns`].
    pub fields: Vec<String>,
}

/// A whole table after the column mapping.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub format: Format,
    /// True when the format was recognised from the header rather than given.
    pub detected: bool,
    pub columns: Vec<String>,
    pub rows: Vec<Observation>,
}

impl Dataset {
    /// Index of a raw column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Whether `name` can be used as a numeric axis: a canonical column or a raw one.
    pub fn has_value_column(&self, name: &str) -> bool {
        CANONICAL_COLUMNS.contains(&name) || self.column(name).is_some()
    }

    /// The numeric value of `name` in `row`. Canonical names give the mapped quantities
    /// (so `flops` is 10^x for OPT's log10 column); other columns are parsed as finite
    /// numbers > 0, with an error naming the line.
    pub fn value(&self, row: &Observation, name: &str) -> Result<f64, ScalingError> {
        match name {
            "num_params" => return Ok(row.num_params),
            "tokens_seen" => return Ok(row.tokens),
            "flops" => return Ok(row.flops),
            "loss" => return Ok(row.loss),
            _ => {}
        }
        let i = self
            .column(name)
            .ok_or_else(|| ScalingError::UnknownColumn {
                option: "--x".into(),
                column: name.into(),
                found: self.all_columns(),
            })?;
        let raw = row.fields.get(i).map(String::as_str).unwrap_or("");
        values::positive(raw).map_err(|expected| ScalingError::BadValue {
            path: self.path.clone(),
            line: row.line,
            column: name.into(),
            value: raw.into(),
            expected,
        })
    }

    /// Raw columns plus canonical ones not already among them, for error messages.
    pub fn all_columns(&self) -> Vec<String> {
        let mut out = self.columns.clone();
        for c in CANONICAL_COLUMNS {
            if !out.iter().any(|o| o == c) {
                out.push(c.to_string());
            }
        }
        out
    }
}

/// Reads `path`, detecting the format from the header unless `format` is given.
pub fn read_table(path: &Path, format: Option<Format>) -> Result<Dataset, ScalingError> {
    let file = std::fs::File::open(path).map_err(|source| ScalingError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_table(path, file, format)
}

/// Parses CSV text from `reader`; `path` only labels messages.
pub fn parse_table<R: Read>(
    path: &Path,
    reader: R,
    format: Option<Format>,
) -> Result<Dataset, ScalingError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let csv_error = |e: csv::Error| ScalingError::Csv {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    };
    let columns: Vec<String> = csv
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let (format, detected) = resolve_format(path, &columns, format)?;
    let index: HashMap<String, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        let fields: Vec<String> = record.iter().map(str::to_string).collect();
        let row = format::Row {
            index: &index,
            fields: &fields,
        };
        let m =
            format
                .map_row(&row)
                .map_err(|(column, value, expected)| ScalingError::BadValue {
                    path: path.to_path_buf(),
                    line,
                    column,
                    value,
                    expected,
                })?;
        rows.push(Observation {
            line,
            num_params: m.num_params,
            tokens: m.tokens,
            flops: m.flops,
            loss: m.loss,
            run: m.run,
            seed: m.seed,
            fields,
        });
    }
    Ok(Dataset {
        path: path.to_path_buf(),
        format,
        detected,
        columns,
        rows,
    })
}

fn resolve_format(
    path: &Path,
    columns: &[String],
    given: Option<Format>,
) -> Result<(Format, bool), ScalingError> {
    match given {
        Some(f) => {
            let missing = f.missing_columns(columns);
            if missing.is_empty() {
                Ok((f, false))
            } else {
                Err(ScalingError::MissingColumns {
                    path: path.to_path_buf(),
                    format: f.name().into(),
                    missing,
                    found: columns.to_vec(),
                })
            }
        }
        None => {
            Format::detect(columns)
                .map(|f| (f, true))
                .ok_or_else(|| ScalingError::UnknownFormat {
                    path: path.to_path_buf(),
                    found: columns.to_vec(),
                    known: Format::describe_all(),
                })
        }
    }
}

#[cfg(test)]
mod tests;
