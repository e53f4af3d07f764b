//! The training run: setup ([`session`]), the loop ([`trainer`]), evaluation, checkpoints and
//! the run directory. One optimizer step is `optim::train_step`.

mod batch;
mod budget_files;
pub mod checkpoint;
mod checkpoint_eval;
mod data_setup;
pub mod eval;
mod resume;
mod run_dir;
mod run_log;
mod run_tokenizer;
mod session;
mod trainer;

pub use batch::load_batch;
pub use checkpoint_eval::{evaluate_checkpoint, suite_options, CheckpointEval, EvalOverrides};
pub use data_setup::load_data;
pub use eval::{evaluate, EvalResult};
pub use run_dir::{same_config, CONFIG_FILE};
pub use run_tokenizer::{load_run_tokenizer, save_run_tokenizer};
pub use session::Session;
pub use trainer::{train, train_with, TrainOptions, TrainSummary};

use std::path::PathBuf;

/// The end-of-run summary in the run directory; its presence marks a finished run.
pub const SUMMARY_FILE: &str = "summary.json";

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Optim(#[from] crate::optim::OptimError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Logging(#[from] crate::logging::LoggingError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Sampling(#[from] crate::sampling::SamplingError),
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    #[error(transparent)]
    Lock(#[from] crate::fsutil::LockError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("checkpoint {0}")]
    Checkpoint(String),
    #[error("run directory {0}")]
    RunDir(String),
    /// `--resume` of a run whose budget is spent: nothing to do (the CLI says so and exits 0).
    #[error("{}: the run already finished at step {step} ({reason}); nothing to resume", run_dir.display())]
    AlreadyFinished {
        run_dir: PathBuf,
        step: u64,
        reason: String,
    },
    #[error("device: {0}")]
    Device(#[from] crate::device::DeviceError),
    #[error("data: {0}")]
    DataSetup(String),
    #[error(
        "{skips} consecutive updates were skipped, the last at step {step} because {reason}; \
         stopped. The weights and the ledger are untouched by those steps; the last good state \
         is saved in {checkpoint}"
    )]
    NonFinite {
        skips: u32,
        step: u64,
        /// What was non-finite (loss or gradient norm), with the values.
        reason: String,
        checkpoint: String,
    },
}
