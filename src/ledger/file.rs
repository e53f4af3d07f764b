//! The writer side of `ledger.bin`: create, open, record losses, flush, snapshot, restore.

use std::path::{Path, PathBuf};

use super::cells::Mapping;
use super::header::LedgerHeader;
use super::io::{copy_atomically, map_file, write_new};
use super::reader::LedgerReader;
use super::record::{BlockRecord, LedgerRead};
use super::update::UpdateRule;
use super::verify::{checked, verify_all};
use super::LedgerError;
use crate::data::{Blocks, DocIndex};
use crate::fsutil::{commit_rename, tmp_path};

/// File name of the ledger in a run directory (and in each checkpoint directory).
pub const LEDGER_FILE: &str = "ledger.bin";

/// The single writer of a ledger file (the trainer). Other processes read concurrently with
/// [`LedgerReader`].
pub struct Ledger {
    path: PathBuf,
    map: Mapping,
    header: LedgerHeader,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

impl Ledger {
    /// Creates a ledger of `block_count` unseen records (block `i` from corpus source
    /// `source_of(i)`), replacing any file at `path`. The file is streamed to `<path>.tmp` in
    /// chunks (no N-sized buffer), fsynced and renamed, so `path` never holds a partial file.
    /// The records just written are not read back to verify them.
    pub fn create(
        path: &Path,
        block_count: usize,
        block_len: u32,
        run_id: u64,
        source_of: impl Fn(usize) -> u16,
    ) -> Result<Ledger, LedgerError> {
        if block_len == 0 {
            return Err(LedgerError::InvalidArgument(format!(
                "{}: block length must be positive",
                path.display()
            )));
        }
        let header = LedgerHeader {
            block_count: block_count as u64,
            block_len,
            run_id,
            generation: 0,
        };
        let tmp = tmp_path(path);
        let written = write_new(&tmp, &header, &source_of);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp); // best effort: a partial temp file is garbage
            return Err(LedgerError::io(&tmp, e));
        }
        commit_rename(&tmp, path).map_err(|e| LedgerError::io(path, e))?;
        Ledger::map(path)
    }

    /// [`Ledger::create`] for the training blocks of a prepared split: one record per block,
    /// its source being the source of the document holding the block's first token (a block
    /// can span documents; its first token decides).
    pub fn create_for_blocks(
        path: &Path,
        blocks: &Blocks,
        docs: &DocIndex,
        run_id: u64,
    ) -> Result<Ledger, LedgerError> {
        if docs.num_sources() > u32::from(u16::MAX) + 1 {
            return Err(LedgerError::InvalidArgument(format!(
                "{} corpus sources do not fit the ledger's u16 source id",
                docs.num_sources()
            )));
        }
        let block_len = u32::try_from(blocks.block_len()).map_err(|_| {
            LedgerError::InvalidArgument(format!("block length {} too large", blocks.block_len()))
        })?;
        // The cast is exact: every source id is < num_sources <= 65536 (checked above).
        let source_of = |id: usize| docs.source_of_token(blocks.start_of(id)) as u16;
        Ledger::create(path, blocks.len(), block_len, run_id, source_of)
    }

    /// Opens an existing ledger for writing; checks magic, version, header checksum, record
    /// size and length, then every record's checksum (one pass over the file, see
    /// [`Ledger::verify`]). [`Ledger::run_id`] tells which run it belongs to.
    pub fn open_rw(path: &Path) -> Result<Ledger, LedgerError> {
        let ledger = Ledger::map(path)?;
        ledger.verify()?;
        Ok(ledger)
    }

    /// [`Ledger::open_rw`], failing unless the ledger belongs to run `run_id` (checked before
    /// the records are verified).
    pub fn open_for_run(path: &Path, run_id: u64) -> Result<Ledger, LedgerError> {
        let ledger = Ledger::map(path)?;
        if ledger.run_id() != run_id {
            return Err(LedgerError::RunMismatch {
                path: path.to_path_buf(),
                found: ledger.run_id(),
                expected: run_id,
            });
        }
        ledger.verify()?;
        Ok(ledger)
    }

    /// Maps `path` for writing and checks its header; the records are not verified.
    fn map(path: &Path) -> Result<Ledger, LedgerError> {
        let (map, header) = map_file(path, true)?;
        Ok(Ledger {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    /// Checks every record against its checksum, in id order: the first failing block is
    /// reported ([`LedgerError::RecordChecksum`], or [`LedgerError::TornRecord`] for a record
    /// a crashed writer left half-written). O(N): one pass over the mapped file.
    pub fn verify(&self) -> Result<(), LedgerError> {
        verify_all(&self.path, self.map.records(), |c| c.load_own())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> LedgerHeader {
        self.header
    }

    pub fn run_id(&self) -> u64 {
        self.header.run_id
    }

    /// Step of the last [`Ledger::flush`] (0 if never flushed).
    pub fn generation(&self) -> u64 {
        self.header.generation
    }

    /// Tokens per block.
    pub fn block_len(&self) -> u32 {
        self.header.block_len
    }

    /// Records the training losses of one step: `losses[i]` is the mean loss of block
    /// `ids[i]` in the step's forward pass. O(B). Non-finite losses are skipped (they never
    /// reach the ledger) and counted in the returned value. Ids and the checksums of their
    /// records are checked before anything is written, so an error leaves the ledger
    /// unchanged (and a damaged record is reported, not rewritten with a valid checksum). A
    /// repeated id is applied twice, in order.
    pub fn record_losses(
        &mut self,
        ids: &[usize],
        losses: &[f32],
        step: u64,
        rule: &UpdateRule,
    ) -> Result<usize, LedgerError> {
        if ids.len() != losses.len() {
            return Err(LedgerError::LengthMismatch {
                ids: ids.len(),
                losses: losses.len(),
            });
        }
        rule.validate().map_err(LedgerError::InvalidArgument)?;
        self.check_ids(ids)?;
        for (&id, &loss) in ids.iter().zip(losses) {
            if loss.is_finite() {
                self.checked_record(id)?;
            }
        }
        let cells = self.map.records();
        let mut skipped = 0;
        for (&id, &loss) in ids.iter().zip(losses) {
            if !loss.is_finite() {
                skipped += 1;
                continue;
            }
            let mut rec = cells[id].load_own();
            rule.apply(&mut rec, loss, step);
            cells[id].store(id, &rec);
        }
        Ok(skipped)
    }

    /// Sets a block's policy-defined state and, when given, its Leitner box (0..=15). The
    /// record's checksum is checked first; an error leaves the record unchanged.
    pub fn set_policy_state(
        &mut self,
        id: usize,
        state: u8,
        leitner_box: Option<u8>,
    ) -> Result<(), LedgerError> {
        self.check_ids(&[id])?;
        let mut rec = self.checked_record(id)?;
        rec.policy_state = state;
        if let Some(b) = leitner_box {
            if b > 15 {
                return Err(LedgerError::InvalidArgument(format!(
                    "Leitner box {b} does not fit the record's 4 bits (0..=15)"
                )));
            }
            rec.set_leitner_box(b);
        }
        self.map.records()[id].store(id, &rec);
        Ok(())
    }

    fn check_ids(&self, ids: &[usize]) -> Result<(), LedgerError> {
        let len = self.len();
        match ids.iter().find(|&&id| id >= len) {
            Some(&id) => Err(LedgerError::BlockOutOfRange { id, len }),
            None => Ok(()),
        }
    }

    /// Marks the ledger consistent as of optimizer `step` (header generation + CRC) and
    /// writes dirty pages to disk (msync), so the file alone describes that step.
    pub fn flush(&mut self, step: u64) -> Result<(), LedgerError> {
        self.header.generation = step;
        self.map.store_header(&self.header.encode());
        self.map
            .raw()
            .flush()
            .map_err(|e| LedgerError::io(&self.path, e))
    }

    /// Flushes at `step`, verifies every record (a checkpoint never captures a damaged
    /// ledger; `dest` is left alone if one fails), then copies the file to `dest` (temp name +
    /// fsync + rename), for a checkpoint. Costs a full copy: 36 bytes per block, 3.6 GB at
    /// 10^8 blocks (a reflink on copy-on-write file systems, where `std::fs::copy` can share
    /// extents).
    pub fn snapshot_to(&mut self, dest: &Path, step: u64) -> Result<(), LedgerError> {
        self.flush(step)?;
        self.verify()?;
        copy_atomically(&self.path, dest)
    }

    /// Replaces the live ledger at `live` by the checkpoint's `snapshot` and opens it. The
    /// snapshot is validated in full first (header and every record's checksum): if it is
    /// damaged, the error names it and `live` is not touched. It is then copied under a temp
    /// name and renamed, so `live` is always a whole file, byte-identical to the snapshot;
    /// the copy is not verified a second time. A `Ledger` still open on `live` keeps the old,
    /// now unlinked file: drop it.
    pub fn restore_from(snapshot: &Path, live: &Path) -> Result<Ledger, LedgerError> {
        drop(LedgerReader::open(snapshot)?);
        copy_atomically(snapshot, live)?;
        Ledger::map(live)
    }
}

impl LedgerRead for Ledger {
    fn len(&self) -> usize {
        self.map.records().len()
    }

    /// The writer's own view (no seqlock needed: it is the only writer), not checked: every
    /// record was verified at open or written by this writer since. Panics if `id` is out of
    /// range, like slice indexing.
    fn record(&self, id: usize) -> BlockRecord {
        self.map.records()[id].load_own()
    }

    /// The writer's own view, checked against the record's checksum.
    fn checked_record(&self, id: usize) -> Result<BlockRecord, LedgerError> {
        checked(&self.path, id, self.map.records()[id].load_own())
    }
}

#[cfg(test)]
mod tests {
    use super::super::io::CREATE_CHUNK;
    use super::*;
    use crate::ledger::RECORD_SIZE;

    #[test]
    fn create_writes_unseen_records_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LEDGER_FILE);
        let n = CREATE_CHUNK + 3; // crosses a chunk boundary
        let ledger = Ledger::create(&path, n, 129, 7, |i| (i % 3) as u16).expect("create");
        assert_eq!(ledger.len(), n);
        let want = BlockRecord::unseen(((n - 1) % 3) as u16).with_checksum(n as u64 - 1);
        assert_eq!(ledger.record(n - 1).to_bytes(), want.to_bytes());
        ledger.verify().expect("every record carries its checksum");
        let len = std::fs::metadata(&path).expect("stat").len();
        assert_eq!(len, 64 + RECORD_SIZE as u64 * n as u64);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn bad_arguments_leave_the_ledger_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LEDGER_FILE);
        let mut ledger = Ledger::create(&path, 4, 9, 1, |_| 0).expect("create");
        let rule = UpdateRule::default();
        let err = ledger.record_losses(&[0, 4], &[1.0, 1.0], 1, &rule);
        assert!(matches!(
            err,
            Err(LedgerError::BlockOutOfRange { id: 4, len: 4 })
        ));
        assert!(ledger.record_losses(&[0], &[1.0, 2.0], 1, &rule).is_err());
        assert!(!ledger.record(0).seen(), "nothing written by a failed call");
        assert!(ledger.set_policy_state(0, 1, Some(16)).is_err());
        assert!(
            Ledger::create(&path, 4, 0, 1, |_| 0).is_err(),
            "block_len 0"
        );
    }
}
