//! LAMBADA (Paperno et al. 2016; OpenAI's detokenized test set): predict a passage's last word.
//!
//! As in the GPT-2 paper and lm-eval's `lambada_openai`: the context is the passage up to the
//! whitespace before the last word, the target is that whitespace plus the word, and an example
//! is correct when greedy decoding reproduces every target token. Random baseline 0 (generative),
//! so the centered accuracy equals the accuracy (DCLM).

use std::time::Instant;

use super::choice::{truncations, TaskReport};
use super::scorer::{score_all, Request, Scorer};
use super::EvalError;
use crate::data::Tokenizer;

/// A passage split into context and target word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClozeExample {
    pub context: String,
    /// The last word with the whitespace before it (e.g. `" signs"`).
    pub target: String,
}

impl ClozeExample {
    /// Splits `text` (trailing whitespace ignored) before its last whitespace-separated word;
    /// `None` when it has no whitespace, i.e. no context.
    pub fn from_passage(text: &str) -> Option<ClozeExample> {
        let text = text.trim_end();
        let (at, _) = text.char_indices().rev().find(|(_, c)| c.is_whitespace())?;
        if text[..at].trim().is_empty() {
            return None;
        }
        Some(ClozeExample {
            context: text[..at].to_string(),
            target: text[at..].to_string(),
        })
    }
}

pub fn evaluate_lambada(
    examples: &[ClozeExample],
    scorer: &dyn Scorer,
    tok: &Tokenizer,
    batch_size: usize,
) -> Result<TaskReport, EvalError> {
    let t0 = Instant::now();
    if examples.is_empty() {
        return Err(EvalError::Invalid("task `lambada` has no examples".into()));
    }
    let requests: Vec<Request> = examples
        .iter()
        .map(|ex| Request::encode(tok, &ex.context, &ex.target))
        .collect::<Result<_, _>>()?;
    let scores = score_all(scorer, &requests, batch_size)?;
    let correct = scores.iter().filter(|s| s.greedy).count();
    let n = examples.len();
    let mean_logprob = scores.iter().map(|s| s.logprob).sum::<f64>() / n as f64;
    let mut report = TaskReport::accuracy("lambada", correct, n, 0.0);
    report.metric = "greedy_last_word".into();
    report.target_ppl = Some((-mean_logprob).exp());
    (report.contexts_truncated, report.continuations_truncated) =
        truncations(&requests, scorer.max_input_len());
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_before_the_last_word() {
        let ex = ClozeExample::from_passage("He said \"hi\" to\nMaria \n").expect("splits");
        assert_eq!(ex.context, "He said \"hi\" to");
        assert_eq!(ex.target, "\nMaria");
        let ex = ClozeExample::from_passage("I don't care about signs").expect("splits");
        assert_eq!(ex.target, " signs");
        assert_eq!(ClozeExample::from_passage("word"), None);
        assert_eq!(ClozeExample::from_passage("  word"), None);
    }
}
