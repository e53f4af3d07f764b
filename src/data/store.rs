//! Memory-mapped token store: a flat array of token ids behind a checked 64-byte header.
//!
//! Header fields (after the common magic/version, see `header.rs`): dtype u32 at 12 (2 = u16,
//! 4 = u32), vocab_size u32 at 16, reserved u32 at 20, token_count u64 at 24, zeros to 60,
//! CRC32 at 60. Token ids follow, little-endian, with no per-document framing: documents are
//! separated by `EOT_TOKEN`, GPT-2 style.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::header::{commit_rename, tmp_path, Header, HEADER_LEN};
use super::DataError;

const MAGIC: &[u8; 8] = b"SYLTOKS\0";
const KIND: &str = "token store";
pub const STORE_FORMAT_VERSION: u32 = 1;
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

/// A read-only, memory-mapped token store. Opening validates the header, the file length and
/// that every id is below `vocab_size`, so callers can index embeddings with `get`/`read`
/// results without further checks.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    map: Mmap,
    dtype: Dtype,
    len: usize,
    vocab_size: u32,
}

impl TokenStore {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        // SAFETY: the map is read-only and syllabus never modifies a store in place: writers
        // only write `<name>.tmp` and rename it over the final name, which leaves this mapping
        // pointing at the old (unlinked) inode. Another program truncating the file while it
        // is mapped could still fault; that is outside what we can guard against.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| DataError::io(path, e))?;
        let header = Header::parse(path, &map, MAGIC, KIND, STORE_FORMAT_VERSION)?;
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
        };
        store.check_token_range()?;
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

    /// Fails on the first id >= vocab_size (a store written by something else, or corrupted
    /// in the body, which the header checksum does not cover).
    fn check_token_range(&self) -> Result<(), DataError> {
        if self.dtype == Dtype::U16 && self.vocab_size >= 1 << 16 {
            return Ok(()); // every u16 is in range
        }
        let mut bad: Option<(usize, u32)> = None;
        self.for_each_chunk(|start, chunk| {
            if bad.is_some() {
                return;
            }
            // max() vectorizes; the position search runs only on failure.
            if chunk.iter().copied().max().unwrap_or(0) >= self.vocab_size {
                bad = chunk
                    .iter()
                    .position(|&t| t >= self.vocab_size)
                    .map(|i| (start + i, chunk[i]));
            }
        });
        match bad {
            None => Ok(()),
            Some((position, token)) => Err(DataError::TokenOutOfRange {
                path: self.path.clone(),
                position: position as u64,
                token,
                vocab_size: self.vocab_size,
            }),
        }
    }
}

/// Streams tokens into `<final>.tmp`, then on `finish` writes the real header, fsyncs and
/// renames onto the final name: a crash never leaves a partial file under the final name.
/// Dropping an unfinished writer deletes the temp file.
#[derive(Debug)]
pub struct TokenStoreWriter {
    final_path: PathBuf,
    tmp_path: PathBuf,
    out: Option<BufWriter<File>>,
    dtype: Dtype,
    vocab_size: u32,
    count: u64,
    scratch: Vec<u8>,
    finished: bool,
}

impl TokenStoreWriter {
    pub fn create(final_path: &Path, vocab_size: u32) -> Result<Self, DataError> {
        if vocab_size == 0 {
            return Err(DataError::InvalidArgument(format!(
                "{}: vocab_size must be positive",
                final_path.display()
            )));
        }
        let tmp = tmp_path(final_path);
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // Placeholder so token bytes land at their final offsets; rewritten in `finish`.
        out.write_all(&[0u8; HEADER_LEN])
            .map_err(|e| DataError::io(&tmp, e))?;
        Ok(TokenStoreWriter {
            final_path: final_path.to_path_buf(),
            tmp_path: tmp,
            out: Some(out),
            dtype: Dtype::for_vocab(vocab_size),
            vocab_size,
            count: 0,
            scratch: Vec::new(),
            finished: false,
        })
    }

    /// Appends tokens; an id >= vocab_size is an error (nothing of this call is written).
    pub fn push(&mut self, tokens: &[u32]) -> Result<(), DataError> {
        if let Some(i) = tokens.iter().position(|&t| t >= self.vocab_size) {
            return Err(DataError::TokenOutOfRange {
                path: self.final_path.clone(),
                position: self.count + i as u64,
                token: tokens[i],
                vocab_size: self.vocab_size,
            });
        }
        self.scratch.clear();
        match self.dtype {
            // Truncation is exact: every token was checked < vocab_size <= 65536 above.
            Dtype::U16 => tokens
                .iter()
                .for_each(|&t| self.scratch.extend_from_slice(&(t as u16).to_le_bytes())),
            Dtype::U32 => tokens
                .iter()
                .for_each(|&t| self.scratch.extend_from_slice(&t.to_le_bytes())),
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| DataError::invalid(&self.final_path, "push after a failed finish"))?;
        out.write_all(&self.scratch)
            .map_err(|e| DataError::io(&self.tmp_path, e))?;
        self.count += tokens.len() as u64;
        Ok(())
    }

    /// Tokens pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Writes the header, fsyncs, renames into place; returns the token count.
    pub fn finish(mut self) -> Result<u64, DataError> {
        let out = self.out.take().ok_or_else(|| {
            DataError::invalid(&self.final_path, "writer already finished or failed")
        })?;
        let mut file = out
            .into_inner()
            .map_err(|e| DataError::io(&self.tmp_path, e.into_error()))?;
        let mut header = Header::new(MAGIC, STORE_FORMAT_VERSION);
        header.set_u32(OFF_DTYPE, self.dtype.width() as u32);
        header.set_u32(OFF_VOCAB, self.vocab_size);
        header.set_u64(OFF_COUNT, self.count);
        let tmp = self.tmp_path.clone();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&header.seal()))
            .and_then(|_| file.sync_all())
            .map_err(|e| DataError::io(&tmp, e))?;
        drop(file);
        commit_rename(&tmp, &self.final_path)?;
        self.finished = true;
        Ok(self.count)
    }
}

impl Drop for TokenStoreWriter {
    fn drop(&mut self) {
        if !self.finished {
            drop(self.out.take());
            // Best effort: the temp file is garbage either way, and Drop cannot report.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
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
