//! Memory-mapped token store: a flat array of token ids behind a checked 64-byte header.
//!
//! Header fields (after the magic and version of `fsutil::binheader`): dtype u32 at 12 (2 = u16,
//! 4 = u32), vocab_size u32 at 16, reserved u32 at 20, token_count u64 at 24, zeros to 40,
//! content CRC32 (of every byte after the header) u32 at 40, zeros to 60, header CRC32 at 60.
//! Token ids follow, little-endian, with no per-document framing: documents are separated by
//! the tokenizer's document separator (the manifest's `eot_token`), GPT-2 style.
//!
//! Format 1 (earlier builds) is the same without the content CRC (zeros at 40). It is still
//! read, with the token range checked but not the content: re-preparing adds the checksum.

mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};

use crc32fast::Hasher;
use memmap2::Mmap;
use rayon::prelude::*;

use super::content::{
    combine_in_order, content_mismatch, hash_piece, CONTENT_CHUNK, OFF_CONTENT_CRC,
};
use super::DataError;
use crate::fsutil::binheader::{Header, HEADER_LEN};

pub use writer::TokenStoreWriter;

const MAGIC: &[u8; 8] = b"SYLTOKS\0";
const KIND: &str = "token store";
/// The format this build writes; it reads 1 (no content checksum) to this.
pub const STORE_FORMAT_VERSION: u32 = 2;
pub const STORE_HEADER_LEN: usize = HEADER_LEN;
const OFF_DTYPE: usize = 12;
const OFF_VOCAB: usize = 16;
const OFF_COUNT: usize = 24;

/// Bytes per token on disk. u16 halves the file (and the page cache it needs) for GPT-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    U16,
    U32,
}

impl Dtype {
    fn for_vocab(vocab_size: u32) -> Self {
        if vocab_size <= 1 << 16 {
            Dtype::U16
        } else {
            Dtype::U32
        }
    }

    fn width(self) -> usize {
        match self {
            Dtype::U16 => 2,
            Dtype::U32 => 4,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            2 => Some(Dtype::U16),
            4 => Some(Dtype::U32),
            _ => None,
        }
    }
}

/// A read-only, memory-mapped token store. Opening validates the header, the file length, the
/// content checksum (format 2) and that every id is below `vocab_size`, so callers can index
/// embeddings with `get`/`read` results without further checks.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    map: Mmap,
    dtype: Dtype,
    len: usize,
    vocab_size: u32,
    format_version: u32,
    /// The verified content CRC32; `None` for format 1, which has none.
    content_crc: Option<u32>,
}

impl TokenStore {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        // SAFETY: the map is read-only and syllabus never modifies a store in place: writers
        // only write `<name>.tmp` and rename it over the final name, which leaves this mapping
        // pointing at the old (unlinked) inode. Another program truncating the file while it
        // is mapped could still fault; that is outside what we can guard against.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| DataError::io(path, e))?;
        let header = Header::parse(path, &map, MAGIC, KIND, 1..=STORE_FORMAT_VERSION)?;
        let format_version = header.version();
        let code = header.u32_at(OFF_DTYPE);
        let dtype = Dtype::from_code(code).ok_or_else(|| {
            DataError::invalid(path, format!("unknown dtype code {code} (expected 2 or 4)"))
        })?;
        let vocab_size = header.u32_at(OFF_VOCAB);
        if vocab_size == 0 {
            return Err(DataError::invalid(path, "vocab_size is 0"));
        }
        let count = header.u64_at(OFF_COUNT);
        let expected = count
            .checked_mul(dtype.width() as u64)
            .and_then(|b| b.checked_add(HEADER_LEN as u64))
            .ok_or_else(|| DataError::invalid(path, format!("token count {count} overflows")))?;
        if map.len() as u64 != expected {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                expected,
                found: map.len() as u64,
            });
        }
        let store = TokenStore {
            path: path.to_path_buf(),
            map,
            dtype,
            // Fits: the whole file is mapped in our address space.
            len: count as usize,
            vocab_size,
            format_version,
            content_crc: (format_version >= 2).then(|| header.u32_at(OFF_CONTENT_CRC)),
        };
        store.check_body()?;
        Ok(store)
    }

    /// Writes `tokens` to a new store at `path` and opens it: a one-call helper for tests and
    /// small tools.
    pub fn create_from(path: &Path, vocab_size: u32, tokens: &[u32]) -> Result<Self, DataError> {
        let mut w = TokenStoreWriter::create(path, vocab_size)?;
        w.push(tokens)?;
        w.finish()?;
        TokenStore::open(path)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The on-disk format version (1 or `STORE_FORMAT_VERSION`).
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// CRC32 of the token bytes, as stored in the header and verified by `open`; `None` for a
    /// format-1 store, which carries none.
    pub fn content_crc(&self) -> Option<u32> {
        self.content_crc
    }

    /// Token at position `i`. Panics if `i >= len()`, like slice indexing.
    pub fn get(&self, i: usize) -> u32 {
        assert!(
            i < self.len,
            "token index {i} out of range (len {})",
            self.len
        );
        let off = HEADER_LEN + i * self.dtype.width();
        let b = &self.map[off..];
        match self.dtype {
            Dtype::U16 => u16::from_le_bytes([b[0], b[1]]) as u32,
            Dtype::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }

    /// Copies tokens `[start, start + out.len())` into `out`. Panics if the range runs past
    /// `len()`, like slice indexing.
    pub fn read(&self, start: usize, out: &mut [u32]) {
        let end = start.checked_add(out.len()).filter(|&e| e <= self.len);
        assert!(
            end.is_some(),
            "token range {start}..{} out of range (len {})",
            start.saturating_add(out.len()),
            self.len
        );
        let w = self.dtype.width();
        let body = &self.map[HEADER_LEN + start * w..HEADER_LEN + (start + out.len()) * w];
        match self.dtype {
            Dtype::U16 => {
                for (o, c) in out.iter_mut().zip(body.chunks_exact(2)) {
                    *o = u16::from_le_bytes([c[0], c[1]]) as u32;
                }
            }
            Dtype::U32 => {
                for (o, c) in out.iter_mut().zip(body.chunks_exact(4)) {
                    *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
        }
    }

    /// Calls `f` on consecutive chunks covering the whole store, in order. Avoids one
    /// allocation per call site for whole-store scans (statistics, validation).
    pub fn for_each_chunk(&self, mut f: impl FnMut(usize, &[u32])) {
        const CHUNK: usize = 1 << 16;
        let mut buf = vec![0u32; CHUNK.min(self.len)];
        let mut start = 0;
        while start < self.len {
            let n = CHUNK.min(self.len - start);
            self.read(start, &mut buf[..n]);
            f(start, &buf[..n]);
            start += n;
        }
    }

    /// Verifies the content checksum (when the format has one) and that every id is below
    /// vocab_size, in one parallel pass over fixed chunks. The results are combined in chunk
    /// order, so the outcome and the reported position do not depend on thread scheduling. A
    /// checksum mismatch is reported before an out-of-range id: it is the root cause.
    fn check_body(&self) -> Result<(), DataError> {
        // Every u16 is in range of a vocabulary of 65536 or more.
        let check_range = !(self.dtype == Dtype::U16 && self.vocab_size >= 1 << 16);
        if self.content_crc.is_none() && !check_range {
            return Ok(());
        }
        let width = self.dtype.width();
        let pieces: Vec<ChunkResult> = self.map[HEADER_LEN..]
            .par_chunks(CONTENT_CHUNK)
            .enumerate()
            .map(|(i, chunk)| {
                let crc = self.content_crc.map(|_| hash_piece(chunk));
                let bad = check_range
                    .then(|| self.first_out_of_range(chunk))
                    .flatten()
                    .map(|(j, token)| (i * (CONTENT_CHUNK / width) + j, token));
                (crc, bad)
            })
            .collect();
        let first_bad = pieces.iter().find_map(|&(_, bad)| bad);
        if let Some(stored) = self.content_crc {
            let computed = combine_in_order(pieces.into_iter().filter_map(|(crc, _)| crc));
            if computed != stored {
                return Err(content_mismatch(&self.path, KIND, stored, computed));
            }
        }
        match first_bad {
            None => Ok(()),
            Some((position, token)) => Err(DataError::TokenOutOfRange {
                path: self.path.clone(),
                position: position as u64,
                token,
                vocab_size: self.vocab_size,
            }),
        }
    }

    /// The first id >= vocab_size in `bytes` (whole tokens) and its index there.
    fn first_out_of_range(&self, bytes: &[u8]) -> Option<(usize, u32)> {
        let limit = self.vocab_size;
        // The maximum first (vectorised); the position search runs only on failure.
        match self.dtype {
            Dtype::U16 if max_u16(bytes) < limit => None,
            Dtype::U32 if max_u32(bytes) < limit => None,
            Dtype::U16 => first_at_least(bytes.chunks_exact(2).map(|c| u16_at(c, 0) as u32), limit),
            Dtype::U32 => first_at_least(bytes.chunks_exact(4).map(|c| u32_at(c, 0)), limit),
        }
    }
}

/// One chunk's part of `check_body`: its CRC32 state (when the format has a content checksum)
/// and its first out-of-range id, as (position in the store, id).
type ChunkResult = (Option<Hasher>, Option<(usize, u32)>);

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

// The two maxima run over 64-byte blocks with one accumulator per lane, which the compiler
// turns into packed max instructions: an iterator `max()` over `chunks_exact(2)` measured 4x
// slower, as slow as the rest of opening a store put together.

/// The largest little-endian u16 in `bytes` (a whole number of ids), as u32.
fn max_u16(bytes: &[u8]) -> u32 {
    let mut lanes = [0u16; 32];
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = (*lane).max(u16_at(block, 2 * i));
        }
    }
    let tail = blocks.remainder().chunks_exact(2).map(|c| u16_at(c, 0));
    lanes.into_iter().chain(tail).max().unwrap_or(0) as u32
}

/// The largest little-endian u32 in `bytes` (a whole number of ids).
fn max_u32(bytes: &[u8]) -> u32 {
    let mut lanes = [0u32; 16];
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = (*lane).max(u32_at(block, 4 * i));
        }
    }
    let tail = blocks.remainder().chunks_exact(4).map(|c| u32_at(c, 0));
    lanes.into_iter().chain(tail).max().unwrap_or(0)
}

/// The first of `ids` that is >= `limit`, with its index.
fn first_at_least(ids: impl Iterator<Item = u32>, limit: u32) -> Option<(usize, u32)> {
    ids.enumerate().find(|&(_, t)| t >= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u32_dtype_for_large_vocab_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.bin");
        let tokens = [0u32, 70_000, 99_999, 5];
        let store = TokenStore::create_from(&path, 100_000, &tokens).expect("write+open");
        assert_eq!(store.len(), 4);
        let mut out = [0u32; 3];
        store.read(1, &mut out);
        assert_eq!(out, [70_000, 99_999, 5]);
        let len = std::fs::metadata(&path).expect("stat").len();
        assert_eq!(len, HEADER_LEN as u64 + 16);
    }

    #[test]
    fn out_of_range_push_is_rejected_and_dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.bin");
        let mut w = TokenStoreWriter::create(&path, 10).expect("create");
        w.push(&[1, 2]).expect("in range");
        let err = w.push(&[3, 10]).expect_err("10 >= vocab 10");
        assert!(err.to_string().contains("position 3"), "{err}");
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn zero_byte_file_is_not_a_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zero.bin");
        std::fs::write(&path, b"").expect("write");
        let err = TokenStore::open(&path).expect_err("empty file");
        assert!(
            err.to_string().contains("not a syllabus token store"),
            "{err}"
        );
    }

    #[test]
    fn empty_store_is_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::create_from(&dir.path().join("e.bin"), 50257, &[]).expect("ok");
        assert!(store.is_empty());
        store.for_each_chunk(|_, _| panic!("no chunks in an empty store"));
    }
}
