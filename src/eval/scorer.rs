//! The model-agnostic scoring core: log-likelihood of a continuation given a context.
//!
//! Every task reduces to [`Request`]s (lm-eval-harness's `loglikelihood` requests): a
//! multiple-choice example is one request per choice, LAMBADA one request per passage, and a
//! perplexity stream one request per sliding window (the scored targets are the continuation).
//! [`score_all`] fits each request to the scorer's context (truncating from the left, as the
//! harness does), sorts by length so batches carry little padding, and restores input order.

use serde::Serialize;

use super::EvalError;
use crate::data::Tokenizer;

/// Score `continuation` after `context` (token ids). The context is never empty: a task
/// without one conditions on the document separator, as lm-eval does for GPT-2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub context: Vec<u32>,
    pub continuation: Vec<u32>,
}

impl Request {
    pub fn new(context: Vec<u32>, continuation: Vec<u32>) -> Self {
        Request {
            context,
            continuation,
        }
    }

    /// Tokens the model reads: everything but the last continuation token.
    pub fn input_len(&self) -> usize {
        (self.context.len() + self.continuation.len()).saturating_sub(1)
    }

    /// Encodes a task's text pair; an empty context becomes the tokenizer's document
    /// separator (the boundary a language model conditions on at the start of a document).
    pub fn encode(tok: &Tokenizer, context: &str, continuation: &str) -> Result<Self, EvalError> {
        let mut context = tok.encode(context)?;
        if context.is_empty() {
            context.push(tok.eot_token());
        }
        Ok(Request::new(context, tok.encode(continuation)?))
    }

    /// The request as a model with `max_input` positions sees it: tokens are dropped from the
    /// left until `input_len() <= max_input`. At least one context token is kept; a
    /// continuation longer than `max_input` loses its leading tokens (reported by
    /// [`Request::continuation_cut`]).
    pub fn fitted(&self, max_input: usize) -> Request {
        let context = &self.context;
        let all: Vec<u32> = context.iter().chain(&self.continuation).copied().collect();
        let keep = all.len().min(max_input.max(1) + 1);
        let tail = &all[all.len() - keep..];
        // The context keeps >= 1 token: `keep` exceeds the kept continuation by at least one.
        let split = keep - self.continuation.len().min(max_input.max(1));
        Request {
            context: tail[..split].to_vec(),
            continuation: tail[split..].to_vec(),
        }
    }

    /// True when fitting to `max_input` drops context tokens (the usual, harmless case for
    /// long LAMBADA passages on a short-context model).
    pub fn context_cut(&self, max_input: usize) -> bool {
        self.fitted(max_input).context.len() < self.context.len().max(1)
    }

    /// True when fitting to `max_input` drops continuation tokens: the score then covers only
    /// the continuation's tail. Tasks count these so a too-short context is visible.
    pub fn continuation_cut(&self, max_input: usize) -> bool {
        self.continuation.len() > max_input.max(1)
    }
}

/// What a scorer returns for one request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    /// Sum of the continuation tokens' log-probabilities (natural log).
    pub logprob: f64,
    /// Continuation tokens scored.
    pub tokens: usize,
    /// Greedy (argmax) decoding from the context reproduces every continuation token.
    pub greedy: bool,
}

/// A language model seen as a log-likelihood oracle.
pub trait Scorer {
    /// Longest input, in tokens, one request may feed the model (its context length).
    fn max_input_len(&self) -> usize;

    /// Scores a batch of requests, in order. Callers guarantee every request fits: a non-empty
    /// context and continuation, and `input_len() <= max_input_len()` ([`score_all`] does).
    fn score_batch(&self, batch: &[Request]) -> Result<Vec<Score>, EvalError>;
}

/// Scores `requests` (returned in their order) in batches of up to `batch_size`, longest first.
pub fn score_all(
    scorer: &dyn Scorer,
    requests: &[Request],
    batch_size: usize,
) -> Result<Vec<Score>, EvalError> {
    if batch_size == 0 {
        return Err(EvalError::Invalid("eval batch size must be > 0".into()));
    }
    if let Some(i) = requests.iter().position(|r| r.continuation.is_empty()) {
        return Err(EvalError::Invalid(format!(
            "request {i} has an empty continuation: there is nothing to score"
        )));
    }
    if let Some(i) = requests.iter().position(|r| r.context.is_empty()) {
        return Err(EvalError::Invalid(format!(
            "request {i} has an empty context: give the document separator instead"
        )));
    }
    let max = scorer.max_input_len();
    let fitted: Vec<Request> = requests.iter().map(|r| r.fitted(max)).collect();
    // Longest first, ties in input order: deterministic, and each batch pads little.
    let mut order: Vec<usize> = (0..fitted.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(fitted[i].input_len()));
    let mut out: Vec<Option<Score>> = vec![None; fitted.len()];
    for chunk in order.chunks(batch_size) {
        let batch: Vec<Request> = chunk.iter().map(|&i| fitted[i].clone()).collect();
        let scores = scorer.score_batch(&batch)?;
        if scores.len() != batch.len() {
            return Err(EvalError::Invalid(format!(
                "scorer returned {} scores for a batch of {} requests",
                scores.len(),
                batch.len()
            )));
        }
        for (&i, s) in chunk.iter().zip(scores) {
            out[i] = Some(s);
        }
    }
    // Invariant: `order` is a permutation of 0..len, so every slot was filled above.
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_cuts_from_the_left_and_keeps_one_context_token() {
        let r = Request::new(vec![1, 2, 3, 4, 5], vec![6, 7]);
        assert_eq!(r.input_len(), 6);
        let f = r.fitted(4);
        assert_eq!(f, Request::new(vec![3, 4, 5], vec![6, 7]));
        assert_eq!(f.input_len(), 4);
        assert!(r.context_cut(4) && !r.continuation_cut(4));
        assert_eq!(r.fitted(6), r);
        assert!(!r.context_cut(6));

        let long = Request::new(vec![1], vec![2, 3, 4, 5]);
        assert_eq!(long.fitted(2), Request::new(vec![3], vec![4, 5]));
        assert!(long.continuation_cut(2));
    }

    /// Records the batches it sees and scores a request by its length.
    struct Recorder {
        max: usize,
        batches: std::sync::Mutex<Vec<Vec<usize>>>,
    }

    impl Scorer for Recorder {
        fn max_input_len(&self) -> usize {
            self.max
        }
        fn score_batch(&self, batch: &[Request]) -> Result<Vec<Score>, EvalError> {
            let lens = batch.iter().map(Request::input_len).collect();
            self.batches.lock().expect("lock").push(lens);
            Ok(batch
                .iter()
                .map(|r| Score {
                    logprob: -(r.input_len() as f64),
                    tokens: r.continuation.len(),
                    greedy: r.continuation[0] == 0,
                })
                .collect())
        }
    }

    #[test]
    fn batches_longest_first_and_returns_scores_in_input_order() -> Result<(), EvalError> {
        let rec = Recorder {
            max: 5,
            batches: Default::default(),
        };
        let reqs = vec![
            Request::new(vec![1], vec![0]),             // input 1
            Request::new(vec![1, 2, 3], vec![5, 6]),    // input 4
            Request::new(vec![1; 9], vec![0, 1]),       // input 10 -> fitted to 5
            Request::new(vec![1, 2], vec![7]),          // input 2
            Request::new(vec![1, 2, 3, 4], vec![0, 0]), // input 5
        ];
        let scores = score_all(&rec, &reqs, 2)?;
        let lp: Vec<f64> = scores.iter().map(|s| s.logprob).collect();
        assert_eq!(lp, vec![-1.0, -4.0, -5.0, -2.0, -5.0]);
        assert_eq!(
            *rec.batches.lock().expect("lock"),
            vec![vec![5, 5], vec![4, 2], vec![1]]
        );
        assert!(scores[0].greedy && !scores[1].greedy);
        Ok(())
    }

    #[test]
    fn rejects_empty_continuations_and_zero_batches() {
        let rec = Recorder {
            max: 5,
            batches: Default::default(),
        };
        let bad = vec![Request::new(vec![1], vec![])];
        assert!(score_all(&rec, &bad, 4)
            .unwrap_err()
            .to_string()
            .contains("empty continuation"));
        let no_context = vec![Request::new(vec![], vec![1])];
        assert!(score_all(&rec, &no_context, 4)
            .unwrap_err()
            .to_string()
            .contains("empty context"));
        assert!(score_all(&rec, &[], 0).is_err());
    }
}
