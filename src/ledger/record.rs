//! One ledger row per block: plain data, 36 bytes, `#[repr(C)]` so the memory-mapped file is
//! an array of these (10^8 blocks = 3.6 GB).
//!
//! # Checksum
//!
//! `crc` is the CRC32 (IEEE polynomial, as computed by `crc32fast`) of the block id as a
//! little-endian u64 followed by record bytes 0..30, i.e. every field except `seq` and `crc`
//! itself ([`BlockRecord::checksum`]). The seqlock counter is left out because it carries no
//! data: it changes twice per update, and a changed value at most makes a reader wait (see
//! `cells.rs`). The block id is included so that a whole record copied or moved into another
//! block's slot fails its check too.

use super::LedgerError;

/// Per-block training history. Losses are mean next-token NLL (nats) of the block as seen by
/// the training forward pass at the step it was trained.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockRecord {
    /// Loss the last time the block was trained (NaN = never).
    pub last_loss: f32,
    /// Exponential moving average of the block's losses (NaN = never).
    pub ema_loss: f32,
    /// Running minimum of the loss since the last forgetting event (NaN = never).
    pub min_loss: f32,
    /// Loss at first sight (NaN = never).
    pub first_loss: f32,
    /// Times the block was in a training batch.
    pub times_trained: u32,
    /// Optimizer step at which it was last trained (`NEVER` = never).
    pub last_step: u32,
    /// Forgetting events: the loss rose by more than the tolerance above its running minimum
    /// after having fallen (LFR, arXiv 2409.06131 v1: "forgotten" blocks).
    pub forget_events: u16,
    /// Corpus source id (index into the prepared manifest's `sources`).
    pub source: u16,
    /// Policy-defined state (e.g. LFR: 0 active, 1 dropped).
    pub policy_state: u8,
    /// Bit 0: the loss has fallen since the last forgetting event. Bits 4-7: Leitner box.
    pub flags: u8,
    /// Seqlock counter: odd while the writer is changing the record, so a reader in another
    /// process can retry instead of seeing a torn record.
    pub seq: u16,
    /// [`BlockRecord::checksum`] of the record, written by the ledger with every update.
    pub crc: u32,
}

/// `last_step` of a block never trained.
pub const NEVER: u32 = u32::MAX;
pub const RECORD_SIZE: usize = std::mem::size_of::<BlockRecord>();
const _: () = assert!(RECORD_SIZE == 36);
/// Record bytes covered by the checksum: every field before `seq` (offset 30).
pub(super) const CHECKED_LEN: usize = 30;

impl BlockRecord {
    /// A never-trained block from `source`.
    pub fn unseen(source: u16) -> Self {
        Self {
            last_loss: f32::NAN,
            ema_loss: f32::NAN,
            min_loss: f32::NAN,
            first_loss: f32::NAN,
            last_step: NEVER,
            source,
            ..Self::default()
        }
    }

    pub fn seen(&self) -> bool {
        self.times_trained > 0
    }

    pub fn leitner_box(&self) -> u8 {
        self.flags >> 4
    }

    pub fn set_leitner_box(&mut self, b: u8) {
        self.flags = (self.flags & 0x0F) | (b.min(15) << 4);
    }

    /// The record's checksum as block `id` (see the module docs): what `crc` must hold.
    pub fn checksum(&self, id: u64) -> u32 {
        let mut covered = [0u8; 8 + CHECKED_LEN];
        covered[..8].copy_from_slice(&id.to_le_bytes());
        covered[8..].copy_from_slice(&self.to_bytes()[..CHECKED_LEN]);
        crc32fast::hash(&covered)
    }

    /// The record with `crc` set for block `id`.
    pub fn with_checksum(mut self, id: u64) -> Self {
        self.crc = self.checksum(id);
        self
    }

    /// Whether `crc` matches the other fields for block `id`.
    pub fn checksum_ok(&self, id: u64) -> bool {
        self.crc == self.checksum(id)
    }

    /// The record as stored in `ledger.bin`: its 36 little-endian bytes in field order (the
    /// `repr(C)` layout). Also the way to compare records bit for bit: `==` follows float
    /// semantics, under which the NaN losses of an unseen block never compare equal.
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        let fields: [&[u8]; 4] = [
            &self.last_loss.to_le_bytes(),
            &self.ema_loss.to_le_bytes(),
            &self.min_loss.to_le_bytes(),
            &self.first_loss.to_le_bytes(),
        ];
        for (i, f) in fields.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(f);
        }
        b[16..20].copy_from_slice(&self.times_trained.to_le_bytes());
        b[20..24].copy_from_slice(&self.last_step.to_le_bytes());
        b[24..26].copy_from_slice(&self.forget_events.to_le_bytes());
        b[26..28].copy_from_slice(&self.source.to_le_bytes());
        b[28] = self.policy_state;
        b[29] = self.flags;
        b[30..32].copy_from_slice(&self.seq.to_le_bytes());
        b[32..36].copy_from_slice(&self.crc.to_le_bytes());
        b
    }
}

/// Read access to ledger rows, implemented by the memory-mapped ledger and by in-memory
/// ledgers (tests, benchmarks, custom policies).
pub trait LedgerRead {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Record `id`. Not checked against its checksum: the mapped ledgers verified every record
    /// when they were opened (see the module docs of `ledger`). Panics if `id` is out of
    /// range, like slice indexing.
    fn record(&self, id: usize) -> BlockRecord;
    /// Record `id`, checked against its checksum where the ledger stores one (the mapped
    /// ledgers); a mismatch is an error naming the file and the block. For whole-ledger
    /// scans, which must not summarise damaged records. The default, for in-memory ledgers
    /// (nothing to check), is [`LedgerRead::record`]. Panics if `id` is out of range.
    fn checked_record(&self, id: usize) -> Result<BlockRecord, LedgerError> {
        Ok(self.record(id))
    }
    /// Block ids by corpus source: entry `s` lists source `s`'s blocks in ascending order
    /// (empty for a source id with no blocks). One pass over the ledger.
    fn blocks_by_source(&self) -> Vec<Vec<u32>> {
        let mut lists: Vec<Vec<u32>> = Vec::new();
        for id in 0..self.len() {
            let source = self.record(id).source as usize;
            if lists.len() <= source {
                lists.resize(source + 1, Vec::new());
            }
            lists[source].push(id as u32);
        }
        lists
    }
}

/// An in-memory ledger.
impl LedgerRead for Vec<BlockRecord> {
    fn len(&self) -> usize {
        <[BlockRecord]>::len(self)
    }
    fn record(&self, id: usize) -> BlockRecord {
        self[id]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_bytes_follows_the_field_layout() {
        let rec = BlockRecord {
            last_loss: 1.5,
            ema_loss: 2.5,
            min_loss: 0.5,
            first_loss: 3.5,
            times_trained: 7,
            last_step: 9,
            forget_events: 2,
            source: 4,
            policy_state: 1,
            flags: 0x51,
            seq: 6,
            crc: 0xA1B2_C3D4,
        };
        let b = rec.to_bytes();
        assert_eq!(&b[0..4], &1.5f32.to_le_bytes());
        assert_eq!(&b[12..16], &3.5f32.to_le_bytes());
        assert_eq!(&b[16..20], &7u32.to_le_bytes());
        assert_eq!(&b[24..28], &[2, 0, 4, 0]);
        assert_eq!(&b[28..32], &[1, 0x51, 6, 0]);
        assert_eq!(&b[32..36], &[0xD4, 0xC3, 0xB2, 0xA1]);
        assert_eq!(rec.leitner_box(), 5);
    }

    #[test]
    fn checksum_covers_the_id_and_every_field_but_seq_and_crc() {
        let rec = BlockRecord {
            last_loss: 1.5,
            times_trained: 7,
            ..BlockRecord::unseen(3)
        }
        .with_checksum(17);
        assert!(rec.checksum_ok(17));
        assert!(
            !rec.checksum_ok(18),
            "a record moved to another block fails"
        );
        let mut covered = 17u64.to_le_bytes().to_vec();
        covered.extend_from_slice(&rec.to_bytes()[..CHECKED_LEN]);
        assert_eq!(rec.crc, crc32fast::hash(&covered));
        let other_seq = BlockRecord { seq: 9, ..rec };
        assert!(other_seq.checksum_ok(17), "seq is not covered");
        let changed = [
            BlockRecord {
                ema_loss: 2.0,
                ..rec
            },
            BlockRecord {
                last_step: 4,
                ..rec
            },
            BlockRecord { source: 2, ..rec },
            BlockRecord { flags: 1, ..rec },
            BlockRecord {
                crc: rec.crc ^ 1,
                ..rec
            },
        ];
        for c in changed {
            assert!(!c.checksum_ok(17), "{c:?}");
        }
    }
}
