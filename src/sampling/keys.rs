//! Sort keys packed into integers: an order-preserving float encoding next to the block id, so
//! ranking N blocks is one `sort_unstable`/`select_nth_unstable` over plain integers (8 bytes per
//! block for f32 scores) with a deterministic tie-break by id.

use std::hash::Hasher;

/// Maps an `f32` to a `u32` with the same total order (-inf < finite < +inf; NaN is mapped by
/// the caller before packing).
pub(crate) fn ord_f32(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | (1 << 31)
    }
}

/// Maps an `f64` to a `u64` with the same total order.
pub(crate) fn ord_f64(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Ascending by score, then by id. NaN (never seen) counts as +inf: the hardest block.
pub(crate) fn score_then_id(score: f32, id: u32) -> u64 {
    let s = if score.is_nan() { f32::INFINITY } else { score };
    ((ord_f32(s) as u64) << 32) | id as u64
}

/// Descending by score, then ascending by id, as an ascending integer order.
pub(crate) fn score_desc_then_id(score: f32, id: u32) -> u64 {
    let s = if score.is_nan() { f32::INFINITY } else { score };
    ((!ord_f32(s) as u64) << 32) | id as u64
}

/// The id packed in the low 32 bits.
pub(crate) fn id_of(key: u64) -> u32 {
    key as u32
}

/// Fibonacci hashing of `u32` ids: fast and deterministic (no random state).
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.0 = (self.0 ^ x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_preserves_order_and_breaks_ties_by_id() {
        let xs = [
            f32::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-30,
            2.0,
            7.5,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(ord_f32(w[0]) <= ord_f32(w[1]), "{w:?}");
            assert!(ord_f64(w[0] as f64) <= ord_f64(w[1] as f64));
        }
        assert!(score_then_id(1.0, 5) < score_then_id(1.0, 6));
        assert!(score_then_id(1.0, 9) < score_then_id(2.0, 0));
        assert!(score_then_id(f32::NAN, 0) > score_then_id(1e30, 9));
        assert!(score_desc_then_id(2.0, 9) < score_desc_then_id(1.0, 0));
        assert!(score_desc_then_id(1.0, 1) < score_desc_then_id(1.0, 2));
        assert_eq!(id_of(score_then_id(3.0, 77)), 77);
    }
}
