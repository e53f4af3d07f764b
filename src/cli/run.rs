//! `prepare`, `verify`, `train`, `sample`: data in, model out.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::config::Config;
use crate::data::{self, Columns, FileStatus, PrepareOptions};
use crate::device::{select_device, use_tf32_matmuls};
use crate::generate::{generate, SampleOptions};
use crate::model::BuildOptions;
use crate::plugins::Plugins;
use crate::rng::Rng;
use crate::train::{
    checkpoint, load_run_tokenizer, train_with, TrainError, TrainOptions, CONFIG_FILE,
};

use super::{set_threads, ConfigArgs};

#[derive(Args)]
pub(super) struct PrepareArgs {
    /// Input files, directories or quoted glob patterns ('shards/*.parquet'): .txt, .jsonl
    /// (either optionally .gz or .zst) and .parquet (repeatable).
    #[arg(long = "input", required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Separate validation inputs; without them --val-fraction of documents is held out.
    #[arg(long = "val", num_args = 1..)]
    val: Vec<PathBuf>,
    /// Fraction of documents held out for validation when --val is not given.
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// Seed of the document-level split.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Replace prepared data already in --out.
    #[arg(long)]
    overwrite: bool,
    /// A Hugging Face tokenizer.json (e.g. from `syllabus tokenizer train`); default GPT-2's
    /// BPE. Copied into --out and recorded in the manifest with its SHA-256.
    #[arg(long, value_name = "TOKENIZER_JSON")]
    tokenizer: Option<PathBuf>,
    /// Parquet inputs: the string column holding the document text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// Parquet inputs: a string column holding each document's source name (without it, and
    /// for null or empty values, the source is "default").
    #[arg(long)]
    source_column: Option<String>,
}

#[derive(Args)]
pub(super) struct VerifyArgs {
    /// Prepared-data directory (the `--out` of `prepare`).
    dir: PathBuf,
}

#[derive(Args)]
pub(super) struct TrainArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Continue from the newest complete checkpoint in the run directory.
    #[arg(long)]
    resume: bool,
    /// Continue from this checkpoint directory (e.g. an older one when the newest is
    /// corrupt); implies --resume. Newer checkpoints are set aside, not deleted.
    #[arg(long, value_name = "CHECKPOINT_DIR", conflicts_with = "overwrite")]
    resume_from: Option<PathBuf>,
    /// Replace an existing run in the run directory.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Stop after this optimizer step (with a checkpoint); resume later with --resume.
    #[arg(long)]
    stop_after: Option<u64>,
}

#[derive(Args)]
pub(super) struct SampleArgs {
    /// Run directory (its newest checkpoint is used).
    #[arg(long)]
    run: PathBuf,
    #[arg(long, default_value = "")]
    prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 100)]
    tokens: usize,
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Keep the k most likely tokens; 0 keeps all.
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// "cpu", "cuda" or "cuda:N" (needs a CUDA build).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print JSON with the token ids (`prompt_ids`, `ids`) beside the text.
    #[arg(long)]
    json: bool,
}

pub(super) fn prepare(a: PrepareArgs) -> Result<()> {
    let m = data::prepare(&PrepareOptions {
        inputs: a.inputs,
        val_inputs: a.val,
        val_fraction: a.val_fraction,
        seed: a.seed,
        out_dir: a.out.clone(),
        overwrite: a.overwrite,
        tokenizer: a.tokenizer,
        columns: Columns {
            text: a.text_column,
            source: a.source_column,
        },
        progress: true,
    })?;
    println!(
        "prepared {}: train {} tokens in {} documents, val {} tokens in {} documents",
        a.out.display(),
        m.train.tokens,
        m.train.documents,
        m.val.tokens,
        m.val.documents
    );
    Ok(())
}

/// One line per file; exit status 1 (through the error) if any file fails.
pub(super) fn verify(a: VerifyArgs) -> Result<()> {
    let checks = data::verify_prepared(&a.dir)?;
    for c in &checks {
        println!("{c}");
    }
    let failed = checks.iter().filter(|c| !c.passed()).count();
    if failed > 0 {
        bail!(
            "{}: {failed} of {} files failed verification",
            a.dir.display(),
            checks.len()
        );
    }
    let unchecked = checks
        .iter()
        .filter(|c| matches!(c.status, FileStatus::NoChecksum { .. }))
        .count();
    if unchecked > 0 {
        println!(
            "{}: all {} files pass, {unchecked} of them without a content checksum",
            a.dir.display(),
            checks.len()
        );
    } else {
        println!("{}: all {} files ok", a.dir.display(), checks.len());
    }
    Ok(())
}

pub(super) fn train_cmd(a: TrainArgs, plugins: &Plugins) -> Result<()> {
    let config = Config::load_with(&a.config.config, &a.config.set, &plugins.models)?;
    set_threads(config.run.threads)?;
    let opts = TrainOptions {
        resume: a.resume || a.resume_from.is_some(),
        resume_from: a.resume_from,
        overwrite: a.overwrite,
        stop_after: a.stop_after,
    };
    let summary = match train_with(&config, &opts, plugins) {
        Err(e @ TrainError::AlreadyFinished { .. }) => {
            println!("{e}");
            return Ok(());
        }
        other => other?,
    };
    println!(
        "final val loss {:.4} (ppl {:.2}); unigram baseline {:.4}; run dir {}",
        summary.final_eval.loss,
        summary.final_eval.ppl,
        summary.unigram_entropy,
        summary.run_dir.display()
    );
    Ok(())
}

pub(super) fn sample(a: SampleArgs, plugins: &Plugins) -> Result<()> {
    if !(a.temperature > 0.0 && a.temperature.is_finite()) {
        bail!(
            "--temperature must be a finite number > 0, got {}",
            a.temperature
        );
    }
    let device = select_device(&a.device)?;
    use_tf32_matmuls(&device);
    let run_dir = super::run_directory(&a.run, CONFIG_FILE)?;
    let Some(path) = checkpoint::latest(run_dir)? else {
        bail!("{}: no complete checkpoint to sample from", a.run.display());
    };
    let ckpt = checkpoint::load(&path, &plugins.models, &device)?;
    let model = ckpt.arch.build(&ckpt.params, BuildOptions::inference())?;
    let tokenizer = load_run_tokenizer(run_dir)?;
    let mut prompt = tokenizer.encode(&a.prompt)?;
    if prompt.is_empty() {
        // Unconditional sample: start from a document boundary.
        prompt.push(tokenizer.eot_token());
    }
    let opts = SampleOptions {
        max_new_tokens: a.tokens,
        temperature: a.temperature,
        top_k: a.top_k,
        context: ckpt.arch.max_context().unwrap_or(usize::MAX),
    };
    let new = generate(
        model.as_ref(),
        &prompt,
        &opts,
        &mut Rng::new(a.seed),
        &device,
    )?;
    let text = format!("{}{}", a.prompt, tokenizer.decode(&new));
    match a.json {
        true => println!(
            "{}",
            serde_json::json!({"prompt_ids": prompt, "ids": new, "text": text})
        ),
        false => println!("{text}"),
    }
    Ok(())
}
