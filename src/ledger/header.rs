//! The 64-byte ledger header: the common header of `fsutil::binheader` (magic `SYLLEDGR`,
//! format version, CRC32 of bytes 0..60, all checked there first) with these fields
//! (little-endian): record size u32 (12), block count u64 (16), block length u32 (24, tokens
//! per block), zero u32 (28), run id u64 (32), generation u64 (40, the optimizer step of the
//! last consistent flush), zeros (48..60). After the common checks come record size, block
//! length and file length.
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
use crate::fsutil::binheader::{Header, HEADER_LEN};

pub const LEDGER_MAGIC: &[u8; 8] = b"SYLLEDGR";
pub const LEDGER_FORMAT_VERSION: u32 = 2;
pub const LEDGER_HEADER_LEN: usize = HEADER_LEN;
const OFF_RECORD_SIZE: usize = 12;
const OFF_COUNT: usize = 16;
const OFF_BLOCK_LEN: usize = 24;
const OFF_RUN_ID: usize = 32;
const OFF_GENERATION: usize = 40;

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
        let mut h = Header::new(LEDGER_MAGIC, LEDGER_FORMAT_VERSION);
        h.set_u32(OFF_RECORD_SIZE, RECORD_SIZE as u32);
        h.set_u64(OFF_COUNT, self.block_count);
        h.set_u32(OFF_BLOCK_LEN, self.block_len);
        h.set_u64(OFF_RUN_ID, self.run_id);
        h.set_u64(OFF_GENERATION, self.generation);
        h.seal()
    }

    /// Parses and checks `bytes` (at least the header) of the file at `path`, whose total length
    /// is `file_len`: the common checks, then the ledger's own fields.
    pub fn parse(path: &Path, bytes: &[u8], file_len: u64) -> Result<Self, LedgerError> {
        let current = LEDGER_FORMAT_VERSION..=LEDGER_FORMAT_VERSION;
        let h = Header::parse(path, bytes, LEDGER_MAGIC, "ledger", current)?;
        let record_size = h.u32_at(OFF_RECORD_SIZE);
        if record_size != RECORD_SIZE as u32 {
            return Err(LedgerError::RecordSize {
                path: path.to_path_buf(),
                found: record_size,
                expected: RECORD_SIZE as u32,
            });
        }
        let header = LedgerHeader {
            block_count: h.u64_at(OFF_COUNT),
            block_len: h.u32_at(OFF_BLOCK_LEN),
            run_id: h.u64_at(OFF_RUN_ID),
            generation: h.u64_at(OFF_GENERATION),
        };
        header.check_length(path, file_len)?;
        Ok(header)
    }

    /// Checks the block length and that the file holds exactly `block_count` records.
    fn check_length(&self, path: &Path, file_len: u64) -> Result<(), LedgerError> {
        if self.block_len == 0 {
            return Err(LedgerError::invalid(path, "block length is 0"));
        }
        let expected = self.file_len().ok_or_else(|| {
            let msg = format!("block count {} overflows", self.block_count);
            LedgerError::invalid(path, msg)
        })?;
        if expected != file_len {
            return Err(LedgerError::Length {
                path: path.to_path_buf(),
                blocks: self.block_count,
                expected,
                found: file_len,
            });
        }
        Ok(())
    }
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
        let len = h.file_len().expect("small");
        assert_eq!(len, 64 + 3 * 36);
        let parsed = LedgerHeader::parse(Path::new("x"), &h.encode(), len);
        assert_eq!(parsed.expect("ok"), h);
    }

    #[test]
    fn format_one_is_refused_with_a_way_forward() {
        let mut bytes = sample().encode();
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        let len = 64 + 3 * 32; // a version-1 file: 32-byte records
        let err = LedgerHeader::parse(Path::new("run/ledger.bin"), &bytes, len).expect_err("v1");
        assert!(matches!(err, LedgerError::FormatOne { supported: 2, .. }));
        let msg = err.to_string();
        assert!(
            msg.starts_with("run/ledger.bin: ledger format version 1"),
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
