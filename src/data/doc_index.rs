//! Per-document index of a token store: where each document starts and which source it came
//! from. Small (12 bytes per document), so it is read fully into memory.
//!
//! File layout (little-endian, common header in `fsutil::binheader`): num_sources u32 at 12,
//! doc_count u64 at 24, token_count u64 (of the matching store) at 32, content CRC32 (of the
//! body) u32 at 40, zeros to 60, header CRC32 at 60. Body: doc_count u64 start offsets, then
//! doc_count u32 source ids. The body has been checksummed since format 1 (a corrupted offset
//! would silently mislabel sources), at the offset token stores adopted in their format 2, so
//! this format needed no new version.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::content::{content_crc, content_mismatch, OFF_CONTENT_CRC};
use super::{commit_rename, DataError};
use crate::fsutil::binheader::{Header, HEADER_LEN};
use crate::fsutil::tmp_path;

const MAGIC: &[u8; 8] = b"SYLDOCS\0";
const KIND: &str = "document index";
const VERSION: u32 = 1;
const OFF_SOURCES: usize = 12;
const OFF_DOCS: usize = 24;
const OFF_TOKENS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocIndex {
    starts: Vec<usize>,
    sources: Vec<u32>,
    token_count: usize,
    num_sources: u32,
}

impl DocIndex {
    /// Validates and builds an index: starts strictly increasing from 0 and below
    /// `token_count` (every document holds at least its EOT token), sources < `num_sources`.
    pub fn new(
        starts: Vec<usize>,
        sources: Vec<u32>,
        token_count: usize,
        num_sources: u32,
    ) -> Result<Self, DataError> {
        Self::validate(&starts, &sources, token_count, num_sources)
            .map_err(DataError::InvalidArgument)?;
        Ok(DocIndex {
            starts,
            sources,
            token_count,
            num_sources,
        })
    }

    fn validate(
        starts: &[usize],
        sources: &[u32],
        token_count: usize,
        num_sources: u32,
    ) -> Result<(), String> {
        if starts.len() != sources.len() {
            return Err(format!(
                "{} document starts but {} source ids",
                starts.len(),
                sources.len()
            ));
        }
        match starts.first() {
            None if token_count != 0 => {
                return Err(format!("no documents but {token_count} tokens"));
            }
            Some(&s) if s != 0 => return Err(format!("first document starts at {s}, not 0")),
            _ => {}
        }
        if let Some(i) = starts.windows(2).position(|w| w[1] <= w[0]) {
            return Err(format!(
                "document starts not increasing at document {}",
                i + 1
            ));
        }
        if let Some(&last) = starts.last() {
            if last >= token_count {
                return Err(format!(
                    "last document starts at {last}, past the {token_count} tokens"
                ));
            }
        }
        if let Some(i) = sources.iter().position(|&s| s >= num_sources) {
            return Err(format!(
                "document {i} has source id {} but there are {num_sources} sources",
                sources[i]
            ));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Tokens in the store this index describes.
    pub fn token_count(&self) -> usize {
        self.token_count
    }

    pub fn num_sources(&self) -> u32 {
        self.num_sources
    }

    /// First token of document `i`. Panics if `i >= len()`.
    pub fn doc_start(&self, i: usize) -> usize {
        self.starts[i]
    }

    /// One past the last token (the EOT included) of document `i`. Panics if `i >= len()`.
    pub fn doc_end(&self, i: usize) -> usize {
        self.starts.get(i + 1).copied().unwrap_or(self.token_count)
    }

    /// Source id of document `i`. Panics if `i >= len()`.
    pub fn doc_source(&self, i: usize) -> u32 {
        self.sources[i]
    }

    /// Index of the document holding token `pos` (binary search). Panics if
    /// `pos >= token_count()`.
    pub fn doc_of_token(&self, pos: usize) -> usize {
        assert!(
            pos < self.token_count,
            "token position {pos} out of range ({} tokens)",
            self.token_count
        );
        // starts[0] == 0 <= pos, so at least one start is <= pos and this cannot underflow.
        self.starts.partition_point(|&s| s <= pos) - 1
    }

    /// Source id of the document holding token `pos`. Panics if `pos >= token_count()`.
    pub fn source_of_token(&self, pos: usize) -> u32 {
        self.sources[self.doc_of_token(pos)]
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.starts.len() * 12);
        for &s in &self.starts {
            body.extend_from_slice(&(s as u64).to_le_bytes());
        }
        for &s in &self.sources {
            body.extend_from_slice(&s.to_le_bytes());
        }
        body
    }

    /// Writes `<path>.tmp` (fsynced) and returns its name and content checksum, for callers
    /// that rename several files into place together.
    pub(crate) fn write_tmp(&self, path: &Path) -> Result<(PathBuf, u32), DataError> {
        let body = self.body_bytes();
        let crc = content_crc(&body);
        let mut h = Header::new(MAGIC, VERSION);
        h.set_u32(OFF_SOURCES, self.num_sources);
        h.set_u64(OFF_DOCS, self.starts.len() as u64);
        h.set_u64(OFF_TOKENS, self.token_count as u64);
        h.set_u32(OFF_CONTENT_CRC, crc);
        let tmp = tmp_path(path);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&h.seal())?;
            f.write_all(&body)?;
            f.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp); // best effort: a partial temp is garbage
            DataError::io(&tmp, e)
        })?;
        Ok((tmp, crc))
    }

    /// Writes the index atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let (tmp, _) = self.write_tmp(path)?;
        commit_rename(&tmp, path)
    }

    /// Reads and fully checks an index: header, length, content checksum, structure.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        Ok(Self::open_with_crc(path)?.0)
    }

    /// `open`, also returning the verified content checksum (to cross-check the manifest).
    pub(crate) fn open_with_crc(path: &Path) -> Result<(Self, u32), DataError> {
        let data = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let h = Header::parse(path, &data, MAGIC, KIND, VERSION..=VERSION)?;
        let docs = h.u64_at(OFF_DOCS);
        let expected = docs
            .checked_mul(12)
            .and_then(|b| b.checked_add(HEADER_LEN as u64))
            .ok_or_else(|| DataError::invalid(path, format!("document count {docs} overflows")))?;
        if data.len() as u64 != expected {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                expected,
                found: data.len() as u64,
            });
        }
        let body = &data[HEADER_LEN..];
        let (stored, computed) = (h.u32_at(OFF_CONTENT_CRC), content_crc(body));
        if computed != stored {
            return Err(content_mismatch(path, KIND, stored, computed));
        }
        // Lengths match `expected` above, so these conversions cannot fail.
        let n = docs as usize;
        let (start_bytes, source_bytes) = body.split_at(n * 8);
        let starts = start_bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as usize)
            .collect();
        let sources = source_bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let token_count = h.u64_at(OFF_TOKENS) as usize;
        let num_sources = h.u32_at(OFF_SOURCES);
        let index = Self::new(starts, sources, token_count, num_sources)
            .map_err(|e| DataError::invalid(path, e.to_string()))?;
        Ok((index, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DocIndex {
        DocIndex::new(vec![0, 5, 6, 20], vec![0, 2, 1, 0], 25, 3).expect("valid index")
    }

    #[test]
    fn lookups() {
        let idx = sample();
        assert_eq!(idx.len(), 4);
        assert_eq!(idx.doc_end(1), 6);
        assert_eq!(idx.doc_end(3), 25);
        let by_pos: Vec<u32> = [0, 4, 5, 6, 19, 20, 24]
            .iter()
            .map(|&p| idx.source_of_token(p))
            .collect();
        assert_eq!(by_pos, vec![0, 0, 2, 1, 1, 0, 0]);
    }

    #[test]
    fn write_open_round_trip_and_body_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.docs");
        sample().write(&path).expect("write");
        assert_eq!(DocIndex::open(&path).expect("open"), sample());
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[HEADER_LEN + 9] ^= 0x40;
        std::fs::write(&path, &bytes).expect("write");
        let err = DocIndex::open(&path).expect_err("corrupt body");
        let msg = err.to_string();
        assert!(
            msg.contains("content checksum mismatch") && msg.contains("document index"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_inconsistent_parts() {
        assert!(DocIndex::new(vec![1, 3], vec![0, 0], 5, 1).is_err());
        assert!(DocIndex::new(vec![0, 3, 3], vec![0, 0, 0], 5, 1).is_err());
        assert!(DocIndex::new(vec![0, 5], vec![0, 0], 5, 1).is_err());
        assert!(DocIndex::new(vec![0, 2], vec![0, 1], 5, 1).is_err());
        assert!(DocIndex::new(vec![], vec![], 0, 0).is_ok());
    }
}
