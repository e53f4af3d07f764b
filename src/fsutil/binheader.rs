//! The fixed 64-byte header every binary file of the program starts with (token stores,
//! document indexes, the ledger), so that every format is checked the same way.
//!
//! Layout (little-endian): magic (8 bytes), format version u32 at offset 8, file-specific
//! fields in bytes 12..60, and a CRC32 of bytes 0..60 in the last 4 bytes. Checking order on
//! read is magic, then version, then checksum: a foreign file gets "bad magic", a file from
//! another format version gets a version message (its layout may differ), and only then does
//! a checksum mismatch mean corruption. Each file kind checks its own fields afterwards, so a
//! flipped bit anywhere in the header says "checksum" rather than blaming the field it hit.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

pub const HEADER_LEN: usize = 64;
const OFF_VERSION: usize = 8;
const OFF_FIELDS: usize = 12;
const OFF_CRC: usize = HEADER_LEN - 4;

/// Why a header was refused, naming the file. The data files show these messages as they
/// are; the ledger converts them into its own, which name the ledger.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("{path}: not a syllabus {kind} (bad magic bytes)")]
    BadMagic { path: PathBuf, kind: &'static str },

    /// Shorter than a header but starting with the right magic: cut off, not foreign.
    #[error("{path}: truncated: expected {HEADER_LEN} bytes, found {found}")]
    Truncated { path: PathBuf, found: u64 },

    /// A format version outside `oldest..=supported`.
    #[error(
        "{path}: unsupported format version {found} (this build supports {}); \
         the file was written by another syllabus version or is corrupted",
        if oldest == supported { format!("version {supported}") } else { format!("versions {oldest} to {supported}") }
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        oldest: u32,
        supported: u32,
    },

    #[error("{path}: header checksum mismatch: file corrupted")]
    Checksum { path: PathBuf },
}

/// A header being built or parsed; field accessors take absolute byte offsets.
pub struct Header {
    bytes: [u8; HEADER_LEN],
}

impl Header {
    /// A header with every file-specific field zero.
    pub fn new(magic: &[u8; 8], version: u32) -> Self {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..OFF_VERSION].copy_from_slice(magic);
        bytes[OFF_VERSION..OFF_FIELDS].copy_from_slice(&version.to_le_bytes());
        Header { bytes }
    }

    pub fn set_u32(&mut self, offset: usize, value: u32) {
        self.set(offset, value.to_le_bytes());
    }

    pub fn set_u64(&mut self, offset: usize, value: u64) {
        self.set(offset, value.to_le_bytes());
    }

    pub fn u32_at(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.get(offset))
    }

    pub fn u64_at(&self, offset: usize) -> u64 {
        u64::from_le_bytes(self.get(offset))
    }

    pub fn version(&self) -> u32 {
        self.u32_at(OFF_VERSION)
    }

    /// The final bytes, with the checksum filled in.
    pub fn seal(mut self) -> [u8; HEADER_LEN] {
        let crc = self.crc();
        self.bytes[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
        self.bytes
    }

    /// Parses and checks the first `HEADER_LEN` bytes of `data` (the file at `path` or a
    /// prefix of it), a `kind` file whose version must lie in `versions`. The magic is checked
    /// first, so shorter data is "truncated" only if it starts right.
    pub fn parse(
        path: &Path,
        data: &[u8],
        magic: &[u8; 8],
        kind: &'static str,
        versions: RangeInclusive<u32>,
    ) -> Result<Self, HeaderError> {
        let path = path.to_path_buf();
        if !data.starts_with(magic) {
            return Err(HeaderError::BadMagic { path, kind });
        }
        let Some(bytes) = data.get(..HEADER_LEN).and_then(|b| b.try_into().ok()) else {
            let found = data.len() as u64;
            return Err(HeaderError::Truncated { path, found });
        };
        let header = Header { bytes };
        if !versions.contains(&header.version()) {
            return Err(HeaderError::UnsupportedVersion {
                path,
                found: header.version(),
                oldest: *versions.start(),
                supported: *versions.end(),
            });
        }
        if header.u32_at(OFF_CRC) != header.crc() {
            return Err(HeaderError::Checksum { path });
        }
        Ok(header)
    }

    fn crc(&self) -> u32 {
        crc32fast::hash(&self.bytes[..OFF_CRC])
    }

    /// Writes a file-specific field; magic, version and checksum are not fields.
    fn set<const N: usize>(&mut self, offset: usize, value: [u8; N]) {
        debug_assert!(offset >= OFF_FIELDS && offset + N <= OFF_CRC);
        self.bytes[offset..offset + N].copy_from_slice(&value);
    }

    fn get<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[offset..offset + N]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8; 8] = b"TESTMAG\0";

    /// A sealed header claiming `version`, with two fields set.
    fn sealed(version: u32) -> [u8; HEADER_LEN] {
        let mut h = Header::new(MAGIC, version);
        h.set_u32(12, 7);
        h.set_u64(24, 1 << 40);
        h.seal()
    }

    fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        Header::parse(Path::new("d/x.bin"), bytes, MAGIC, "test file", 2..=3)
    }

    #[test]
    fn fields_round_trip_at_their_offsets() {
        let file = [&sealed(3)[..], b"and a body"].concat();
        assert_eq!(file[..12], *b"TESTMAG\0\x03\0\0\0");
        assert_eq!(file[60..64], crc32fast::hash(&file[..60]).to_le_bytes());
        let h = parse(&file).expect("valid header");
        assert_eq!((h.version(), h.u32_at(12), h.u64_at(24)), (3, 7, 1 << 40));
        assert!(parse(&sealed(2)).is_ok(), "the oldest version");
    }

    #[test]
    fn each_refusal_names_the_file_and_what_was_expected() {
        let flipped = |i: usize| {
            let mut bytes = sealed(3);
            bytes[i] ^= 0x10;
            bytes
        };
        let cases: [(&[u8], &str); 6] = [
            (&flipped(3), "not a syllabus test file (bad magic bytes)"),
            (b"NOT", "not a syllabus test file (bad magic bytes)"),
            (&sealed(3)[..9], "truncated: expected 64 bytes, found 9"),
            (&sealed(1), "format version 1 (this build supports versions"),
            (&sealed(4), "version 4 (this build supports versions 2"),
            (&flipped(30), "header checksum mismatch: file corrupted"),
        ];
        for (bytes, want) in cases {
            let msg = parse(bytes).map_or_else(|e| e.to_string(), |_| "parsed".into());
            assert!(msg.starts_with("d/x.bin: ") && msg.contains(want), "{msg}");
        }
        // A flipped field or checksum bit is blamed on the checksum, not on the field.
        let blamed = |i| matches!(parse(&flipped(i)), Err(HeaderError::Checksum { .. }));
        assert!((12..HEADER_LEN).all(blamed));
    }
}
