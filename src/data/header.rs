//! The fixed 64-byte header shared by the binary data files (token stores, document indexes).
//!
//! Layout (little-endian): magic (8 bytes), format version u32 at offset 8, file-specific
//! fields in bytes 12..60, and a CRC32 of bytes 0..60 in the last 4 bytes. Checking order on
//! read is magic, then version, then checksum: a foreign file gets "bad magic", a file from
//! another format version gets a version message (its checksum layout may differ), and only
//! then does a checksum mismatch mean corruption.
//!
//! The header checksum covers only the header. The body (everything after it) has its own
//! CRC32, the content checksum, at `OFF_CONTENT_CRC` in every file kind that carries one.

use std::ops::RangeInclusive;
use std::path::Path;

use crc32fast::Hasher;
use rayon::prelude::*;

use super::DataError;

pub(crate) const HEADER_LEN: usize = 64;
const CRC_OFFSET: usize = HEADER_LEN - 4;
/// Where the CRC32 of the body is stored (token stores from format 2, document indexes always).
pub(crate) const OFF_CONTENT_CRC: usize = 40;
/// Body bytes per parallel checksum task: large enough that the per-task overhead and the
/// final in-order combine are negligible, small enough to spread a 50 MB store over 16 cores.
/// A multiple of every token width, so chunk boundaries never split a token.
pub(crate) const CONTENT_CHUNK: usize = 1 << 21;

/// A header being built or parsed; field accessors take absolute byte offsets.
pub(crate) struct Header {
    bytes: [u8; HEADER_LEN],
}

impl Header {
    pub(crate) fn new(magic: &[u8; 8], version: u32) -> Self {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..8].copy_from_slice(magic);
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        Header { bytes }
    }

    pub(crate) fn set_u32(&mut self, offset: usize, value: u32) {
        debug_assert!((12..=CRC_OFFSET - 4).contains(&offset));
        self.bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn set_u64(&mut self, offset: usize, value: u64) {
        debug_assert!((12..=CRC_OFFSET - 8).contains(&offset));
        self.bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u32_at(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes[offset..offset + 4]);
        u32::from_le_bytes(b)
    }

    pub(crate) fn u64_at(&self, offset: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[offset..offset + 8]);
        u64::from_le_bytes(b)
    }

    /// The final bytes, with the checksum filled in.
    pub(crate) fn seal(mut self) -> [u8; HEADER_LEN] {
        let crc = crc32fast::hash(&self.bytes[..CRC_OFFSET]);
        self.bytes[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        self.bytes
    }

    pub(crate) fn version(&self) -> u32 {
        self.u32_at(8)
    }

    /// Parses and checks the first `HEADER_LEN` bytes of `data` (the whole file or a prefix);
    /// the format version must lie in `versions`.
    pub(crate) fn parse(
        path: &Path,
        data: &[u8],
        magic: &[u8; 8],
        kind: &'static str,
        versions: RangeInclusive<u32>,
    ) -> Result<Self, DataError> {
        if data.len() < HEADER_LEN {
            // Too short to even hold a header: say "truncated" only if it starts right.
            if data.len() >= 8 && &data[..8] == magic {
                return Err(DataError::Truncated {
                    path: path.to_path_buf(),
                    expected: HEADER_LEN as u64,
                    found: data.len() as u64,
                });
            }
            return Err(DataError::BadMagic {
                path: path.to_path_buf(),
                kind,
            });
        }
        let mut bytes = [0u8; HEADER_LEN];
        bytes.copy_from_slice(&data[..HEADER_LEN]);
        let header = Header { bytes };
        if &header.bytes[..8] != magic {
            return Err(DataError::BadMagic {
                path: path.to_path_buf(),
                kind,
            });
        }
        let found = header.version();
        if !versions.contains(&found) {
            return Err(DataError::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
                oldest: *versions.start(),
                supported: *versions.end(),
            });
        }
        let stored = header.u32_at(CRC_OFFSET);
        if stored != crc32fast::hash(&header.bytes[..CRC_OFFSET]) {
            return Err(DataError::HeaderChecksum {
                path: path.to_path_buf(),
            });
        }
        Ok(header)
    }
}

/// CRC32 of one piece of a body, to be combined in order with [`combine_in_order`].
pub(crate) fn hash_piece(bytes: &[u8]) -> Hasher {
    let mut h = Hasher::new();
    h.update(bytes);
    h
}

/// Combines per-piece hashers, in the order of the pieces, into the CRC32 of their
/// concatenation: exactly `crc32fast::hash` of the whole, however the pieces were scheduled.
pub(crate) fn combine_in_order(pieces: impl IntoIterator<Item = Hasher>) -> u32 {
    let mut whole = Hasher::new();
    for piece in pieces {
        whole.combine(&piece);
    }
    whole.finalize()
}

/// CRC32 of `body`, computed over `CONTENT_CHUNK` pieces in parallel.
pub(crate) fn content_crc(body: &[u8]) -> u32 {
    let pieces: Vec<Hasher> = body.par_chunks(CONTENT_CHUNK).map(hash_piece).collect();
    combine_in_order(pieces)
}

/// The error for a body whose CRC32 differs from the one its header stores.
pub(crate) fn content_mismatch(
    path: &Path,
    kind: &'static str,
    stored: u32,
    computed: u32,
) -> DataError {
    DataError::ContentChecksum {
        path: path.to_path_buf(),
        kind,
        stored,
        computed,
    }
}

/// Renames `tmp` to `dest` and, best effort, fsyncs the directory so the rename itself is
/// durable (the data was already synced by the caller).
pub(crate) fn commit_rename(tmp: &Path, dest: &Path) -> Result<(), DataError> {
    std::fs::rename(tmp, dest).map_err(|e| DataError::io(dest, e))?;
    if let Some(dir) = dest.parent() {
        // Directory fsync is not supported everywhere (e.g. Windows); the rename already
        // happened, so failing here would only lose a durability nicety.
        if let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// `<path>.tmp`: where a file is written before being renamed into place.
pub(crate) fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(".tmp");
    std::path::PathBuf::from(os)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_parse_round_trips_fields() {
        let mut h = Header::new(b"TESTMAG\0", 3);
        h.set_u32(12, 7);
        h.set_u64(24, 1 << 40);
        let bytes = h.seal();
        let p = Header::parse(Path::new("x"), &bytes, b"TESTMAG\0", "test file", 2..=3)
            .expect("valid header");
        assert_eq!(p.u32_at(12), 7);
        assert_eq!(p.u64_at(24), 1 << 40);
    }

    #[test]
    fn flipped_field_byte_fails_checksum() {
        let mut bytes = Header::new(b"TESTMAG\0", 1).seal();
        bytes[30] ^= 1;
        let err = Header::parse(Path::new("x"), &bytes, b"TESTMAG\0", "t", 1..=1).err();
        assert!(matches!(err, Some(DataError::HeaderChecksum { .. })));
    }

    #[test]
    fn chunked_content_crc_equals_the_sequential_crc() {
        // Three full chunks and a partial one, with varied bytes.
        let body: Vec<u8> = (0..3 * CONTENT_CHUNK + 1234)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(content_crc(&body), crc32fast::hash(&body));
        assert_eq!(content_crc(&body[..10]), crc32fast::hash(&body[..10]));
        assert_eq!(content_crc(&[]), crc32fast::hash(&[]));
    }
}
