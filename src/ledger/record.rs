//! One ledger row per block: plain data, 32 bytes, `#[repr(C)]` so the memory-mapped file is
//! an array of these (10^8 blocks = 3.2 GB).

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
}

/// `last_step` of a block never trained.
pub const NEVER: u32 = u32::MAX;
pub const RECORD_SIZE: usize = std::mem::size_of::<BlockRecord>();
const _: () = assert!(RECORD_SIZE == 32);

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

    /// The record as stored in `ledger.bin`: its 32 little-endian bytes in field order (the
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
    fn record(&self, id: usize) -> BlockRecord;
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
        };
        let b = rec.to_bytes();
        assert_eq!(&b[0..4], &1.5f32.to_le_bytes());
        assert_eq!(&b[12..16], &3.5f32.to_le_bytes());
        assert_eq!(&b[16..20], &7u32.to_le_bytes());
        assert_eq!(&b[24..28], &[2, 0, 4, 0]);
        assert_eq!(&b[28..32], &[1, 0x51, 6, 0]);
        assert_eq!(rec.leitner_box(), 5);
    }
}
