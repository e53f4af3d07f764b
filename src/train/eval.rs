//! Validation loss and perplexity, computed on detached weights so no backward graph is built,
//! and the text samples shown beside them.

use candle_core::Device;
use serde::Serialize;

use super::batch::load_batch;
use super::TrainError;
use crate::config::Config;
use crate::data::{Blocks, Tokenizer};
use crate::generate::{generate, SampleOptions};
use crate::model::LanguageModel;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, Serialize)]
pub struct EvalResult {
    /// Mean next-token loss in nats.
    pub loss: f64,
    pub ppl: f64,
    pub blocks: usize,
    pub tokens: usize,
}

/// Mean loss over the first `max_blocks` validation blocks (0 = all), in batches of `batch`.
/// Always the same leading blocks, so evaluations across a run and across runs compare.
pub fn evaluate(
    gpt: &dyn LanguageModel,
    val: &Blocks,
    max_blocks: usize,
    batch: usize,
    device: &Device,
) -> Result<EvalResult, TrainError> {
    let n = if max_blocks == 0 {
        val.len()
    } else {
        max_blocks.min(val.len())
    };
    let ids: Vec<usize> = (0..n).collect();
    let mut sum = 0.0f64;
    for chunk in ids.chunks(batch.max(1)) {
        let (x, y) = load_batch(val, chunk, device)?;
        let per_seq = gpt.per_sequence_loss(&x, &y)?.to_vec1::<f32>()?;
        sum += per_seq.iter().map(|&l| l as f64).sum::<f64>();
    }
    let loss = sum / n.max(1) as f64;
    Ok(EvalResult {
        loss,
        ppl: loss.exp(),
        blocks: n,
        tokens: n * (val.block_len() - 1),
    })
}

/// A text sample from `prompt` (empty: from a document boundary) with the run's `[eval]`
/// sampling settings, on a stream derived from (seed, step), so sampling never shifts the
/// training RNG.
pub fn sample_text(
    gpt: &dyn LanguageModel,
    tokenizer: &Tokenizer,
    config: &Config,
    step: u64,
    device: &Device,
) -> Result<String, TrainError> {
    let c = &config.eval;
    let mut prompt = tokenizer.encode(&c.sample_prompt)?;
    if prompt.is_empty() {
        prompt.push(tokenizer.eot_token());
    }
    let mut rng = Rng::new(config.run.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let opts = SampleOptions {
        max_new_tokens: c.sample_tokens,
        temperature: c.temperature,
        top_k: c.top_k,
        context: config.context(),
    };
    let new = generate(gpt, &prompt, &opts, &mut rng, device)?;
    Ok(format!("{}{}", c.sample_prompt, tokenizer.decode(&new)))
}
