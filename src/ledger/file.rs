//! The writer side of `ledger.bin`: create, open, record losses, flush, snapshot, restore.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use memmap2::MmapOptions;

use super::cells::Mapping;
use super::header::{LedgerHeader, LEDGER_HEADER_LEN};
use super::reader::LedgerReader;
use super::record::{BlockRecord, LedgerRead, RECORD_SIZE};
use super::update::UpdateRule;
use super::LedgerError;
use crate::data::{Blocks, DocIndex};

/// File name of the ledger in a run directory (and in each checkpoint directory).
pub const LEDGER_FILE: &str = "ledger.bin";

/// Records written per chunk at creation: 2 MiB of I/O at a time, whatever the block count.
const CREATE_CHUNK: usize = 1 << 16;

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
        commit_rename(&tmp, path)?;
        Ledger::open_rw(path)
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

    /// Opens an existing ledger for writing; checks magic, version, checksum, record size and
    /// length. [`Ledger::run_id`] tells which run it belongs to.
    pub fn open_rw(path: &Path) -> Result<Ledger, LedgerError> {
        let (map, header) = map_file(path, true)?;
        Ok(Ledger {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    /// [`Ledger::open_rw`], failing unless the ledger belongs to run `run_id`.
    pub fn open_for_run(path: &Path, run_id: u64) -> Result<Ledger, LedgerError> {
        let ledger = Ledger::open_rw(path)?;
        if ledger.run_id() != run_id {
            return Err(LedgerError::RunMismatch {
                path: path.to_path_buf(),
                found: ledger.run_id(),
                expected: run_id,
            });
        }
        Ok(ledger)
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
    /// reach the ledger) and counted in the returned value. Ids are checked before anything
    /// is written, so an error leaves the ledger unchanged. A repeated id is applied twice,
    /// in order.
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
        let cells = self.map.records();
        let mut skipped = 0;
        for (&id, &loss) in ids.iter().zip(losses) {
            if !loss.is_finite() {
                skipped += 1;
                continue;
            }
            let mut rec = cells[id].load_own();
            rule.apply(&mut rec, loss, step);
            cells[id].store(&rec);
        }
        Ok(skipped)
    }

    /// Sets a block's policy-defined state and, when given, its Leitner box (0..=15).
    pub fn set_policy_state(
        &mut self,
        id: usize,
        state: u8,
        leitner_box: Option<u8>,
    ) -> Result<(), LedgerError> {
        self.check_ids(&[id])?;
        let cell = &self.map.records()[id];
        let mut rec = cell.load_own();
        rec.policy_state = state;
        if let Some(b) = leitner_box {
            if b > 15 {
                return Err(LedgerError::InvalidArgument(format!(
                    "Leitner box {b} does not fit the record's 4 bits (0..=15)"
                )));
            }
            rec.set_leitner_box(b);
        }
        cell.store(&rec);
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

    /// Flushes at `step`, then copies the file to `dest` (temp name + fsync + rename), for a
    /// checkpoint. Costs a full copy: 32 bytes per block, 3.2 GB at 10^8 blocks (a reflink on
    /// copy-on-write file systems, where `std::fs::copy` can share extents).
    pub fn snapshot_to(&mut self, dest: &Path, step: u64) -> Result<(), LedgerError> {
        self.flush(step)?;
        copy_atomically(&self.path, dest)
    }

    /// Replaces the live ledger at `live` by the checkpoint's `snapshot` (validated first;
    /// copied under a temp name and renamed, so `live` is always a whole file) and opens it.
    /// The result is byte-identical to the snapshot. A `Ledger` still open on `live` keeps
    /// the old, now unlinked file: drop it.
    pub fn restore_from(snapshot: &Path, live: &Path) -> Result<Ledger, LedgerError> {
        drop(LedgerReader::open(snapshot)?);
        copy_atomically(snapshot, live)?;
        Ledger::open_rw(live)
    }
}

impl LedgerRead for Ledger {
    fn len(&self) -> usize {
        self.map.records().len()
    }

    /// The writer's own view (no seqlock needed: it is the only writer). Panics if `id` is
    /// out of range, like slice indexing.
    fn record(&self, id: usize) -> BlockRecord {
        self.map.records()[id].load_own()
    }
}

/// Maps `path` (read-write or read-only) and validates its header and length. A header being
/// rewritten by a concurrent `flush` can be read torn; that shows as a checksum mismatch, so
/// it is re-read a few times before reporting corruption.
pub(super) fn map_file(
    path: &Path,
    writable: bool,
) -> Result<(Mapping, LedgerHeader), LedgerError> {
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .map_err(|e| LedgerError::io(path, e))?;
    let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
    if len < LEDGER_HEADER_LEN as u64 {
        return Err(short_file_error(path, file, len));
    }
    let opts = MmapOptions::new();
    let raw = if writable {
        opts.map_raw(&file)
    } else {
        opts.map_raw_read_only(&file)
    }
    .map_err(|e| LedgerError::io(path, e))?;
    let map = Mapping::new(raw).map_err(|m| LedgerError::invalid(path, m))?;
    let mut attempts = 0;
    loop {
        match LedgerHeader::parse(path, &map.header_bytes(), map.raw().len() as u64) {
            Err(LedgerError::HeaderChecksum { .. }) if attempts < 5 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            result => return result.map(|h| (map, h)),
        }
    }
}

/// The error for a file too short to hold a header (bad magic or truncated header).
fn short_file_error(path: &Path, mut file: File, len: u64) -> LedgerError {
    let mut bytes = Vec::with_capacity(LEDGER_HEADER_LEN);
    if let Err(e) = file.read_to_end(&mut bytes) {
        return LedgerError::io(path, e);
    }
    match LedgerHeader::parse(path, &bytes, len) {
        Err(e) => e,
        // Invariant: parse rejects anything shorter than a header; keep a message anyway.
        Ok(_) => LedgerError::invalid(path, "file shorter than the header"),
    }
}

/// Writes header + unseen records to `tmp` in chunks and fsyncs it.
fn write_new(
    tmp: &Path,
    header: &LedgerHeader,
    source_of: &impl Fn(usize) -> u16,
) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    out.write_all(&header.encode())?;
    let n = header.block_count as usize;
    let mut buf = Vec::with_capacity(CREATE_CHUNK.min(n) * RECORD_SIZE);
    let mut start = 0;
    while start < n {
        let end = (start + CREATE_CHUNK).min(n);
        buf.clear();
        (start..end)
            .for_each(|i| buf.extend_from_slice(&BlockRecord::unseen(source_of(i)).to_bytes()));
        out.write_all(&buf)?;
        start = end;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Copies `src` to `dest` through `<dest>.tmp` (fsynced, renamed): `dest` is never partial.
fn copy_atomically(src: &Path, dest: &Path) -> Result<(), LedgerError> {
    let tmp = tmp_path(dest);
    let copied = std::fs::copy(src, &tmp).and_then(|_| File::open(&tmp)?.sync_all());
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp); // best effort: a partial temp file is garbage
        return Err(LedgerError::io(&tmp, e));
    }
    commit_rename(&tmp, dest)
}

/// Renames `tmp` onto `dest` and, best effort, fsyncs the directory so the rename is durable.
fn commit_rename(tmp: &Path, dest: &Path) -> Result<(), LedgerError> {
    std::fs::rename(tmp, dest).map_err(|e| LedgerError::io(dest, e))?;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Directory fsync is unsupported on some platforms; the rename already happened.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(".tmp");
    PathBuf::from(os)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_writes_unseen_records_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LEDGER_FILE);
        let n = CREATE_CHUNK + 3; // crosses a chunk boundary
        let ledger = Ledger::create(&path, n, 129, 7, |i| (i % 3) as u16).expect("create");
        assert_eq!(ledger.len(), n);
        let want = BlockRecord::unseen(((n - 1) % 3) as u16);
        assert_eq!(ledger.record(n - 1).to_bytes(), want.to_bytes());
        let len = std::fs::metadata(&path).expect("stat").len();
        assert_eq!(len, 64 + 32 * n as u64);
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
