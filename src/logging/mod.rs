//! Metrics output: the [`MetricsSink`] trait the trainer talks to, and its
//! implementations.
//!
//! - [`MetricsLogger`]: production sink. One background thread writes a
//!   TensorBoard event file directly in the run directory (so `tensorboard
//!   --logdir runs/` shows one run per run directory) and `metrics.jsonl`
//!   (line format documented in [`jsonl`]). Failures are recorded, never
//!   propagated as panics; see [`MetricsLogger::health`].
//! - [`NullSink`] discards; [`MemorySink`] records in memory for tests.
//! - [`console`]: human-readable step/eval lines, config table, progress bar.

pub mod console;
pub mod histogram;
pub mod hparams;
pub mod jsonl;
mod logger;
pub mod sink;
pub mod tensorboard;
mod worker;

use std::path::PathBuf;

pub use histogram::Histogram;
pub use hparams::{HParam, HParams, SessionStatus};
pub use logger::{LoggerOptions, MetricsLogger};
pub use sink::{MemoryRecords, MemorySink, MetricsSink, NullSink, ScalarRecord};

/// Errors surfaced when opening or closing a [`MetricsLogger`].
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot open metrics output in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the metrics writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The writer thread failed while running; metrics after this were lost.
    #[error("{0}")]
    Writer(String),
}
