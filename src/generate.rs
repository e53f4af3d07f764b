//! Autoregressive sampling with temperature and top-k. A model with an incremental decoder (a
//! recurrent state: O(1) per token) uses it; otherwise the whole (cropped) context is recomputed
//! each token: simple and exact; a KV cache would only matter for long samples.

use candle_core::{Device, IndexOp, Tensor};

use crate::model::{LanguageModel, ModelError};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct SampleOptions {
    pub max_new_tokens: usize,
    /// > 0; lower is greedier.
    pub temperature: f64,
    /// Keep only the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Longest context fed to a model without an incremental decoder (<= its maximum
    /// context).
    pub context: usize,
}

/// Continues `prompt` (token ids, non-empty) by `max_new_tokens` tokens; returns only the new
/// tokens. Use an inference model (`BuildOptions::inference`) so no graph is recorded.
pub fn generate(
    gpt: &dyn LanguageModel,
    prompt: &[u32],
    opts: &SampleOptions,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<u32>, ModelError> {
    if let Some(mut decoder) = gpt.decoder() {
        let mut new = Vec::with_capacity(opts.max_new_tokens);
        let mut logits = decoder.feed(prompt)?;
        for i in 0..opts.max_new_tokens {
            let next = sample_logits(&logits, opts.temperature, opts.top_k, rng);
            new.push(next);
            if i + 1 < opts.max_new_tokens {
                logits = decoder.feed(&[next])?;
            }
        }
        return Ok(new);
    }
    let mut tokens = prompt.to_vec();
    for _ in 0..opts.max_new_tokens {
        let start = tokens.len().saturating_sub(opts.context);
        let window = &tokens[start..];
        let x = Tensor::new(window, device)?.unsqueeze(0)?; // [1, T]
        let logits = gpt.forward(&x)?; // [1, T, V]
        let last = logits.i((0, window.len() - 1))?.to_vec1::<f32>()?; // [V]
        tokens.push(sample_logits(&last, opts.temperature, opts.top_k, rng));
    }
    Ok(tokens[prompt.len()..].to_vec())
}

/// Draws one token id from `softmax(logits / temperature)` restricted to the top `k`.
pub fn sample_logits(logits: &[f32], temperature: f64, top_k: usize, rng: &mut Rng) -> u32 {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    if top_k > 0 && top_k < logits.len() {
        idx.select_nth_unstable_by(top_k - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
        idx.truncate(top_k);
    }
    idx.sort_unstable(); // deterministic order for the cumulative draw
    let max = idx
        .iter()
        .map(|&i| logits[i])
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut r = rng.next_f64() * total;
    for (&i, w) in idx.iter().zip(&weights) {
        r -= w;
        if r < 0.0 {
            return i as u32;
        }
    }
    *idx.last().unwrap_or(&0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top1_is_argmax_and_low_temperature_is_greedy() {
        let logits = [0.1f32, 3.0, 0.2, 2.9];
        let mut rng = Rng::new(0);
        assert!((0..50).all(|_| sample_logits(&logits, 1.0, 1, &mut rng) == 1));
        assert!((0..50).all(|_| sample_logits(&logits, 1e-3, 0, &mut rng) == 1));
        let mut seen = [0usize; 4];
        for _ in 0..2000 {
            seen[sample_logits(&logits, 1.0, 2, &mut rng) as usize] += 1;
        }
        assert_eq!(seen[0] + seen[2], 0, "top-2 never draws others");
        assert!(seen[1] > 900 && seen[3] > 700, "{seen:?}");
    }
}
