//! Corpus statistics used as baselines for training.

use super::TokenStore;

/// Entropy in nats/token of the empirical unigram distribution of the store's tokens: the
/// cross-entropy a context-free model (one that always predicts these frequencies) reaches
/// on this very data. A trained model's loss must end below it, or it learned no context.
/// Returns 0 for an empty store.
pub fn unigram_entropy(store: &TokenStore) -> f64 {
    // Ids are < vocab_size (checked at open), so indexing `counts` cannot go out of bounds.
    let mut counts = vec![0u64; store.vocab_size() as usize];
    store.for_each_chunk(|_, chunk| {
        for &t in chunk {
            counts[t as usize] += 1;
        }
    });
    unigram_entropy_of_counts(&counts)
}

/// Entropy in nats of the distribution proportional to `counts` (0 if all are zero).
pub fn unigram_entropy_of_counts(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    // H = -sum p ln p = ln n - (1/n) sum c ln c, which needs one log per nonzero count.
    let sum_c_ln_c: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let c = c as f64;
            c * c.ln()
        })
        .sum();
    (n.ln() - sum_c_ln_c / n).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_simple_distributions() {
        assert_eq!(unigram_entropy_of_counts(&[]), 0.0);
        assert_eq!(unigram_entropy_of_counts(&[0, 7, 0]), 0.0);
        assert!((unigram_entropy_of_counts(&[3, 3]) - 2f64.ln()).abs() < 1e-12);
        // p = (1/2, 1/4, 1/4): H = 1.5 ln 2
        let h = unigram_entropy_of_counts(&[2, 1, 1]);
        assert!((h - 1.5 * 2f64.ln()).abs() < 1e-12);
    }
}
