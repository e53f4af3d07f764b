//! Multiple-choice scoring (HellaSwag, PIQA, ARC, WinoGrande): each option is a (context,
//! continuation) text pair, the model's choice is the option whose continuation is most likely,
//! and accuracy is reported raw, length-normalised, and DCLM-centered.
//!
//! Length normalisation divides an option's log-likelihood by the UTF-8 byte length of its
//! continuation text. lm-eval-harness's `acc_norm` divides by the character length; the two are
//! identical on ASCII text, which HellaSwag, PIQA and ARC almost entirely are. Bytes are used
//! because they are also the unit of the normalised perplexity ([`super::perplexity`]).

use std::time::Instant;

use serde::Serialize;

use super::scorer::{score_all, Request, Scorer};
use super::EvalError;
use crate::data::Tokenizer;

/// One multiple-choice example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChoiceExample {
    /// (context, continuation) per option. Most tasks share the context and vary the
    /// continuation; WinoGrande's partial scoring varies the context and shares the continuation.
    pub options: Vec<(String, String)>,
    /// Index of the correct option.
    pub label: usize,
}

/// How option log-likelihoods are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// The summed log-likelihood (lm-eval `acc`).
    None,
    /// Log-likelihood per UTF-8 byte of the continuation (lm-eval `acc_norm`, in bytes).
    Bytes,
}

/// Accuracy of one zero-shot task (multiple-choice or LAMBADA).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskReport {
    pub task: String,
    pub examples: usize,
    /// Which accuracy `acc` is: `acc` (raw), `acc_norm_bytes`, or `greedy_last_word` (LAMBADA).
    pub metric: String,
    /// The headline accuracy in [0, 1].
    pub acc: f64,
    /// Binomial standard error sqrt(acc (1 - acc) / n).
    pub acc_stderr: f64,
    /// Expected accuracy of uniform guessing: the mean of 1 / options (0 for LAMBADA).
    pub random_baseline: f64,
    /// DCLM centered accuracy (acc - r) / (1 - r): 0 at chance, 1 when perfect.
    pub acc_centered: f64,
    /// Accuracy with summed log-likelihoods (multiple choice only).
    pub acc_raw: Option<f64>,
    /// Accuracy with byte-normalised log-likelihoods (multiple choice only).
    pub acc_norm_bytes: Option<f64>,
    /// LAMBADA: exp(-mean over examples of the target word's log-likelihood), lm-eval's
    /// `perplexity` (per word, not per token).
    pub target_ppl: Option<f64>,
    /// Requests whose context was cut from the left to fit the model context.
    pub contexts_truncated: usize,
    /// Requests whose continuation itself was longer than the model context (only its tail
    /// was scored).
    pub continuations_truncated: usize,
    pub seconds: f64,
}

impl TaskReport {
    /// Fills in the derived fields from the correct count.
    pub(crate) fn accuracy(task: &str, correct: usize, n: usize, random_baseline: f64) -> Self {
        let acc = correct as f64 / n.max(1) as f64;
        TaskReport {
            task: task.to_string(),
            examples: n,
            metric: String::new(),
            acc,
            acc_stderr: (acc * (1.0 - acc) / n.max(1) as f64).sqrt(),
            random_baseline,
            acc_centered: centered(acc, random_baseline),
            acc_raw: None,
            acc_norm_bytes: None,
            target_ppl: None,
            contexts_truncated: 0,
            continuations_truncated: 0,
            seconds: 0.0,
        }
    }
}

/// DCLM's centered accuracy (acc - r) / (1 - r) (DCLM, arXiv 2406.11794, its CORE evaluation).
pub fn centered(acc: f64, random_baseline: f64) -> f64 {
    (acc - random_baseline) / (1.0 - random_baseline)
}

/// Index of the best option: highest log-likelihood, per byte under [`Normalisation::Bytes`].
/// Ties go to the first option (numpy `argmax`, as lm-eval).
pub fn pick(logprobs: &[f64], bytes: &[usize], norm: Normalisation) -> usize {
    let value = |i: usize| match norm {
        Normalisation::None => logprobs[i],
        Normalisation::Bytes => logprobs[i] / bytes[i].max(1) as f64,
    };
    (0..logprobs.len()).fold(0, |best, i| if value(i) > value(best) { i } else { best })
}

/// Counts of `requests` cut to fit `max_input` tokens: (contexts, continuations).
pub(crate) fn truncations(requests: &[Request], max_input: usize) -> (usize, usize) {
    let ctx = requests.iter().filter(|r| r.context_cut(max_input)).count();
    let cont = requests
        .iter()
        .filter(|r| r.continuation_cut(max_input))
        .count();
    (ctx, cont)
}

/// Scores every option of every example and reports accuracy; `primary` picks which
/// normalisation is the headline `acc`.
pub fn evaluate_choices(
    task: &str,
    examples: &[ChoiceExample],
    primary: Normalisation,
    scorer: &dyn Scorer,
    tok: &Tokenizer,
    batch_size: usize,
) -> Result<TaskReport, EvalError> {
    let t0 = Instant::now();
    if examples.is_empty() {
        return Err(EvalError::Invalid(format!("task `{task}` has no examples")));
    }
    let requests: Vec<Request> = examples
        .iter()
        .flat_map(|ex| ex.options.iter())
        .map(|(c, x)| Request::encode(tok, c, x))
        .collect::<Result<_, _>>()?;
    let scores = score_all(scorer, &requests, batch_size)?;
    let (mut raw, mut norm, mut k, mut baseline) = (0, 0, 0, 0.0);
    for ex in examples {
        let n = ex.options.len();
        let lp: Vec<f64> = scores[k..k + n].iter().map(|s| s.logprob).collect();
        let bytes: Vec<usize> = ex.options.iter().map(|(_, x)| x.len()).collect();
        raw += usize::from(pick(&lp, &bytes, Normalisation::None) == ex.label);
        norm += usize::from(pick(&lp, &bytes, Normalisation::Bytes) == ex.label);
        baseline += 1.0 / n as f64;
        k += n;
    }
    let n = examples.len();
    let (correct, metric) = match primary {
        Normalisation::None => (raw, "acc"),
        Normalisation::Bytes => (norm, "acc_norm_bytes"),
    };
    let mut report = TaskReport::accuracy(task, correct, n, baseline / n as f64);
    report.metric = metric.into();
    report.acc_raw = Some(raw as f64 / n as f64);
    report.acc_norm_bytes = Some(norm as f64 / n as f64);
    (report.contexts_truncated, report.continuations_truncated) =
        truncations(&requests, scorer.max_input_len());
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_can_flip_the_choice() {
        // A long correct answer loses on the raw sum and wins per byte.
        let lp = [-10.0, -6.0];
        let bytes = [20, 6];
        assert_eq!(pick(&lp, &bytes, Normalisation::None), 1);
        assert_eq!(pick(&lp, &bytes, Normalisation::Bytes), 0);
        assert_eq!(
            pick(&[-1.0, -1.0, -2.0], &[1, 1, 1], Normalisation::None),
            0
        );
    }

    #[test]
    fn centered_accuracy_is_zero_at_chance_and_one_when_perfect() {
        assert_eq!(centered(0.25, 0.25), 0.0);
        assert_eq!(centered(1.0, 0.5), 1.0);
        assert!((centered(0.4, 0.25) - 0.2).abs() < 1e-12);
        assert!(centered(0.2, 0.25) < 0.0);
        let r = TaskReport::accuracy("t", 30, 40, 0.5);
        assert!((r.acc - 0.75).abs() < 1e-12 && (r.acc_centered - 0.5).abs() < 1e-12);
        assert!((r.acc_stderr - (0.75f64 * 0.25 / 40.0).sqrt()).abs() < 1e-12);
    }
}
