//! The check every reader applies to a record it copied out of a mapped ledger: the record's
//! checksum (see `record.rs`), judged together with its seqlock counter.

use std::path::Path;

use rayon::prelude::*;

use super::cells::RecordCells;
use super::record::BlockRecord;
use super::LedgerError;

/// `rec`, the copy of block `id` of the ledger at `path`, if its checksum matches.
///
/// A mismatch on a whole copy (even seq: the seqlock vouched for it, or it is the writer's own
/// read of a record with no update in progress) means the bytes were changed outside the
/// ledger's writer: corruption. A mismatch with an odd seq is a record whose writer stopped
/// mid-update (a reader gives up waiting on such a record after a while, see `cells.rs`). An
/// odd seq with a matching checksum is accepted: the fields are whole, only the final seq
/// store is missing.
pub(super) fn checked(
    path: &Path,
    id: usize,
    rec: BlockRecord,
) -> Result<BlockRecord, LedgerError> {
    if rec.checksum_ok(id as u64) {
        return Ok(rec);
    }
    let path = path.to_path_buf();
    let block = id as u64;
    Err(if rec.seq & 1 == 0 {
        LedgerError::RecordChecksum { path, block }
    } else {
        LedgerError::TornRecord { path, block }
    })
}

/// Records per parallel task of [`verify_all`]: 2.25 MiB of the file, large enough that
/// scheduling is noise next to the checksums.
const VERIFY_CHUNK: usize = 1 << 16;

/// Checks every record, each copied with `read`. Chunks are checked in parallel (rayon), and
/// the failure of the lowest block id is returned, so the error does not depend on the
/// thread count or on timing. One pass over the file: O(N), no allocation.
pub(super) fn verify_all(
    path: &Path,
    records: &[RecordCells],
    read: impl Fn(&RecordCells) -> BlockRecord + Sync,
) -> Result<(), LedgerError> {
    let failure = records
        .par_chunks(VERIFY_CHUNK)
        .enumerate()
        .find_map_first(|(chunk, cells)| {
            let first = chunk * VERIFY_CHUNK;
            cells
                .iter()
                .enumerate()
                .find_map(|(i, cell)| checked(path, first + i, read(cell)).err())
        });
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
