//! Text normalisation and the hashes every dedup stage shares.
//!
//! Normalisation (exact dedup, MinHash shingles and Bloom n-grams all see this form):
//! 1. Unicode lowercase;
//! 2. every character that is neither alphanumeric nor whitespace (punctuation, symbols,
//!    emoji) is dropped;
//! 3. runs of whitespace (spaces, tabs, newlines) become one space; leading and trailing
//!    whitespace is removed.
//!
//! So `"Hello,  World!\n"` and `"hello world"` normalise to the same text, while a change of
//! any letter or digit does not. The hashes are our own (not `std`'s, whose algorithm may change
//! between Rust releases) so that results are identical across builds.

/// The normalised form of `text` (see the module docs).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_alphanumeric() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The words of a normalised text (or of any text: split on whitespace).
pub fn words(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.split_whitespace()
}

/// SplitMix64's finaliser: a bijective 64-bit mix with full avalanche.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A seeded 64-bit hash of `bytes`: 8-byte words folded with multiply-rotate, length mixed in,
/// finalised with [`mix64`]. Not cryptographic; collisions among n texts occur with
/// probability about n^2 / 2^65.
pub fn hash64(bytes: &[u8], seed: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = mix64(seed ^ K) ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(w) ^ 0xff)
            .wrapping_mul(K)
            .rotate_left(29);
    }
    mix64(h)
}

/// Hashes of the word n-grams of `words` (windows of `n`, joined by one space); a text with
/// fewer than `n` words (but at least one) yields one hash of all its words, as BFF does.
pub fn ngram_hashes(words: &[&str], n: usize, seed: u64) -> Vec<u64> {
    if words.is_empty() {
        return Vec::new();
    }
    // Per-word hashes combined positionally: cheaper than re-hashing the joined text.
    let word_hashes: Vec<u64> = words.iter().map(|w| hash64(w.as_bytes(), seed)).collect();
    let n = n.min(words.len()).max(1);
    word_hashes
        .windows(n)
        .map(|win| {
            win.iter()
                .fold(n as u64, |acc, &h| mix64(acc.rotate_left(17) ^ h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_lowercases_strips_punctuation_and_collapses_space() {
        assert_eq!(
            normalize("  Hello,  World!\n\tIt's 2024. "),
            "hello world its 2024"
        );
        assert_eq!(normalize("Ünïcode—DASH"), "ünïcodedash");
        assert_eq!(normalize("...!!!"), "");
    }

    #[test]
    fn hashes_are_stable_and_seeded() {
        assert_eq!(hash64(b"abc", 1), hash64(b"abc", 1));
        assert_ne!(hash64(b"abc", 1), hash64(b"abc", 2));
        assert_ne!(hash64(b"abcdefgh", 0), hash64(b"abcdefgh\0", 0));
        let w = ["a", "b", "c"];
        assert_eq!(ngram_hashes(&w, 2, 0).len(), 2);
        assert_eq!(ngram_hashes(&w, 13, 0).len(), 1);
        assert_ne!(
            ngram_hashes(&["a", "b"], 2, 0),
            ngram_hashes(&["b", "a"], 2, 0)
        );
    }
}
