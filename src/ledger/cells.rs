//! The mapped ledger file seen as atomics, and the per-record seqlock.
//!
//! Another process may write the file while we read it (and vice versa), so the mapped bytes
//! are never viewed as plain `&[u8]`/`&[BlockRecord]`: that would promise the compiler the
//! memory does not change. Instead the whole file is viewed as atomics with the exact layout
//! of the header and of [`BlockRecord`]. Relaxed atomic loads and stores of u8/u16/u32 compile
//! to ordinary moves, so this costs nothing, and it makes the seqlock below well defined
//! (the pattern of Boehm, "Can seqlocks get along with programming language memory models?",
//! MSPC 2012: relaxed data accesses bracketed by fences). This file holds the ledger's only
//! `unsafe` block: the cast from the mapping to these atomics.
//!
//! The record's checksum (`crc`, see `record.rs`) is stored inside the seqlock bracket, with
//! the fields it covers, so a copy the seqlock vouches for (even and unchanged seq) always
//! carries a matching checksum unless the file was changed behind the writer's back; the
//! callers (`verify.rs`) treat a mismatch on such a copy as corruption.

use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;

use super::header::LEDGER_HEADER_LEN;
use super::record::{BlockRecord, CHECKED_LEN, RECORD_SIZE};

// The file format is little-endian and records are used in place, so the host must be too
// (every platform syllabus targets is).
const _: () = assert!(cfg!(target_endian = "little"));

/// [`BlockRecord`] with every field atomic; same layout, field by field.
#[repr(C)]
pub(super) struct RecordCells {
    last_loss: AtomicU32,
    ema_loss: AtomicU32,
    min_loss: AtomicU32,
    first_loss: AtomicU32,
    times_trained: AtomicU32,
    last_step: AtomicU32,
    forget_events: AtomicU16,
    source: AtomicU16,
    policy_state: AtomicU8,
    flags: AtomicU8,
    seq: AtomicU16,
    crc: AtomicU32,
}

// Layout proof for the cast below: same size, no padding (offsets are contiguous and end at
// 36), and each atomic sits at the offset of the `BlockRecord` field it mirrors.
const _: () = {
    assert!(size_of::<RecordCells>() == RECORD_SIZE);
    assert!(size_of::<BlockRecord>() == RECORD_SIZE);
    assert!(align_of::<RecordCells>() == 4);
    assert!(offset_of!(RecordCells, last_loss) == offset_of!(BlockRecord, last_loss));
    assert!(offset_of!(RecordCells, ema_loss) == offset_of!(BlockRecord, ema_loss));
    assert!(offset_of!(RecordCells, min_loss) == offset_of!(BlockRecord, min_loss));
    assert!(offset_of!(RecordCells, first_loss) == offset_of!(BlockRecord, first_loss));
    assert!(offset_of!(RecordCells, times_trained) == offset_of!(BlockRecord, times_trained));
    assert!(offset_of!(RecordCells, last_step) == offset_of!(BlockRecord, last_step));
    assert!(offset_of!(RecordCells, forget_events) == offset_of!(BlockRecord, forget_events));
    assert!(offset_of!(RecordCells, source) == offset_of!(BlockRecord, source));
    assert!(offset_of!(RecordCells, policy_state) == offset_of!(BlockRecord, policy_state));
    assert!(offset_of!(RecordCells, flags) == offset_of!(BlockRecord, flags));
    assert!(offset_of!(RecordCells, seq) == offset_of!(BlockRecord, seq));
    assert!(offset_of!(RecordCells, crc) == offset_of!(BlockRecord, crc));
    assert!(offset_of!(BlockRecord, seq) == 30 && offset_of!(BlockRecord, flags) == 29);
    assert!(offset_of!(BlockRecord, seq) == CHECKED_LEN && offset_of!(BlockRecord, crc) == 32);
    // Every record starts 4-byte aligned: the header and the record size are multiples of 4.
    assert!(LEDGER_HEADER_LEN % align_of::<RecordCells>() == 0);
    assert!(RECORD_SIZE % align_of::<RecordCells>() == 0);
};

/// How long a reader waits on a record whose seqlock stays odd before deciding the writer
/// died mid-update. A live writer holds it for nanoseconds (or a scheduler quantum if it is
/// preempted), so this only fires after a crash.
const STUCK_AFTER: Duration = Duration::from_millis(200);

const HEADER_WORDS: usize = LEDGER_HEADER_LEN / 4;

/// A mapped ledger file. The mapping is a raw pointer range, dereferenced only through
/// `Mapping::view` (the one `unsafe` block).
pub(super) struct Mapping {
    map: MmapRaw,
}

impl Mapping {
    /// Wraps `map` if it can hold a header and is aligned for the atomics (mmap returns
    /// page-aligned addresses, so the check only guards against a broken platform).
    pub(super) fn new(map: MmapRaw) -> Result<Self, String> {
        if map.len() < LEDGER_HEADER_LEN {
            return Err(format!("mapping of {} bytes has no header", map.len()));
        }
        if map.as_ptr() as usize % align_of::<RecordCells>() != 0 {
            return Err("mapping is not 4-byte aligned".into());
        }
        Ok(Mapping { map })
    }

    pub(super) fn raw(&self) -> &MmapRaw {
        &self.map
    }

    /// The header as 16 little-endian u32 words, and every whole record after it.
    fn view(&self) -> (&[AtomicU32; HEADER_WORDS], &[RecordCells]) {
        let n = (self.map.len() - LEDGER_HEADER_LEN) / RECORD_SIZE;
        let base = self.map.as_mut_ptr();
        // SAFETY:
        // - Bounds: the mapping is `map.len()` bytes (>= 64, checked in `new`); the header view
        //   covers bytes 0..64 and the records `n` whole 36-byte records after it, all inside.
        // - Layout: `RecordCells` is `repr(C)`, 36 bytes, no padding, each atomic at the offset
        //   of the `BlockRecord` field it mirrors (asserted at compile time above), so the file
        //   body is exactly an array of them. Every bit pattern is a valid integer, and floats
        //   are stored as their bits, so any file content is a valid value.
        // - Alignment: the mapping starts 4-byte aligned (checked in `new`; mmap returns
        //   page-aligned addresses), the header is 64 bytes and a record 36 (both asserted
        //   multiples of 4 above), so every record and header word is 4-byte aligned, the
        //   largest alignment involved.
        // - Aliasing: we only create shared references to atomics (interior mutability), never
        //   `&`/`&mut` to plain bytes, so concurrent writes by this or another process are
        //   allowed. The pointer comes from `MmapRaw::as_mut_ptr`, which carries write
        //   permission. On a read-only mapping (`LedgerReader`) only `Relaxed` loads of at
        //   most 4 bytes are performed, which std::sync::atomic ("Atomic accesses to
        //   read-only memory") guarantees to work on read-only memory; ordering comes from
        //   separate fences.
        // - Lifetime: the returned references borrow `self`, which owns the mapping.
        unsafe {
            let header = &*(base as *const [AtomicU32; HEADER_WORDS]);
            let records =
                std::slice::from_raw_parts(base.add(LEDGER_HEADER_LEN) as *const RecordCells, n);
            (header, records)
        }
    }

    pub(super) fn records(&self) -> &[RecordCells] {
        self.view().1
    }

    /// A copy of the header bytes (a plain snapshot: callers check its CRC).
    pub(super) fn header_bytes(&self) -> [u8; LEDGER_HEADER_LEN] {
        let mut out = [0u8; LEDGER_HEADER_LEN];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.view().0.iter()) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        out
    }

    /// Overwrites the header (writer only). A reader that copies it meanwhile sees a CRC
    /// mismatch and retries.
    pub(super) fn store_header(&self, bytes: &[u8; LEDGER_HEADER_LEN]) {
        for (chunk, word) in bytes.chunks_exact(4).zip(self.view().0.iter()) {
            let mut w = [0u8; 4];
            w.copy_from_slice(chunk);
            word.store(u32::from_le_bytes(w), Ordering::Relaxed);
        }
    }
}

impl RecordCells {
    /// The fields as they are now, without the seqlock: only for the single writer, which
    /// cannot race with itself.
    pub(super) fn load_own(&self) -> BlockRecord {
        self.load_fields(self.seq.load(Ordering::Relaxed))
    }

    fn load_fields(&self, seq: u16) -> BlockRecord {
        let r = Ordering::Relaxed;
        BlockRecord {
            last_loss: f32::from_bits(self.last_loss.load(r)),
            ema_loss: f32::from_bits(self.ema_loss.load(r)),
            min_loss: f32::from_bits(self.min_loss.load(r)),
            first_loss: f32::from_bits(self.first_loss.load(r)),
            times_trained: self.times_trained.load(r),
            last_step: self.last_step.load(r),
            forget_events: self.forget_events.load(r),
            source: self.source.load(r),
            policy_state: self.policy_state.load(r),
            flags: self.flags.load(r),
            seq,
            crc: self.crc.load(r),
        }
    }

    /// Seqlock write (single writer) of block `id`: seq becomes odd, the fields and their
    /// checksum change, seq becomes even. `rec.seq` and `rec.crc` are ignored: the checksum is
    /// computed here from the fields (before the bracket opens, to keep the odd window short)
    /// and stored inside the bracket. A seq left odd by a crashed writer is completed, not
    /// skipped.
    pub(super) fn store(&self, id: usize, rec: &BlockRecord) {
        let crc = rec.checksum(id as u64);
        let r = Ordering::Relaxed;
        let odd = self.seq.load(r) | 1;
        self.seq.store(odd, r);
        // Release fence: a reader that observes any of the field stores below also observes
        // the odd seq (fence-to-fence synchronisation with the reader's acquire fence).
        fence(Ordering::Release);
        self.last_loss.store(rec.last_loss.to_bits(), r);
        self.ema_loss.store(rec.ema_loss.to_bits(), r);
        self.min_loss.store(rec.min_loss.to_bits(), r);
        self.first_loss.store(rec.first_loss.to_bits(), r);
        self.times_trained.store(rec.times_trained, r);
        self.last_step.store(rec.last_step, r);
        self.forget_events.store(rec.forget_events, r);
        self.source.store(rec.source, r);
        self.policy_state.store(rec.policy_state, r);
        self.flags.store(rec.flags, r);
        self.crc.store(crc, r);
        // Release: the field and checksum stores happen-before a reader that sees the even seq
        // (its relaxed load is followed by an acquire fence).
        self.seq.store(odd.wrapping_add(1), Ordering::Release);
    }

    /// Seqlock read: retries until the same even seq was seen before and after copying, so
    /// the copy is one whole record. u16 wrap-around would need a reader stalled across
    /// exactly 32768 updates of this one record between two loads; we accept that.
    ///
    /// If the seq stays odd and unchanged for [`STUCK_AFTER`], the writer died mid-update;
    /// the fields are returned as found (possibly torn, with the odd seq) rather than hanging
    /// the reader. The returned `seq` is even exactly when the copy is whole.
    pub(super) fn load_consistent(&self) -> BlockRecord {
        let mut spins = 0u32;
        let mut stuck: Option<(u16, Instant)> = None;
        loop {
            // Relaxed load + acquire fence = an acquire load; written this way because only
            // relaxed loads are guaranteed to work on a read-only mapping (see `view`).
            let s1 = self.seq.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s1 & 1 == 0 {
                let rec = self.load_fields(s1);
                // Acquire fence: if any field load saw a newer writer's store, the seq load
                // below sees that writer's odd seq (or later), and we retry.
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s1 {
                    return rec;
                }
            } else if let Some(rec) = self.give_up_if_stuck(s1, &mut stuck, spins) {
                return rec;
            }
            spins = spins.saturating_add(1);
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn give_up_if_stuck(
        &self,
        odd: u16,
        stuck: &mut Option<(u16, Instant)>,
        spins: u32,
    ) -> Option<BlockRecord> {
        if spins < 1024 {
            return None; // checking the clock on every spin would slow the common case
        }
        match *stuck {
            Some((s, since)) if s == odd => {
                (since.elapsed() >= STUCK_AFTER).then(|| self.load_fields(odd))
            }
            _ => {
                *stuck = Some((odd, Instant::now()));
                None
            }
        }
    }
}
