//! The per-block loss ledger: one 36-byte record per training block, memory-mapped from
//! `RUN_DIR/ledger.bin`, updated after every step from the per-sequence losses the training
//! forward pass already computed (no extra scoring passes), and read by the sampling
//! policies, by `syllabus ledger RUN_DIR` and by TensorBoard logging.
//!
//! # File format (`ledger.bin`, little-endian)
//!
//! A 64-byte header (see `header.rs`: magic `SYLLEDGR`, format version, record size, block
//! count, block length, run id, generation = optimizer step of the last consistent flush,
//! CRC32 of the header) followed by `block count` [`BlockRecord`]s of 36 bytes each, indexed by
//! the stable block id of `data::Blocks`. Size: 64 + 36·N bytes, so 10^6 blocks = 36 MB,
//! 10^8 blocks = 3.6 GB. The file is mapped, not read: pages come in lazily as records are
//! touched, and the OS writes dirty pages back; creation streams the file in chunks, so no
//! N-sized buffer is ever built.
//!
//! Format version 2 (this one) added the per-record checksum; version 1 had 32-byte records
//! without it and is refused (see `header.rs` for why).
//!
//! # Per-record checksums
//!
//! Each record ends with a CRC32 of the block id and of every field except the seqlock
//! counter (exact definition in `record.rs`). The writer stores it with every record write,
//! inside the seqlock bracket (`cells.rs`), so a whole record always carries a matching
//! checksum. Every reader checks it (`verify.rs`): a whole record that fails is corruption,
//! reported as [`LedgerError::RecordChecksum`] naming the file and the block, never a panic
//! and never garbage handed to a report or a sampling policy:
//!
//! - opening ([`Ledger::open_rw`], [`LedgerReader::open`]) verifies every record, so a
//!   policy reading through the infallible [`LedgerRead::record`] only sees checked records
//!   or records the writer itself wrote since;
//! - [`Ledger::snapshot_to`] verifies the live file before copying it into a checkpoint, and
//!   [`Ledger::restore_from`] (resume) verifies the snapshot before it replaces the live file;
//! - the writer checks a record before updating it (so an update never launders a damaged
//!   record into a valid one), and the whole-ledger scans (report, statistics) read through
//!   [`LedgerRead::checked_record`], so damage done after opening is caught too.
//!
//! The cost is measured in `docs/sampling.md` (`cargo bench --bench ledger`).
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
//! cost is a copy of the whole file per checkpoint: 36 bytes × N, i.e. 3.6 GB for 10^8 blocks
//! (seconds on an SSD, and `std::fs::copy` may reflink on copy-on-write file systems), which
//! is small next to the optimizer state of any model that trains on 10^8 blocks.

mod cells;
mod file;
mod header;
mod io;
mod preview;
mod reader;
mod record;
mod render;
mod report;
mod scan;
mod stats;
mod update;
mod verify;

use std::path::PathBuf;

use crate::fsutil::binheader::{HeaderError, HEADER_LEN};

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
        "{path}: ledger format version 1, written by an earlier syllabus build without \
         per-record checksums; this build reads version {supported} only. A ledger is created \
         with every new run: start a new run, or resume this one with the build that started it"
    )]
    FormatOne { path: PathBuf, supported: u32 },

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
         {blocks} records of {record_size} bytes), found {found}; the file is truncated or \
         corrupted",
        record_size = RECORD_SIZE
    )]
    Length {
        path: PathBuf,
        blocks: u64,
        expected: u64,
        found: u64,
    },

    /// A whole record (its seqlock stable) whose checksum does not match its content.
    #[error("{path}: record of block {block} fails its checksum: the file is corrupted")]
    RecordChecksum { path: PathBuf, block: u64 },

    /// A record whose seqlock stayed odd (a writer stopped mid-update) and whose checksum does
    /// not match: its fields are a mix of two versions.
    #[error(
        "{path}: record of block {block} was left half-written (its writer stopped in the \
         middle of an update, e.g. the run crashed or is suspended); resume the run from a \
         checkpoint, whose ledger snapshot is whole"
    )]
    TornRecord { path: PathBuf, block: u64 },

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

/// The ledger's own wording for header problems (it names the ledger), and its answer to
/// version 1, which is a known format with a way forward rather than corruption.
impl From<HeaderError> for LedgerError {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::BadMagic { path, .. } => LedgerError::BadMagic { path },
            HeaderError::Truncated { path, found } => {
                let msg =
                    format!("truncated: {found} bytes, shorter than the {HEADER_LEN}-byte header");
                LedgerError::invalid(path, msg)
            }
            HeaderError::UnsupportedVersion {
                path,
                found,
                supported,
                ..
            } => match found {
                1 => LedgerError::FormatOne { path, supported },
                _ => LedgerError::UnsupportedVersion {
                    path,
                    found,
                    supported,
                },
            },
            HeaderError::Checksum { path } => LedgerError::HeaderChecksum { path },
        }
    }
}
