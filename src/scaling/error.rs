//! Errors of reading loss tables and fitting scaling laws. Every variant about the input
//! names the file, and about a value also the line and column, so a bad table can be fixed
//! without guessing.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ScalingError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The CSV layer could not split a record (unbalanced quotes, ragged row, bad UTF-8).
    #[error("{path}: line {line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },

    #[error(
        "{path}: not a known loss-table format; found columns [{}]. Known formats: {known}. \
         Pass --format to pick one explicitly",
        .found.join(", ")
    )]
    UnknownFormat {
        path: PathBuf,
        found: Vec<String>,
        known: String,
    },

    #[error(
        "{path}: format {format} needs column(s) [{}] that are missing; found columns [{}]",
        .missing.join(", "),
        .found.join(", ")
    )]
    MissingColumns {
        path: PathBuf,
        format: String,
        missing: Vec<String>,
        found: Vec<String>,
    },

    /// A cell that does not hold what its column needs (not a number, NaN/inf, not > 0).
    #[error(
        "{path}: line {line}, column `{column}`: value `{value}` is not valid: expected {expected}"
    )]
    BadValue {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
        expected: String,
    },

    /// An option names a column (`--x`, `--group-by`, `--where`) that the table lacks.
    #[error("{option} names column `{column}`, which is not in the table; columns: [{}]", .found.join(", "))]
    UnknownColumn {
        option: String,
        column: String,
        found: Vec<String>,
    },

    /// Command-line or API options out of range; all problems are listed together.
    #[error("invalid fit options:\n  - {}", .0.join("\n  - "))]
    Options(Vec<String>),

    /// The data cannot identify the requested law (one model size, constant loss, too few
    /// points after filtering).
    #[error("cannot fit {what}: {reason}")]
    Degenerate { what: String, reason: String },

    /// The optimiser produced no finite fit from any start.
    #[error("fit failed ({method}): {reason}")]
    Fit { method: String, reason: String },
}

impl ScalingError {
    pub fn degenerate(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Degenerate {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
