//! `syllabus tokenizer train`: a byte-level BPE tokenizer for `prepare --tokenizer`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::data::tokenizer::train::{train_tokenizer, TrainOptions};
use crate::data::Tokenizer;

#[derive(Subcommand)]
pub(super) enum TokenizerCommand {
    /// Train a byte-level BPE (GPT-2's scheme) on text and write a Hugging Face
    /// tokenizer.json whose document separator is <|endoftext|> (id 0).
    Train(TrainArgs),
}

#[derive(Args)]
pub(super) struct TrainArgs {
    /// Input files or directories, in any format `prepare` reads (repeatable). Train on the
    /// training split only, so validation text stays unseen.
    #[arg(long = "input", required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// Vocabulary size: 256 bytes + merges + <|endoftext|>.
    #[arg(long)]
    vocab_size: usize,
    /// Output file (tokenizer.json).
    #[arg(long)]
    out: PathBuf,
    /// Pairs seen fewer times are never merged.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    /// Read at most this many megabytes of text (BPE merges settle on a sample).
    #[arg(long, value_name = "MB")]
    max_mb: Option<u64>,
    /// Replace an existing --out file.
    #[arg(long)]
    overwrite: bool,
}

pub(super) fn run(cmd: TokenizerCommand) -> Result<()> {
    match cmd {
        TokenizerCommand::Train(a) => train(a),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    if a.out.exists() && !a.overwrite {
        bail!(
            "refusing to overwrite {}; pass --overwrite to replace it",
            a.out.display()
        );
    }
    let opts = TrainOptions {
        inputs: a.inputs,
        vocab_size: a.vocab_size,
        min_frequency: a.min_frequency,
        max_bytes: a.max_mb.map(|mb| mb << 20),
    };
    let t0 = Instant::now();
    let stats = train_tokenizer(&opts, &a.out)?;
    let secs = t0.elapsed().as_secs_f64();
    let tok = Tokenizer::from_file(&a.out)?;
    println!(
        "trained {}: vocabulary {} (separator id {}) from {} documents, {:.1} MB of text in \
         {secs:.1} s",
        a.out.display(),
        tok.vocab_size(),
        tok.eot_token(),
        stats.documents,
        stats.text_bytes as f64 / 1e6,
    );
    Ok(())
}
