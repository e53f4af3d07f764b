//! Finding input files and reading documents out of them.
//!
//! Formats, chosen by file name (case-insensitive):
//! - `.txt`: the whole file is one document; its source is the file stem. A leading UTF-8 BOM
//!   is dropped; invalid UTF-8 is an error naming the byte offset (never replaced: silently
//!   altering training text is worse than stopping).
//! - `.jsonl`: one JSON object per line with a string `text` field and an optional string
//!   `source` field (other fields are ignored). Without `source` (or with an empty one) the
//!   source is `"default"`, not the file stem, so shards of one unlabeled corpus share a
//!   source. Malformed JSON, invalid UTF-8 or a missing `text` is an error `file:line: ...`.
//!   Blank lines are skipped and counted.
//! - `.txt.gz` / `.jsonl.gz` / `.txt.zst` / `.jsonl.zst`: the same, gzip- or
//!   zstd-compressed (multi-member / multi-frame streams are read whole). A corrupt or
//!   truncated stream is an error naming the file (and the line, for JSONL).
//! - `.parquet`: one document per row, its text from a string column (`text` unless
//!   [`Columns::text`] says otherwise) and its source from an optional string column (absent:
//!   `"default"`, as for JSONL). Read row group by row group, page by page. A null text, a
//!   missing column or a corrupt file is an error naming the file (and the 0-based row).
//!
//! Inputs may be files, directories (walked recursively in sorted order, hidden entries
//! skipped) or glob patterns such as `shards/part-*.parquet` (expanded in sorted order).

mod discover;
mod parquet;
mod text;

use std::path::PathBuf;

use super::DataError;

pub(crate) use discover::discover;

/// Source name for JSONL and parquet documents without a source.
pub const DEFAULT_SOURCE: &str = "default";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Txt,
    Jsonl,
    Parquet,
}

/// Whole-file compression of a text format (parquet compresses inside the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Clone, Debug)]
pub(crate) struct InputFile {
    pub path: PathBuf,
    pub format: Format,
    pub compression: Compression,
    /// Size on disk when discovered: the denominator of progress and ETA.
    pub disk_bytes: u64,
}

/// Which parquet columns hold the text and the source names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    pub text: String,
    /// `None`: every document gets [`DEFAULT_SOURCE`].
    pub source: Option<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            text: "text".to_string(),
            source: None,
        }
    }
}

/// One document as read, before tokenization. `text` may be empty (the caller skips it).
pub(crate) struct RawDoc {
    pub text: String,
    pub source: String,
}

/// Documents handed on together, and how far into the file (in bytes on disk, i.e.
/// compressed bytes for compressed inputs) reading had got when the batch was complete.
pub(crate) struct Batch {
    pub docs: Vec<RawDoc>,
    pub disk_pos: u64,
}

/// Counts that the reader, not the caller, can see.
#[derive(Default, Debug)]
pub(crate) struct ReadStats {
    pub blank_lines: u64,
}

/// Reads `file`, handing documents to `sink` in batches of roughly `batch_bytes` of text (at
/// least one document each) so the caller can tokenize a batch in parallel while memory stays
/// bounded. An error from `sink` stops reading and is returned as is.
pub(crate) fn read_docs(
    file: &InputFile,
    columns: &Columns,
    batch_bytes: usize,
    sink: impl FnMut(Batch) -> Result<(), DataError>,
) -> Result<ReadStats, DataError> {
    match file.format {
        Format::Txt => text::read_txt(file, sink),
        Format::Jsonl => text::read_jsonl(file, batch_bytes, sink),
        Format::Parquet => parquet::read_parquet(file, columns, batch_bytes, sink),
    }
}

/// Collects documents into batches of about `batch_bytes` of text for a sink.
struct Batcher<F> {
    docs: Vec<RawDoc>,
    text_bytes: usize,
    batch_bytes: usize,
    sink: F,
}

impl<F: FnMut(Batch) -> Result<(), DataError>> Batcher<F> {
    fn new(batch_bytes: usize, sink: F) -> Self {
        Batcher {
            docs: Vec::new(),
            text_bytes: 0,
            batch_bytes,
            sink,
        }
    }

    /// Adds a document; hands the batch on once it holds `batch_bytes` of text.
    fn push(&mut self, doc: RawDoc, disk_pos: impl FnOnce() -> u64) -> Result<(), DataError> {
        self.text_bytes += doc.text.len();
        self.docs.push(doc);
        if self.text_bytes >= self.batch_bytes {
            self.flush(disk_pos())?;
        }
        Ok(())
    }

    fn flush(&mut self, disk_pos: u64) -> Result<(), DataError> {
        self.text_bytes = 0;
        let docs = std::mem::take(&mut self.docs);
        (self.sink)(Batch { docs, disk_pos })
    }

    /// Hands on what is left (an empty batch too, so the caller sees the final position).
    fn finish(mut self, disk_pos: u64) -> Result<(), DataError> {
        self.flush(disk_pos)
    }
}
