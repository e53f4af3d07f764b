//! Read-only access to a ledger that may be written concurrently (by the trainer, in another
//! process or thread): every record read goes through the record's seqlock, so it is whole.

use std::path::{Path, PathBuf};

use super::cells::Mapping;
use super::file::map_file;
use super::header::LedgerHeader;
use super::record::{BlockRecord, LedgerRead};
use super::LedgerError;

/// A read-only mapping of `ledger.bin`. Opening never modifies the file. If the trainer
/// replaces the file (a resume restores a checkpoint's ledger by renaming over it), this
/// reader keeps seeing the old file; reopen to follow.
pub struct LedgerReader {
    path: PathBuf,
    map: Mapping,
    header: LedgerHeader,
}

impl std::fmt::Debug for LedgerReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

impl LedgerReader {
    /// Opens and validates (magic, version, checksum, record size, length) read-only.
    pub fn open(path: &Path) -> Result<LedgerReader, LedgerError> {
        let (map, header) = map_file(path, false)?;
        Ok(LedgerReader {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header as read at open time.
    pub fn header(&self) -> LedgerHeader {
        self.header
    }

    /// The header as it is now (the generation advances with every flush of a live run).
    /// Retries a few times if the writer is rewriting it at this very moment.
    pub fn current_header(&self) -> Result<LedgerHeader, LedgerError> {
        let len = self.map.raw().len() as u64;
        let mut attempts = 0;
        loop {
            match LedgerHeader::parse(&self.path, &self.map.header_bytes(), len) {
                Err(LedgerError::HeaderChecksum { .. }) if attempts < 5 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                result => return result,
            }
        }
    }

    /// Record `id`, or `None` if out of range.
    pub fn get(&self, id: usize) -> Option<BlockRecord> {
        self.map.records().get(id).map(|c| c.load_consistent())
    }
}

impl LedgerRead for LedgerReader {
    fn len(&self) -> usize {
        self.map.records().len()
    }

    /// A whole record (seqlock read). Panics if `id` is out of range, like slice indexing.
    fn record(&self, id: usize) -> BlockRecord {
        self.map.records()[id].load_consistent()
    }
}
