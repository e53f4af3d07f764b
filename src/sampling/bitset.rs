//! A fixed-size bit set: one bit per block (10^8 blocks = 12.5 MB), for sets that must be
//! tested in O(1) without a `HashSet` of N ids.

pub(crate) struct Bitset {
    words: Vec<u64>,
    ones: usize,
}

impl Bitset {
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            ones: 0,
        }
    }

    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Sets bit `i` (ignored when out of range).
    pub fn set(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            let mask = 1u64 << (i % 64);
            if *w & mask == 0 {
                *w |= mask;
                self.ones += 1;
            }
        }
    }

    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
        self.ones = 0;
    }

    /// Number of set bits.
    pub fn ones(&self) -> usize {
        self.ones
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count() {
        let mut b = Bitset::new(130);
        b.set(0);
        b.set(129);
        b.set(129);
        b.set(500);
        assert!(b.get(0) && b.get(129) && !b.get(1) && !b.get(500));
        assert_eq!(b.ones(), 2);
        b.clear();
        assert_eq!(b.ones(), 0);
        assert!(!b.get(129));
    }
}
