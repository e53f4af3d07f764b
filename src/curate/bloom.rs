//! A Bloom filter and BFF-style n-gram dedup (DCLM's final dedup: Li et al. 2024, §3 and
//! appendix; the `bff` tool of Groeneveld et al.), "old-both" mode.
//!
//! For each document, before any of its n-grams are inserted:
//! - document level: if at least `threshold` of its n-grams are already in the filter, the
//!   whole document is removed;
//! - paragraph level (paragraphs = lines): otherwise every paragraph with at least
//!   `threshold` of its n-grams already in the filter is removed; if none remains the document
//!   is removed.
//!
//! Then all of the document's n-grams are inserted. A paragraph shorter than `ngram` words
//! counts as one n-gram of all its words (as BFF does). False positives only ever remove text;
//! with `k` hash functions and fill fraction `f` the per-n-gram false-positive rate is `f^k`.
//! State: the filter's bits, fixed at construction.

use serde::{Deserialize, Serialize};

use super::checks::{check_range, yes};
use super::normalize::{mix64, ngram_hashes, normalize, words};

/// Seed of the n-gram hashes (fixed: the filter's content is independent of the config seed).
const BLOOM_SEED: u64 = 0x0062_6c6f_6f6d; // "bloom"

pub struct BloomFilter {
    bits: Vec<u64>,
    num_bits: u64,
    k: u32,
}

impl BloomFilter {
    /// Sized for `expected` insertions at false-positive rate `fp`: `m = -n ln(fp) / ln(2)^2`
    /// bits and `k = round(m/n * ln 2)` hash functions.
    pub fn new(expected: u64, fp: f64) -> BloomFilter {
        let ln2 = std::f64::consts::LN_2;
        let m = (-(expected.max(1) as f64) * fp.ln() / (ln2 * ln2))
            .ceil()
            .max(64.0) as u64;
        let k = ((m as f64 / expected.max(1) as f64) * ln2)
            .round()
            .clamp(1.0, 30.0) as u32;
        BloomFilter {
            bits: vec![0; m.div_ceil(64) as usize],
            num_bits: m,
            k,
        }
    }

    /// Bit `i` of the `k` positions by double hashing (Kirsch & Mitzenmacher 2006):
    /// `h1 + i * h2 mod m`, both halves derived from one 64-bit hash.
    fn positions(&self, hash: u64) -> impl Iterator<Item = u64> + '_ {
        let h1 = hash;
        let h2 = mix64(hash) | 1;
        (0..u64::from(self.k)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % self.num_bits)
    }

    pub fn contains(&self, hash: u64) -> bool {
        self.positions(hash)
            .all(|b| self.bits[(b / 64) as usize] & (1 << (b % 64)) != 0)
    }

    pub fn insert(&mut self, hash: u64) {
        let positions: Vec<u64> = self.positions(hash).collect();
        for b in positions {
            self.bits[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    /// Bytes of state.
    pub fn memory_bytes(&self) -> usize {
        self.bits.len() * 8
    }

    pub fn hash_functions(&self) -> u32 {
        self.k
    }

    /// Fraction of bits set.
    pub fn fill(&self) -> f64 {
        let ones: u64 = self.bits.iter().map(|w| u64::from(w.count_ones())).sum();
        ones as f64 / self.num_bits as f64
    }

    /// The false-positive rate at the current fill, `fill^k`.
    pub fn current_fp_rate(&self) -> f64 {
        self.fill().powi(self.k as i32)
    }
}

/// What BFF decided for one document.
#[derive(Debug, PartialEq)]
pub enum BffDecision {
    /// Nothing already seen.
    Keep,
    /// Remove these line indices (some lines remain).
    RemoveLines(Vec<usize>),
    /// Remove the document (too much seen, or every line removed).
    Drop,
}

/// The n-gram hashes of one document, per line (computable in parallel).
pub fn line_ngrams(text: &str, n: usize) -> Vec<Vec<u64>> {
    text.split('\n')
        .map(|line| {
            let norm = normalize(line);
            let w: Vec<&str> = words(&norm).collect();
            ngram_hashes(&w, n, BLOOM_SEED)
        })
        .collect()
}

pub struct Bff {
    filter: BloomFilter,
    threshold: f64,
    pub ngram: usize,
}

impl Bff {
    pub fn new(cfg: &BloomConfig) -> Bff {
        Bff {
            filter: BloomFilter::new(cfg.expected_ngrams, cfg.fp_rate),
            threshold: cfg.threshold,
            ngram: cfg.ngram,
        }
    }

    pub fn filter(&self) -> &BloomFilter {
        &self.filter
    }

    /// Decides for a document given its per-line n-gram hashes, then inserts them.
    pub fn offer(&mut self, lines: &[Vec<u64>]) -> BffDecision {
        let seen: Vec<usize> = lines
            .iter()
            .map(|l| l.iter().filter(|&&h| self.filter.contains(h)).count())
            .collect();
        let total: usize = lines.iter().map(Vec::len).sum();
        let total_seen: usize = seen.iter().sum();
        let at_least = |s: usize, n: usize| n > 0 && s as f64 >= self.threshold * n as f64;
        let decision = if at_least(total_seen, total) {
            BffDecision::Drop
        } else {
            let removed: Vec<usize> = (0..lines.len())
                .filter(|&i| at_least(seen[i], lines[i].len()))
                .collect();
            let with_words = lines.iter().filter(|l| !l.is_empty()).count();
            if removed.is_empty() {
                BffDecision::Keep
            } else if removed.len() == with_words {
                BffDecision::Drop
            } else {
                BffDecision::RemoveLines(removed)
            }
        };
        for h in lines.iter().flatten() {
            self.filter.insert(*h);
        }
        decision
    }
}

/// BFF-style Bloom-filter n-gram dedup (DCLM's final dedup), "old-both" mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BloomConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Words per n-gram. Default 13 (DCLM).
    #[serde(default = "default_bloom_ngram")]
    pub ngram: usize,
    /// Target false-positive rate at `expected_ngrams` insertions. Default 0.01.
    #[serde(default = "default_fp")]
    pub fp_rate: f64,
    /// N-grams the filter is sized for; its memory is about
    /// `-expected_ngrams * ln(fp_rate) / ln(2)^2` bits. Default 50,000,000 (~60 MB at 1%).
    #[serde(default = "default_expected")]
    pub expected_ngrams: u64,
    /// A paragraph (or document) whose fraction of already-seen n-grams is at least this is
    /// removed. Default 0.8 (DCLM).
    #[serde(default = "default_bloom_threshold")]
    pub threshold: f64,
}

impl Default for BloomConfig {
    fn default() -> Self {
        BloomConfig {
            enabled: true,
            ngram: default_bloom_ngram(),
            fp_rate: default_fp(),
            expected_ngrams: default_expected(),
            threshold: default_bloom_threshold(),
        }
    }
}
fn default_bloom_ngram() -> usize {
    13
}
fn default_fp() -> f64 {
    0.01
}
fn default_expected() -> u64 {
    50_000_000
}
fn default_bloom_threshold() -> f64 {
    0.8
}

impl BloomConfig {
    pub fn problems(&self, p: &mut Vec<String>) {
        let b = self;
        if b.ngram == 0 {
            p.push("bloom.ngram must be > 0".into());
        }
        if b.expected_ngrams == 0 {
            p.push("bloom.expected_ngrams must be > 0".into());
        }
        if !(b.fp_rate > 0.0 && b.fp_rate < 0.5) {
            p.push(format!(
                "bloom.fp_rate must be in (0, 0.5), got {}",
                b.fp_rate
            ));
        }
        check_range("bloom.threshold", b.threshold, 0.0, 1.0, true, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizing_follows_the_formula() {
        let f = BloomFilter::new(1_000_000, 0.01);
        // m = 9.585 bits per element, k = 7.
        assert_eq!(f.hash_functions(), 7);
        assert!((f.memory_bytes() as f64 - 1_198_132.0).abs() < 100.0);
    }

    #[test]
    fn old_both_removes_seen_paragraphs_then_documents() {
        let cfg = BloomConfig {
            ngram: 3,
            ..BloomConfig::default()
        };
        let mut bff = Bff::new(&cfg);
        let p1 = "alpha beta gamma delta epsilon zeta";
        let p2 = "one two three four five six seven";
        let first = line_ngrams(&format!("{p1}\n{p2}"), 3);
        assert_eq!(bff.offer(&first), BffDecision::Keep);
        let later = line_ngrams(
            &format!("new words here and there\n{p2}\nmore fresh text now"),
            3,
        );
        assert_eq!(bff.offer(&later), BffDecision::RemoveLines(vec![1]));
        assert_eq!(bff.offer(&first), BffDecision::Drop);
    }
}
