//! `curate` and `curate train-classifier`: data curation before `prepare`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::curate::quality::{self, TrainOptions};
use crate::curate::{self as cur, CurateConfig, RunOptions};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct CurateArgs {
    #[command(subcommand)]
    command: Option<CurateCommand>,
    /// Curation config (TOML; see docs/curation.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replace the curated shards and report already in output.dir.
    #[arg(long)]
    overwrite: bool,
    /// Continue an interrupted run: skip the input files it finished.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
}

#[derive(Subcommand)]
enum CurateCommand {
    /// Train a fastText quality classifier (DCLM's recipe: bigrams, dim 100, lr 0.1, 5 epochs).
    TrainClassifier(TrainClassifierArgs),
}

#[derive(Args)]
struct TrainClassifierArgs {
    /// High-quality examples (JSONL with `text`; files or directories, repeatable).
    #[arg(long, required = true, num_args = 1..)]
    positive: Vec<PathBuf>,
    /// Ordinary examples (JSONL with `text`).
    #[arg(long, required = true, num_args = 1..)]
    negative: Vec<PathBuf>,
    /// Where to write the model (fastText .bin).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "__label__hq")]
    positive_label: String,
    #[arg(long, default_value = quality::NEGATIVE_LABEL)]
    negative_label: String,
    /// Word n-gram length.
    #[arg(long, default_value_t = 2)]
    word_ngrams: i32,
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    #[arg(long, default_value_t = 100)]
    dim: i32,
    #[arg(long, default_value_t = 5)]
    epoch: i32,
    /// Hash buckets for word n-grams (model size ~ (words + bucket) * dim * 4 bytes).
    #[arg(long, default_value_t = 2_000_000)]
    bucket: i32,
    /// Training threads (1 = deterministic).
    #[arg(long, default_value_t = 1)]
    threads: i32,
    #[arg(long, default_value_t = 0)]
    seed: i32,
}

pub(super) fn curate_cmd(a: CurateArgs) -> Result<()> {
    if let Some(CurateCommand::TrainClassifier(t)) = a.command {
        return train_classifier(t);
    }
    let Some(path) = a.config else {
        bail!("give --config FILE (or the train-classifier subcommand)");
    };
    let cfg = CurateConfig::load(&path)?;
    let opts = RunOptions {
        overwrite: a.overwrite,
        resume: a.resume,
    };
    let report = cur::curate(&cfg, opts)?;
    println!("{}", report.to_markdown());
    println!(
        "wrote {} shard(s), {} and {} in {}",
        report.shards.len(),
        cur::REPORT_JSON,
        cur::REPORT_MD,
        cfg.output.dir.display()
    );
    Ok(())
}

fn train_classifier(a: TrainClassifierArgs) -> Result<()> {
    let pos = cur::read_texts(&a.positive).context("reading --positive")?;
    let neg = cur::read_texts(&a.negative).context("reading --negative")?;
    if pos.is_empty() || neg.is_empty() {
        bail!("need at least one positive and one negative example");
    }
    let opts = TrainOptions {
        positive_label: a.positive_label,
        negative_label: a.negative_label,
        word_ngrams: a.word_ngrams,
        lr: a.lr,
        dim: a.dim,
        epoch: a.epoch,
        bucket: a.bucket,
        threads: a.threads,
        seed: a.seed,
    };
    quality::train(&pos, &neg, &opts, &a.out)?;
    println!(
        "trained on {} positive and {} negative examples; wrote {}",
        pos.len(),
        neg.len(),
        a.out.display()
    );
    Ok(())
}
