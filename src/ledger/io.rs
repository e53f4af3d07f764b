//! File plumbing shared by the writer and the reader: mapping and validating a ledger file,
//! writing a new one, and atomic copies (temp name + fsync + rename).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use memmap2::MmapOptions;

use super::cells::Mapping;
use super::header::{LedgerHeader, LEDGER_HEADER_LEN};
use super::record::{BlockRecord, RECORD_SIZE};
use super::LedgerError;
use crate::fsutil::{commit_rename, tmp_path};

/// Records written per chunk at creation: 2.25 MiB of I/O at a time, whatever the block count.
pub(super) const CREATE_CHUNK: usize = 1 << 16;

/// Maps `path` (read-write or read-only) and validates its header and length; the records are
/// not read (callers verify them). A header being rewritten by a concurrent `flush` can be
/// read torn; that shows as a checksum mismatch, so it is re-read a few times before
/// reporting corruption.
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
        // Too short to map: the header check says why (bad magic bytes or truncated).
        let bytes = std::fs::read(path).map_err(|e| LedgerError::io(path, e))?;
        LedgerHeader::parse(path, &bytes, len)?;
    }
    let opts = MmapOptions::new();
    let raw = if writable {
        opts.map_raw(&file)
    } else {
        opts.map_raw_read_only(&file)
    }
    .map_err(|e| LedgerError::io(path, e))?;
    let map = Mapping::new(raw).map_err(|m| LedgerError::invalid(path, m))?;
    let header = parse_header_retrying(path, &map)?;
    Ok((map, header))
}

/// The header of `map` as it is now, re-read a few times while it fails its checksum (a
/// concurrent flush may be rewriting it).
pub(super) fn parse_header_retrying(
    path: &Path,
    map: &Mapping,
) -> Result<LedgerHeader, LedgerError> {
    let mut attempts = 0;
    loop {
        match LedgerHeader::parse(path, &map.header_bytes(), map.raw().len() as u64) {
            Err(LedgerError::HeaderChecksum { .. }) if attempts < 5 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            result => return result,
        }
    }
}

/// Writes header + unseen records (with their checksums) to `tmp` in chunks and fsyncs it.
pub(super) fn write_new(
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
        for id in start..end {
            let rec = BlockRecord::unseen(source_of(id)).with_checksum(id as u64);
            buf.extend_from_slice(&rec.to_bytes());
        }
        out.write_all(&buf)?;
        start = end;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Copies `src` to `dest` through `<dest>.tmp` (fsynced, renamed): `dest` is never partial.
pub(super) fn copy_atomically(src: &Path, dest: &Path) -> Result<(), LedgerError> {
    let tmp = tmp_path(dest);
    let copied = std::fs::copy(src, &tmp).and_then(|_| File::open(&tmp)?.sync_all());
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp); // best effort: a partial temp file is garbage
        return Err(LedgerError::io(&tmp, e));
    }
    commit_rename(&tmp, dest).map_err(|e| LedgerError::io(dest, e))
}
