//! Source mixing: weight `w` gives `floor(w)` copies of each document of that source plus one
//! more with probability `w - floor(w)`, decided by a hash of (seed, text), so the result is
//! deterministic given the seed and the same document gets the same decision wherever it is.

use std::collections::BTreeMap;

use super::normalize::hash64;

pub struct Mixer {
    weights: BTreeMap<String, f64>,
    seed: u64,
}

impl Mixer {
    pub fn new(weights: BTreeMap<String, f64>, seed: u64) -> Mixer {
        Mixer { weights, seed }
    }

    /// The weight of `source` (1 if unlisted).
    pub fn weight(&self, source: &str) -> f64 {
        self.weights.get(source).copied().unwrap_or(1.0)
    }

    /// Copies of a document of `source` with `text` in the output (0 = dropped).
    pub fn copies(&self, source: &str, text: &str) -> u64 {
        let w = self.weight(source);
        let whole = w.floor();
        let frac = w - whole;
        // A uniform draw in [0, 1) from the top 53 bits of the hash.
        let u =
            (hash64(text.as_bytes(), self.seed ^ 0x006d_6978) >> 11) as f64 / (1u64 << 53) as f64;
        whole as u64 + u64::from(u < frac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_weights_copy_and_fractions_sample() {
        let w = BTreeMap::from([("wiki".to_string(), 2.0), ("web".to_string(), 0.25)]);
        let m = Mixer::new(w, 1);
        assert_eq!(m.copies("wiki", "a"), 2);
        assert_eq!(m.copies("other", "a"), 1);
        let kept: u64 = (0..4000)
            .map(|i| m.copies("web", &format!("doc {i}")))
            .sum();
        assert!((900..1100).contains(&kept), "{kept}");
    }
}
