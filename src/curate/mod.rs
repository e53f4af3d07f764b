//! `syllabus curate`: a DataComp-LM-style data-curation pipeline (Li et al. 2024, "DataComp-LM:
//! In search of the next generation of training sets for language models", arXiv 2406.11794).
//!
//! Stages, each optional and configured by one TOML table (see [`config`]):
//! exact dedup ([`exact`]) -> heuristic filters and line modifiers ([`heuristics`],
//! [`repetition`], [`lines`]) -> MinHash/LSH near-dup removal ([`minhash`]) -> BFF-style Bloom
//! n-gram dedup ([`bloom`]) -> fastText quality filter ([`quality`]) -> source mixing ([`mix`]).
//! Documents stream through in batches; memory is bounded by the batch size plus the dedup
//! state (stated per stage in its module). Output: `.jsonl(.zst)` shards ([`output`]) and a
//! report ([`report`]). The user guide is `docs/curation.md`.

pub mod bloom;
mod checks;
pub mod config;
pub mod exact;
pub mod heuristics;
mod keys;
pub mod lines;
pub mod minhash;
pub mod mix;
pub mod normalize;
pub mod output;
pub mod pipeline;
pub mod quality;
pub mod repetition;
pub mod report;
mod run;

use std::path::{Path, PathBuf};

pub use config::CurateConfig;
pub use report::{Counts, Report};
pub use run::{curate, read_texts, RunOptions, PROGRESS_FILE, REPORT_JSON, REPORT_MD};

/// One document in the pipeline.
#[derive(Clone, Debug)]
pub struct Doc {
    pub text: String,
    pub source: String,
    /// Size of `text`, kept in step with it.
    pub counts: Counts,
    /// P(positive label), once the quality stage has run.
    pub score: Option<f64>,
}

impl Doc {
    pub fn new(text: String, source: String) -> Doc {
        Doc {
            counts: Counts::of(&text),
            text,
            source,
            score: None,
        }
    }

    pub fn set_text(&mut self, text: String) {
        self.counts = Counts::of(&text);
        self.text = text;
    }
}

/// Everything that can go wrong while curating.
#[derive(Debug, thiserror::Error)]
pub enum CurateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid curation config {path}:\n  - {}", problems.join("\n  - "))]
    Config { path: String, problems: Vec<String> },
    #[error(transparent)]
    Input(#[from] crate::data::DataError),
    #[error("fastText model {path}: {message}")]
    Classifier { path: PathBuf, message: String },
    #[error(
        "{path} already exists and is not empty: pass --overwrite to replace its curated \
         shards and report, or --resume to continue an interrupted run"
    )]
    OutputExists { path: PathBuf },
    #[error("cannot resume in {path}: {reason}")]
    Resume { path: PathBuf, reason: String },
    #[error(transparent)]
    Lock(#[from] crate::fsutil::LockError),
}

impl CurateError {
    pub fn io(path: &Path, source: std::io::Error) -> CurateError {
        CurateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
