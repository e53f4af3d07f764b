//! Normalised perplexity of a token stream (Languini Kitchen, arXiv 2309.11197):
//! exp(total NLL / length of the scored text), which compares models with
//! different tokenizers.
//!
//! Sliding window: windows of `W` input tokens (the model context) advance by `stride` and score
//! only their last `stride` targets, so every scored token sees at least `W - stride` tokens of
//! context; the first window scores all of its targets. Every target (token 1 to N - 1) is scored
//! exactly once. Languini's GPT README uses W = 512, stride 128; the default stride here is W / 4.
//!
//! Units: the normalising length is the UTF-8 byte count of the scored targets' text (Languini's
//! code counts characters; both are reported). `<|endoftext|>` targets (document boundaries in
//! the prepared validation split) are scored and count as one byte and one character: the
//! separator between documents, as a newline separates lines.

use std::time::Instant;

use serde::Serialize;

use super::scorer::{score_all, Request, Scorer};
use super::EvalError;
use crate::data::Tokenizer;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerplexityReport {
    /// `wikitext2` or `val`.
    pub set: String,
    /// Targets scored (stream length - 1).
    pub tokens: usize,
    /// UTF-8 bytes of the scored text.
    pub bytes: usize,
    /// Characters of the scored text.
    pub chars: usize,
    /// Total negative log-likelihood, nats.
    pub nll: f64,
    /// exp(nll / bytes): Languini's normalised perplexity, per byte.
    pub norm_ppl: f64,
    /// exp(nll / chars): the same per character, as Languini's `eval.py` counts.
    pub norm_ppl_chars: f64,
    /// nll / bytes / ln 2.
    pub bits_per_byte: f64,
    /// exp(nll / tokens): tokenizer-dependent token perplexity.
    pub token_ppl: f64,
    /// Input tokens per window.
    pub window: usize,
    pub stride: usize,
    pub windows: usize,
    pub seconds: f64,
}

/// The windows of a sliding-window evaluation of `tokens` as scoring requests: the continuation
/// of each is the targets it scores, its context the tokens before them (up to `window + 1`
/// tokens in all, so the model reads at most `window`).
pub fn sliding_window_requests(
    tokens: &[u32],
    window: usize,
    stride: usize,
) -> Result<Vec<Request>, EvalError> {
    if stride == 0 || stride > window {
        return Err(EvalError::Invalid(format!(
            "sliding-window stride must be in 1..={window} (the window), got {stride}"
        )));
    }
    if tokens.len() < 2 {
        return Err(EvalError::Invalid(format!(
            "a perplexity stream needs at least 2 tokens, got {}",
            tokens.len()
        )));
    }
    let n = tokens.len();
    let mut out = Vec::with_capacity(n / stride + 1);
    let (mut start, mut end) = (1, n.min(window + 1)); // targets [start, end)
    loop {
        let first = end.saturating_sub(window + 1);
        out.push(Request::new(
            tokens[first..start].to_vec(),
            tokens[start..end].to_vec(),
        ));
        if end == n {
            return Ok(out);
        }
        (start, end) = (end, n.min(end + stride));
    }
}

/// (bytes, chars) of the text that `targets` decode to, the document separator counting 1
/// each.
pub fn text_length(tok: &Tokenizer, targets: &[u32]) -> Result<(usize, usize), EvalError> {
    let sep = tok.eot_token();
    let eot = targets.iter().filter(|&&t| t == sep).count();
    let text: Vec<u32> = targets.iter().copied().filter(|&t| t != sep).collect();
    let bytes = tok.decode_bytes(&text)?;
    // Documents end on character boundaries; only a stream cut mid-character (its first token)
    // can leave a partial character, counted as one U+FFFD.
    let chars = String::from_utf8_lossy(&bytes).chars().count();
    Ok((bytes.len() + eot, chars + eot))
}

/// Scores `tokens` with sliding windows of the scorer's context and `stride`.
pub fn evaluate_stream(
    set: &str,
    tokens: &[u32],
    scorer: &dyn Scorer,
    tok: &Tokenizer,
    stride: usize,
    batch_size: usize,
) -> Result<PerplexityReport, EvalError> {
    let t0 = Instant::now();
    let window = scorer.max_input_len();
    let requests = sliding_window_requests(tokens, window, stride)?;
    let scores = score_all(scorer, &requests, batch_size)?;
    let nll = -scores.iter().map(|s| s.logprob).sum::<f64>();
    let n = scores.iter().map(|s| s.tokens).sum::<usize>();
    let (bytes, chars) = text_length(tok, &tokens[1..])?;
    Ok(PerplexityReport {
        set: set.to_string(),
        tokens: n,
        bytes,
        chars,
        nll,
        norm_ppl: (nll / bytes.max(1) as f64).exp(),
        norm_ppl_chars: (nll / chars.max(1) as f64).exp(),
        bits_per_byte: nll / bytes.max(1) as f64 / std::f64::consts::LN_2,
        token_ppl: (nll / n.max(1) as f64).exp(),
        window,
        stride,
        windows: requests.len(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_scored_once_with_bounded_input() -> Result<(), EvalError> {
        for (n, window, stride) in [(2, 4, 1), (5, 4, 4), (23, 8, 2), (100, 16, 4), (17, 16, 5)] {
            let tokens: Vec<u32> = (0..n as u32).collect();
            let reqs = sliding_window_requests(&tokens, window, stride)?;
            let scored: Vec<u32> = reqs.iter().flat_map(|r| r.continuation.clone()).collect();
            assert_eq!(
                scored,
                (1..n as u32).collect::<Vec<_>>(),
                "{n} {window} {stride}"
            );
            // The first window scores all its targets, later ones at most `stride`.
            assert_eq!(reqs[0].context, vec![0]);
            assert_eq!(reqs[0].continuation.len(), (n - 1).min(window));
            for r in &reqs[1..] {
                assert!(r.continuation.len() <= stride);
                assert_eq!(r.input_len(), window, "later windows use the full context");
                // The context is exactly the tokens before the first target.
                let first = r.continuation[0];
                assert_eq!(*r.context.last().expect("context"), first - 1);
            }
        }
        Ok(())
    }

    #[test]
    fn rejects_bad_stride_and_short_streams() {
        assert!(sliding_window_requests(&[1, 2, 3], 4, 0).is_err());
        assert!(sliding_window_requests(&[1, 2, 3], 4, 5).is_err());
        assert!(sliding_window_requests(&[1], 4, 2).is_err());
    }

    #[test]
    fn text_length_counts_bytes_chars_and_document_breaks() -> Result<(), EvalError> {
        let tok = Tokenizer::gpt2()?;
        let mut ids = tok.encode("café")?;
        ids.push(tok.eot_token());
        ids.extend(tok.encode(" 東京")?);
        // "café" 5 bytes / 4 chars, EOT 1 / 1, " 東京" 7 bytes / 3 chars.
        assert_eq!(text_length(&tok, &ids)?, (13, 8));
        Ok(())
    }
}
