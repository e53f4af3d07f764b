//! Exact dedup: a document whose normalised text hashes to a hash already seen is removed
//! (the first occurrence in input order is kept). State: one `u64` per distinct document.

use std::collections::HashSet;

use super::normalize::{hash64, normalize};

/// Seed of the exact-dedup hash (fixed, so the state is independent of the config seed).
const EXACT_SEED: u64 = 0x0065_7861_6374; // "exact"

#[derive(Default)]
pub struct ExactDedup {
    seen: HashSet<u64>,
}

impl ExactDedup {
    /// The hash a document is deduplicated by (computable in parallel).
    pub fn key(text: &str) -> u64 {
        hash64(normalize(text).as_bytes(), EXACT_SEED)
    }

    /// True if `key` is new (the document is kept); records it.
    pub fn insert(&mut self, key: u64) -> bool {
        self.seen.insert(key)
    }

    /// Distinct documents seen (the state size is about 16 bytes each, with the table's
    /// overhead).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_up_to_normalisation_are_removed() {
        let mut d = ExactDedup::default();
        assert!(d.insert(ExactDedup::key("Hello, world.")));
        assert!(!d.insert(ExactDedup::key("hello   WORLD")));
        assert!(d.insert(ExactDedup::key("hello worlds")));
        assert_eq!(d.len(), 2);
    }
}
