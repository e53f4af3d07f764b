//! MinHash signatures and banded LSH (Broder 1997; Leskovec et al., "Mining of Massive
//! Datasets", ch. 3) for near-duplicate removal.
//!
//! A document's shingles are the hashes of its normalised word n-grams. Permutation `i` maps a
//! shingle hash `x` to `a_i * x + b_i (mod 2^64)` with odd `a_i` (a bijection of u64); the
//! signature keeps the top 32 bits of the minimum per permutation. Two documents with Jaccard
//! similarity J agree in each signature position with probability ~J, so with `b` bands of `r`
//! rows they share at least one band (become a *candidate* pair) with probability
//! `1 - (1 - J^r)^b` (the S-curve, [`candidate_probability`]). Candidates are then verified by
//! the fraction of agreeing positions (the Jaccard estimate, standard error
//! `sqrt(J(1-J)/num_perm)`).
//!
//! Deterministic order: documents are offered in input order; one that verifies against a
//! *kept* earlier document is removed, otherwise it is kept and indexed. So the first document
//! of each duplicate cluster survives. State: per kept document `num_perm * 4` bytes of
//! signature plus `bands` bucket entries (~12 bytes each).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::checks::{check_range, yes};
use super::normalize::{mix64, ngram_hashes, normalize, words};

/// P(a pair with Jaccard `j` becomes a candidate) with `bands` bands of `rows` rows.
pub fn candidate_probability(j: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - j.powi(rows as i32)).powi(bands as i32)
}

/// The permutations and shingling of one configuration.
pub struct MinHasher {
    coeffs: Vec<(u64, u64)>,
    ngram: usize,
    seed: u64,
}

impl MinHasher {
    pub fn new(num_perm: usize, ngram: usize, seed: u64) -> MinHasher {
        let coeffs = (0..num_perm as u64)
            .map(|i| {
                let a = mix64(seed ^ mix64(2 * i + 1)) | 1;
                let b = mix64(seed.wrapping_add(mix64(2 * i + 2)));
                (a, b)
            })
            .collect();
        MinHasher {
            coeffs,
            ngram,
            seed,
        }
    }

    /// The signature of `text`, or `None` if it has no words.
    pub fn signature(&self, text: &str) -> Option<Vec<u32>> {
        let norm = normalize(text);
        let w: Vec<&str> = words(&norm).collect();
        let shingles = ngram_hashes(&w, self.ngram, self.seed);
        self.signature_of(&shingles)
    }

    /// The signature of a set of shingle hashes (duplicates allowed), `None` if empty.
    pub fn signature_of(&self, shingles: &[u64]) -> Option<Vec<u32>> {
        if shingles.is_empty() {
            return None;
        }
        let mut mins = vec![u64::MAX; self.coeffs.len()];
        for &x in shingles {
            for (m, &(a, b)) in mins.iter_mut().zip(&self.coeffs) {
                let v = a.wrapping_mul(x).wrapping_add(b);
                if v < *m {
                    *m = v;
                }
            }
        }
        Some(mins.into_iter().map(|m| (m >> 32) as u32).collect())
    }
}

/// Estimated Jaccard similarity: the fraction of equal signature positions.
pub fn estimate_jaccard(a: &[u32], b: &[u32]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len().max(1) as f64
}

/// The LSH index of kept documents.
pub struct LshIndex {
    bands: usize,
    rows: usize,
    threshold: f64,
    signatures: Vec<Vec<u32>>,
    buckets: HashMap<u64, Vec<u32>>,
}

impl LshIndex {
    pub fn new(cfg: &MinHashConfig) -> LshIndex {
        LshIndex {
            bands: cfg.bands,
            rows: cfg.rows,
            threshold: cfg.threshold,
            signatures: Vec::new(),
            buckets: HashMap::new(),
        }
    }

    fn band_keys(&self, sig: &[u32]) -> Vec<u64> {
        (0..self.bands)
            .map(|band| {
                let rows = &sig[band * self.rows..(band + 1) * self.rows];
                rows.iter()
                    .fold(mix64(band as u64 + 1), |h, &v| mix64(h ^ u64::from(v)))
            })
            .collect()
    }

    /// If `sig` verifies against a kept document, that document's estimated Jaccard
    /// similarity (the largest among candidates); otherwise indexes `sig` and returns `None`.
    pub fn offer(&mut self, sig: Vec<u32>) -> Option<f64> {
        let keys = self.band_keys(&sig);
        let mut best: Option<f64> = None;
        for key in &keys {
            for &id in self.buckets.get(key).into_iter().flatten() {
                let j = estimate_jaccard(&sig, &self.signatures[id as usize]);
                if j >= self.threshold && !matches!(best, Some(b) if b >= j) {
                    best = Some(j);
                }
            }
        }
        if best.is_none() {
            let id = self.signatures.len() as u32;
            self.signatures.push(sig);
            for key in keys {
                self.buckets.entry(key).or_default().push(id);
            }
        }
        best
    }

    /// Documents indexed (kept).
    pub fn len(&self) -> usize {
        self.signatures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }
}

/// MinHash + LSH near-duplicate removal over word n-gram shingles of the normalised text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinHashConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Hash functions per signature; must equal `bands * rows`. Default 128.
    #[serde(default = "default_num_perm")]
    pub num_perm: usize,
    /// LSH bands. Default 16.
    #[serde(default = "default_bands")]
    pub bands: usize,
    /// Signature rows per band. Default 8.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// Words per shingle. Default 5.
    #[serde(default = "default_shingle")]
    pub ngram: usize,
    /// A candidate pair is a duplicate when its estimated Jaccard similarity is at least
    /// this. Default 0.8.
    #[serde(default = "default_jaccard")]
    pub threshold: f64,
}

impl Default for MinHashConfig {
    fn default() -> Self {
        MinHashConfig {
            enabled: true,
            num_perm: default_num_perm(),
            bands: default_bands(),
            rows: default_rows(),
            ngram: default_shingle(),
            threshold: default_jaccard(),
        }
    }
}
fn default_num_perm() -> usize {
    128
}
fn default_bands() -> usize {
    16
}
fn default_rows() -> usize {
    8
}
fn default_shingle() -> usize {
    5
}
fn default_jaccard() -> f64 {
    0.8
}

impl MinHashConfig {
    pub fn problems(&self, p: &mut Vec<String>) {
        let m = self;
        if m.num_perm == 0 || m.bands == 0 || m.rows == 0 || m.ngram == 0 {
            p.push("minhash.num_perm, bands, rows and ngram must all be > 0".into());
        } else if m.bands * m.rows != m.num_perm {
            p.push(format!(
                "minhash.bands * minhash.rows ({} * {}) must equal minhash.num_perm ({})",
                m.bands, m.rows, m.num_perm
            ));
        }
        check_range("minhash.threshold", m.threshold, 0.0, 1.0, true, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s_curve_is_steep_around_the_threshold() {
        let p = |j| candidate_probability(j, 16, 8);
        assert!(p(0.5) < 0.07 && p(0.8) > 0.94 && p(0.9) > 0.999);
    }

    #[test]
    fn identical_texts_verify_and_distinct_ones_do_not() {
        let cfg = MinHashConfig::default();
        let h = MinHasher::new(cfg.num_perm, cfg.ngram, 7);
        let mut idx = LshIndex::new(&cfg);
        let a = "the quick brown fox jumps over the lazy dog again and again today";
        let b = "completely different words appear in this other sentence about cats";
        assert_eq!(idx.offer(h.signature(a).unwrap_or_default()), None);
        assert_eq!(idx.offer(h.signature(b).unwrap_or_default()), None);
        assert_eq!(idx.offer(h.signature(a).unwrap_or_default()), Some(1.0));
        assert_eq!(idx.len(), 2);
    }
}
