//! Held-out evaluation beyond the training loop's validation loss: normalised perplexity on text
//! streams (Languini, arXiv 2309.11197) and zero-shot multiple-choice / cloze tasks scored as in
//! DCLM's CORE (arXiv 2406.11794: centered accuracy (acc - r) / (1 - r)).
//!
//! - [`scorer`]: the model-agnostic core. A [`Scorer`] returns, for each (context, continuation)
//!   pair, the continuation's summed log-probability, its token count and whether greedy decoding
//!   reproduces it; [`score_all`] truncates from the left, sorts by length and batches.
//! - [`gpt_scorer`]: [`Scorer`] for [`crate::model::Gpt`] (right-padded batches, lm_head applied
//!   only at scored positions).
//! - [`perplexity`]: sliding-window normalised perplexity (per UTF-8 byte and per character).
//! - [`choice`]: the multiple-choice scoring rule shared by HellaSwag, PIQA, ARC and WinoGrande;
//!   [`lambada`]: last-word accuracy.
//! - [`datasets`]: parsers for the evaluation files (`eval.tasks_dir`), with `file:line: field`
//!   errors.
//! - [`suite`]: task selection ([`SuiteOptions`]) and [`run_suite`], the entry point the trainer
//!   calls; [`report`]: `eval.json`, TensorBoard scalars and the console table. Evaluating a
//!   run's saved checkpoint (`syllabus eval`) is `train::evaluate_checkpoint`.

pub mod choice;
pub mod datasets;
pub mod gpt_scorer;
mod jsonl;
pub mod lambada;
pub mod perplexity;
pub mod report;
pub mod scorer;
pub mod suite;

use std::path::PathBuf;

pub use choice::{ChoiceExample, Normalisation, TaskReport};
pub use gpt_scorer::GptScorer;
pub use lambada::ClozeExample;
pub use perplexity::{sliding_window_requests, PerplexityReport};
pub use report::{log_scalars, render_table, write_eval_json, EVAL_FILE};
pub use scorer::{score_all, Request, Score, Scorer};
pub use suite::{
    cached_tasks_dir, locate_tasks_dir, resolve, run_suite, run_suite_with, SkippedTask,
    SuiteOptions, SuiteReport, Task, TaskSelection,
};

/// Everything that can go wrong while evaluating. File problems name the file (and line and
/// field for parse errors) and say what was expected.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A malformed example; `line` is 1-based.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },

    #[error(
        "task `{task}` needs {}, which does not exist (set eval.tasks_dir, pass --tasks-dir, \
         or put the task files in the user cache, ~/.cache/syllabus/eval)",
        path.display()
    )]
    MissingTaskFile { task: String, path: PathBuf },

    #[error("unknown eval task `{name}` (known: {known})")]
    UnknownTask { name: String, known: String },

    /// An option or input that cannot be evaluated (zero stride, empty text, ...).
    #[error("{0}")]
    Invalid(String),

    /// An existing `eval.json` that cannot be read back; it is never overwritten.
    #[error("{}: {message}; not overwriting it", path.display())]
    Report { path: PathBuf, message: String },

    #[error(transparent)]
    Model(#[from] crate::model::ModelError),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error(transparent)]
    Data(#[from] crate::data::DataError),

    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error(transparent)]
    Logging(#[from] crate::logging::LoggingError),
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}
