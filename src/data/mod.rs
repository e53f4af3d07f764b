//! Data pipeline: tokenizers, memory-mapped token stores, per-document indexes,
//! fixed-length training blocks, corpus preparation and simple corpus statistics.
//!
//! On disk a prepared dataset is a directory holding `train.bin`, `val.bin` (token stores),
//! `train.docs`, `val.docs` (document indexes) and `manifest.json` (written last, so its
//! presence means the directory is complete). Every file carries a checksum of its content,
//! verified whenever it is loaded; `verify_prepared` checks a whole directory file by file.

// Submodules are public so both `data::X` (re-exported below) and `data::module::X` work.
pub mod blocks;
mod content;
pub mod doc_index;
pub(crate) mod inputs;
pub mod manifest;
pub mod prepare;
mod prepared_tokenizer;
mod split;
pub mod stats;
pub mod store;
pub mod tokenizer;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::fsutil::binheader::HeaderError;

pub use blocks::Blocks;
pub use doc_index::DocIndex;
pub use inputs::{Columns, DEFAULT_SOURCE};
pub use manifest::{
    is_prepared, load_prepared, missing_files, Manifest, PreparedData, SkipCounts, SourceFile,
    SourceTotals, SplitInfo, MANIFEST_FILE, MANIFEST_FORMAT_VERSION,
};
pub use prepare::{prepare, PrepareOptions};
pub use prepared_tokenizer::{prepared_tokenizer, TOKENIZER_FILE};
pub use stats::{unigram_entropy, unigram_entropy_of_counts};
pub use store::{TokenStore, TokenStoreWriter, STORE_FORMAT_VERSION, STORE_HEADER_LEN};
pub use tokenizer::{tokenizer_file_hash, Tokenizer, EOT_TOKEN, GPT2_VOCAB_SIZE};
pub use verify::{verify_prepared, FileCheck, FileStatus};

/// The input file types `prepare` reads, for messages.
pub(crate) const SUPPORTED_INPUTS: &str =
    ".txt, .jsonl (either optionally compressed: .gz, .zst) or .parquet";

/// Everything that can go wrong in the data pipeline. Every variant that concerns a file
/// names it, so a message alone tells the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Lock(#[from] crate::fsutil::LockError),

    /// A refused header (bad magic, truncated, unsupported version, checksum mismatch), or a
    /// manifest of a version this build does not read.
    #[error(transparent)]
    Header(#[from] HeaderError),

    /// The CRC32 of the bytes after the header differs from the one the header stores.
    #[error(
        "{path}: content checksum mismatch (header says crc32:{stored:08x}, content is \
         crc32:{computed:08x}): the {kind} is corrupted; re-run `syllabus prepare`"
    )]
    ContentChecksum {
        path: PathBuf,
        kind: &'static str,
        stored: u32,
        computed: u32,
    },

    /// `manifest.json` (or another checksummed JSON file) failed its own checksum.
    #[error("{path}: {source}; re-run `syllabus prepare`")]
    JsonChecksum {
        path: PathBuf,
        #[source]
        source: crate::fsutil::ChecksumError,
    },

    #[error("{path}: truncated: expected {expected} bytes, found {found}")]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },

    /// A structurally invalid field (dtype, vocabulary size, offsets, manifest field...).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },

    #[error("token id {token} at position {position} is out of range for vocabulary size {vocab_size} ({path})")]
    TokenOutOfRange {
        path: PathBuf,
        position: u64,
        token: u32,
        vocab_size: u32,
    },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A malformed JSONL line; `line` is 1-based.
    #[error("{path}:{line}: {message}")]
    Jsonl {
        path: PathBuf,
        line: u64,
        message: String,
    },

    #[error("{path}: invalid UTF-8 at byte offset {offset}{}", if *.decompressed { " of the decompressed content" } else { "" })]
    InvalidUtf8 {
        path: PathBuf,
        offset: u64,
        decompressed: bool,
    },

    /// A parquet input that cannot be read as one: corrupt, a missing or non-string column, a
    /// null text. `row` is 0-based within the file, as pandas and `datasets` count.
    #[error("{path}: {}{message}", row.map(|r| format!("row {r}: ")).unwrap_or_default())]
    Parquet {
        path: PathBuf,
        row: Option<u64>,
        message: String,
    },

    #[error("{path}: unsupported input file type; expected {}", SUPPORTED_INPUTS)]
    UnsupportedExtension { path: PathBuf },

    #[error("input path does not exist: {path}")]
    MissingInput { path: PathBuf },

    #[error("no input files match the pattern {pattern}")]
    NoMatches { pattern: String },

    #[error(
        "no input files: pass at least one {} file, a directory holding some, or a glob \
         pattern",
        SUPPORTED_INPUTS
    )]
    NoInputs,

    #[error("{0}")]
    EmptyCorpus(String),

    /// `what` says whether the data there is complete ("prepared data") or not.
    #[error("refusing to overwrite {what} in {dir}; pass --overwrite to prepare it again")]
    RefuseOverwrite { dir: PathBuf, what: String },

    #[error(
        "{path}: holds {tokens} tokens but one block needs {needed} (context length + 1); \
         use a larger corpus or a shorter context"
    )]
    TooFewTokens {
        path: PathBuf,
        tokens: usize,
        needed: usize,
    },

    /// An invalid argument (option value, block length...), not tied to a file.
    #[error("{0}")]
    InvalidArgument(String),
}

impl DataError {
    /// Wraps an I/O error with the path it concerns (the std error alone does not say).
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// [`crate::fsutil::commit_rename`], naming the destination in the error.
pub(crate) fn commit_rename(tmp: &Path, dest: &Path) -> Result<(), DataError> {
    crate::fsutil::commit_rename(tmp, dest).map_err(|e| DataError::io(dest, e))
}
