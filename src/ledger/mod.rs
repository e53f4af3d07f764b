//! The per-block loss ledger: one 32-byte record per training block, memory-mapped from
//! `RUN_DIR/ledger.bin`, updated after every step from the per-sequence losses the training
//! forward pass already computed (no extra scoring passes), and read by the sampling
//! policies, by `syllabus ledger RUN_DIR` and by TensorBoard logging.
//!
//! # File format (`ledger.bin`, little-endian)
//!
//! A 64-byte header (see `header.rs`: magic `SYLLEDGR`, format version, record size, block
//! count, block length, run id, generation = optimizer step of the last consistent flush,
//! CRC32 of the header) followed by `block count` [`BlockRecord`]s of 32 bytes each, indexed by
//! the stable block id of `data::Blocks`. Size: 64 + 32·N bytes, so 10^6 blocks = 32 MB,
//! 10^8 blocks = 3.2 GB. The file is mapped, not read: pages come in lazily as records are
//! touched, and the OS writes dirty pages back; creation streams the file in chunks, so no
//! N-sized buffer is ever built.
//!
//! # Concurrency
//!
//! One writer ([`Ledger`], the trainer) and any number of readers ([`LedgerReader`], other
//! processes such as `syllabus ledger`, or threads). Each record carries a seqlock counter
//! (`seq`): the writer makes it odd, writes the other fields, then makes it even; a reader
//! retries until it saw the same even value before and after copying the record, so it always
//! gets a whole record, never a mix of two updates. See `cells.rs`.
//!
//! # Consistency with checkpoints
//!
//! The trainer calls [`Ledger::snapshot_to`] with every checkpoint (the ledger is flushed and
//! copied next to the weights) and [`Ledger::restore_from`] on `--resume`, which copies the
//! checkpoint's ledger back over the live file. After a crash the live file can hold updates
//! from steps after the checkpoint; restoring the snapshot discards them, so the resumed ledger
//! is byte-identical to the one at the checkpoint, and N + resume + K steps gives the same
//! ledger bytes as N + K steps. We chose full snapshots over per-record generation counters
//! plus an undo log because they are trivially correct (no log replay, no partial-undo
//! states, no extra bytes per record) and the checkpoint directory stays self-contained. The
//! cost is a copy of the whole file per checkpoint: 32 bytes × N, i.e. 3.2 GB for 10^8 blocks
//! (seconds on an SSD, and `std::fs::copy` may reflink on copy-on-write file systems), which
//! is small next to the optimizer state of any model that trains on 10^8 blocks.

mod cells;
mod file;
mod header;
mod preview;
mod reader;
mod record;
mod render;
mod report;
mod scan;
mod stats;
mod update;

use std::path::PathBuf;

pub use file::{Ledger, LEDGER_FILE};
pub use header::{LedgerHeader, LEDGER_FORMAT_VERSION, LEDGER_HEADER_LEN, LEDGER_MAGIC};
pub use reader::LedgerReader;
pub use record::{BlockRecord, LedgerRead, NEVER, RECORD_SIZE};
pub use report::{
    build_report, BlockSummary, ForgettingSummary, HistogramBin, LedgerReport, LossSummary,
    ReportOptions, SourceSummary, PAPER_SHARE_FORGOTTEN, PAPER_SHARE_FORGOTTEN_MORE_THAN_ONCE,
};
pub use stats::{forgotten_fraction, loss_histogram, LossMetric};
pub use update::{UpdateRule, FLAG_FALLEN};

/// Everything that can go wrong with a ledger. Variants about a file name it.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a syllabus ledger (bad magic bytes)")]
    BadMagic { path: PathBuf },

    #[error(
        "{path}: unsupported ledger format version {found} (this build supports version \
         {supported}); the file was written by another syllabus version or is corrupted"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "{path}: ledger record size is {found} bytes but this build uses {expected}; \
         the file was written by another syllabus version or is corrupted"
    )]
    RecordSize {
        path: PathBuf,
        found: u32,
        expected: u32,
    },

    #[error("{path}: ledger header checksum mismatch: file corrupted")]
    HeaderChecksum { path: PathBuf },

    #[error(
        "{path}: wrong length: the header promises {expected} bytes (64-byte header + \
         {blocks} records of 32 bytes), found {found}; the file is truncated or corrupted"
    )]
    Length {
        path: PathBuf,
        blocks: u64,
        expected: u64,
        found: u64,
    },

    /// A structurally invalid value (block length 0, misaligned mapping...).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },

    #[error("{path}: ledger belongs to run {found:#018x}, expected run {expected:#018x}")]
    RunMismatch {
        path: PathBuf,
        found: u64,
        expected: u64,
    },

    #[error("block id {id} out of range: the ledger has {len} blocks")]
    BlockOutOfRange { id: usize, len: usize },

    #[error("record_losses: {ids} block ids but {losses} losses")]
    LengthMismatch { ids: usize, losses: usize },

    /// An invalid argument not tied to a file.
    #[error("{0}")]
    InvalidArgument(String),
}

impl LedgerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LedgerError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        LedgerError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
