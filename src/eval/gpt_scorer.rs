//! [`Scorer`] for any [`LanguageModel`]: one forward per batch.
//!
//! Batches are right-padded. Every model here is causal (attention under a causal mask, or a
//! recurrence that only runs forward), so a real position never sees the padding after it and a
//! padded row's scores equal the unpadded ones (checked in `tests/eval_gpt.rs`). Only the continuation positions go through the
//! lm_head: at V = 50257 it is ~90% of the tiny model's forward FLOPs, and a sliding window or an
//! answer choice scores a handful of positions out of the whole window.

use candle_core::{Device, Tensor, D};

use super::scorer::{Request, Score, Scorer};
use super::EvalError;
use crate::model::loss::token_nll;
use crate::model::LanguageModel;

/// Padding id. Any id works (no scored position attends to it); 0 is in every vocabulary.
const PAD: u32 = 0;

pub struct GptScorer<'a> {
    gpt: &'a dyn LanguageModel,
    device: Device,
    context: usize,
}

impl<'a> GptScorer<'a> {
    /// Scores with `gpt` (an inference model) using at most `context` input positions: the
    /// training context length, since positions past it were never trained.
    pub fn new(
        gpt: &'a dyn LanguageModel,
        context: usize,
        device: &Device,
    ) -> Result<Self, EvalError> {
        let max = gpt.max_context().unwrap_or(usize::MAX);
        if context == 0 || context > max {
            return Err(EvalError::Invalid(format!(
                "eval context must be in 1..={max} (the model's maximum context), got {context}"
            )));
        }
        Ok(GptScorer {
            gpt,
            device: device.clone(),
            context,
        })
    }
}

/// The padded batch and where its continuation tokens sit.
struct Layout {
    inputs: Vec<u32>, // [B * T]
    t: usize,
    /// Row of the flattened [B*T] hidden states that predicts each continuation token.
    rows: Vec<u32>,
    targets: Vec<u32>,
}

fn layout(batch: &[Request]) -> Layout {
    let t = batch.iter().map(Request::input_len).max().unwrap_or(0);
    let mut inputs = vec![PAD; batch.len() * t];
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    for (i, r) in batch.iter().enumerate() {
        let row = &mut inputs[i * t..(i + 1) * t];
        let all = r.context.iter().chain(&r.continuation);
        for (slot, &tok) in row.iter_mut().zip(all.take(r.input_len())) {
            *slot = tok;
        }
        // Position p predicts token p + 1; the first continuation token is predicted by the last
        // context position.
        for (j, &tok) in r.continuation.iter().enumerate() {
            rows.push((i * t + r.context.len() - 1 + j) as u32);
            targets.push(tok);
        }
    }
    Layout {
        inputs,
        t,
        rows,
        targets,
    }
}

impl Scorer for GptScorer<'_> {
    fn max_input_len(&self) -> usize {
        self.context
    }

    fn score_batch(&self, batch: &[Request]) -> Result<Vec<Score>, EvalError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(r) = batch.iter().find(|r| {
            r.context.is_empty() || r.continuation.is_empty() || r.input_len() > self.context
        }) {
            return Err(EvalError::Invalid(format!(
                "request does not fit the scorer: context {} tokens, continuation {} tokens, \
                 model context {}",
                r.context.len(),
                r.continuation.len(),
                self.context
            )));
        }
        let l = layout(batch);
        let b = batch.len();
        let x = Tensor::from_vec(l.inputs, (b, l.t), &self.device)?; // [B, T]
        let h = self.gpt.hidden_states(&x)?; // [B*T, D]
        let m = l.rows.len();
        let rows = Tensor::from_vec(l.rows, m, &self.device)?; // [M]
        let h = h.index_select(&rows, 0)?; // [M, D]
        let logits = self.gpt.project(&h)?; // [M, V]
        let targets = Tensor::from_vec(l.targets.clone(), m, &self.device)?; // [M]
        let nll = token_nll(&logits, &targets)?.to_vec1::<f32>()?; // [M]
        let argmax = logits.argmax(D::Minus1)?.to_vec1::<u32>()?; // [M]

        let mut out = Vec::with_capacity(b);
        let mut k = 0;
        for r in batch {
            let n = r.continuation.len();
            let logprob = -nll[k..k + n].iter().map(|&v| v as f64).sum::<f64>();
            let greedy = argmax[k..k + n] == l.targets[k..k + n];
            out.push(Score {
                logprob,
                tokens: n,
                greedy,
            });
            k += n;
        }
        Ok(out)
    }
}
