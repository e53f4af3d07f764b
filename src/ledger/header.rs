//! The 64-byte ledger header.
//!
//! Layout (little-endian): magic `SYLLEDGR` (0..8), format version u32 (8), record size u32
//! (12), block count u64 (16), block length u32 (24, tokens per block), zero u32 (28), run id
//! u64 (32), generation u64 (40, the optimizer step of the last consistent flush), zeros
//! (48..60), CRC32 of bytes 0..60 (60). Checking order on open: magic, version, checksum,
//! record size, block length, file length — so a foreign file says "bad magic", a file of
//! another version says so, and a flipped bit anywhere in the header says "checksum" rather
//! than blaming whichever field it landed in.
//!
//! Version 2 added the per-record checksum (36-byte records instead of 32). Version 1 files
//! are refused with [`LedgerError::FormatOne`], not read: reading them would take a second
//! record layout (another atomic view of the mapping with its own layout proof and unsafe
//! cast) and an unchecked path through every reader, to serve files that only a run started
//! by an earlier build has. A ledger is created with every new run, so refusing costs a user
//! at most the resumption of such a run with the new build.

use std::path::Path;

use super::record::RECORD_SIZE;
use super::LedgerError;

pub const LEDGER_MAGIC: &[u8; 8] = b"SYLLEDGR";
pub const LEDGER_FORMAT_VERSION: u32 = 2;
pub const LEDGER_HEADER_LEN: usize = 64;
const OFF_VERSION: usize = 8;
const OFF_RECORD_SIZE: usize = 12;
const OFF_COUNT: usize = 16;
const OFF_BLOCK_LEN: usize = 24;
const OFF_RUN_ID: usize = 32;
const OFF_GENERATION: usize = 40;
const OFF_CRC: usize = 60;

/// The variable header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerHeader {
    /// Number of records (training blocks).
    pub block_count: u64,
    /// Tokens per block (context length + 1), so a reader can map ids back to token ranges.
    pub block_len: u32,
    /// Caller-chosen id of the run that owns the ledger.
    pub run_id: u64,
    /// Optimizer step of the last consistent flush (0 at creation).
    pub generation: u64,
}

impl LedgerHeader {
    /// File length implied by the header; `None` if it overflows u64.
    pub fn file_len(&self) -> Option<u64> {
        self.block_count
            .checked_mul(RECORD_SIZE as u64)?
            .checked_add(LEDGER_HEADER_LEN as u64)
    }

    /// The header bytes, checksum included.
    pub fn encode(&self) -> [u8; LEDGER_HEADER_LEN] {
        let mut b = [0u8; LEDGER_HEADER_LEN];
        b[..8].copy_from_slice(LEDGER_MAGIC);
        put(&mut b, OFF_VERSION, &LEDGER_FORMAT_VERSION.to_le_bytes());
        put(&mut b, OFF_RECORD_SIZE, &(RECORD_SIZE as u32).to_le_bytes());
        put(&mut b, OFF_COUNT, &self.block_count.to_le_bytes());
        put(&mut b, OFF_BLOCK_LEN, &self.block_len.to_le_bytes());
        put(&mut b, OFF_RUN_ID, &self.run_id.to_le_bytes());
        put(&mut b, OFF_GENERATION, &self.generation.to_le_bytes());
        let crc = crc32fast::hash(&b[..OFF_CRC]);
        put(&mut b, OFF_CRC, &crc.to_le_bytes());
        b
    }

    /// Parses and checks `bytes` (at least the header) of the file at `path`, whose total length
    /// is `file_len`.
    pub fn parse(path: &Path, bytes: &[u8], file_len: u64) -> Result<Self, LedgerError> {
        let p = || path.to_path_buf();
        if bytes.len() < LEDGER_HEADER_LEN {
            if bytes.starts_with(LEDGER_MAGIC) {
                let msg = format!(
                    "truncated: {} bytes, shorter than the {LEDGER_HEADER_LEN}-byte header",
                    bytes.len()
                );
                return Err(LedgerError::invalid(path, msg));
            }
            return Err(LedgerError::BadMagic { path: p() });
        }
        if &bytes[..8] != LEDGER_MAGIC {
            return Err(LedgerError::BadMagic { path: p() });
        }
        let found = u32_at(bytes, OFF_VERSION);
        if found == 1 {
            return Err(LedgerError::FormatOne {
                path: p(),
                supported: LEDGER_FORMAT_VERSION,
            });
        }
        if found != LEDGER_FORMAT_VERSION {
            return Err(LedgerError::UnsupportedVersion {
                path: p(),
                found,
                supported: LEDGER_FORMAT_VERSION,
            });
        }
        if u32_at(bytes, OFF_CRC) != crc32fast::hash(&bytes[..OFF_CRC]) {
            return Err(LedgerError::HeaderChecksum { path: p() });
        }
        let record_size = u32_at(bytes, OFF_RECORD_SIZE);
        if record_size != RECORD_SIZE as u32 {
            return Err(LedgerError::RecordSize {
                path: p(),
                found: record_size,
                expected: RECORD_SIZE as u32,
            });
        }
        let header = LedgerHeader {
            block_count: u64_at(bytes, OFF_COUNT),
            block_len: u32_at(bytes, OFF_BLOCK_LEN),
            run_id: u64_at(bytes, OFF_RUN_ID),
            generation: u64_at(bytes, OFF_GENERATION),
        };
        if header.block_len == 0 {
            return Err(LedgerError::invalid(path, "block length is 0"));
        }
        let expected = header.file_len().ok_or_else(|| {
            LedgerError::invalid(
                path,
                format!("block count {} overflows", header.block_count),
            )
        })?;
        if expected != file_len {
            return Err(LedgerError::Length {
                path: p(),
                blocks: header.block_count,
                expected,
                found: file_len,
            });
        }
        Ok(header)
    }
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LedgerHeader {
        LedgerHeader {
            block_count: 3,
            block_len: 129,
            run_id: 0xDEAD_BEEF_0123,
            generation: 42,
        }
    }

    #[test]
    fn encode_parse_round_trip() {
        let h = sample();
        let bytes = h.encode();
        let len = h.file_len().expect("small");
        assert_eq!(len, 64 + 3 * 36);
        assert_eq!(
            LedgerHeader::parse(Path::new("x"), &bytes, len).expect("ok"),
            h
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let h = sample();
        let len = h.file_len().expect("small");
        for i in 0..LEDGER_HEADER_LEN {
            let mut bytes = h.encode();
            bytes[i] ^= 0x10;
            assert!(
                LedgerHeader::parse(Path::new("x"), &bytes, len).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn format_one_is_refused_with_a_way_forward() {
        let h = sample();
        let mut bytes = h.encode();
        put(&mut bytes, OFF_VERSION, &1u32.to_le_bytes());
        let len = 64 + 3 * 32; // a version-1 file: 32-byte records
        let err = LedgerHeader::parse(Path::new("run/ledger.bin"), &bytes, len).expect_err("v1");
        assert!(matches!(err, LedgerError::FormatOne { supported: 2, .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("run/ledger.bin") && msg.contains("version 1"),
            "{msg}"
        );
        assert!(msg.contains("start a new run"), "{msg}");
    }

    #[test]
    fn overflowing_block_count_is_an_error_not_a_panic() {
        let h = LedgerHeader {
            block_count: u64::MAX / 2,
            ..sample()
        };
        let err = LedgerHeader::parse(Path::new("x"), &h.encode(), 0).expect_err("overflow");
        assert!(err.to_string().contains("overflows"), "{err}");
    }
}
