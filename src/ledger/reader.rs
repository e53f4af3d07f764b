//! Read-only access to a ledger that may be written concurrently (by the trainer, in another
//! process or thread): every record read goes through the record's seqlock, so it is whole,
//! and the checked reads compare it with its checksum.

use std::path::{Path, PathBuf};

use super::cells::Mapping;
use super::header::LedgerHeader;
use super::io::{map_file, parse_header_retrying};
use super::record::{BlockRecord, LedgerRead};
use super::verify::{checked, verify_all};
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
    /// Opens read-only and validates the header (magic, version, checksum, record size,
    /// length), then every record's checksum (one pass over the file, see
    /// [`LedgerReader::verify`]). Works while the trainer writes: records being updated are
    /// waited for, not reported.
    pub fn open(path: &Path) -> Result<LedgerReader, LedgerError> {
        let reader = LedgerReader::open_unverified(path)?;
        reader.verify()?;
        Ok(reader)
    }

    /// The validated header of the ledger at `path`, without reading any record: for callers
    /// that only need the block count or the run id.
    pub fn read_header(path: &Path) -> Result<LedgerHeader, LedgerError> {
        Ok(LedgerReader::open_unverified(path)?.header)
    }

    /// Maps `path` read-only and checks its header; the records are not verified (the report
    /// checks each record as its scan reads it).
    pub(super) fn open_unverified(path: &Path) -> Result<LedgerReader, LedgerError> {
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
        parse_header_retrying(&self.path, &self.map)
    }

    /// Checks every record against its checksum, in id order (each read through its
    /// seqlock); the first failing block is reported. O(N).
    pub fn verify(&self) -> Result<(), LedgerError> {
        verify_all(&self.path, self.map.records(), |c| c.load_consistent())
    }

    /// Record `id`, checked against its checksum; `Ok(None)` if out of range.
    pub fn get(&self, id: usize) -> Result<Option<BlockRecord>, LedgerError> {
        match self.map.records().get(id) {
            Some(c) => checked(&self.path, id, c.load_consistent()).map(Some),
            None => Ok(None),
        }
    }
}

impl LedgerRead for LedgerReader {
    fn len(&self) -> usize {
        self.map.records().len()
    }

    /// A whole record (seqlock read), not checked (it was at open; see
    /// [`LedgerRead::checked_record`]). Panics if `id` is out of range, like slice indexing.
    fn record(&self, id: usize) -> BlockRecord {
        self.map.records()[id].load_consistent()
    }

    /// A whole record (seqlock read), checked against its checksum.
    fn checked_record(&self, id: usize) -> Result<BlockRecord, LedgerError> {
        checked(&self.path, id, self.map.records()[id].load_consistent())
    }
}
