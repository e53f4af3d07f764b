//! `ledger`, `sweep`, `fit`, `eval`: looking at runs and comparing them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::Config;
use crate::device::{select_device, use_tf32_matmuls};
use crate::eval;
use crate::ledger;
use crate::plugins::Plugins;
use crate::scaling::{self, Cut, Filter, FitOptions, Form, Format, Method, UnitChoice};
use crate::train::{self, CONFIG_FILE};

use super::set_threads;

#[derive(Args)]
pub(super) struct LedgerArgs {
    /// Run directory.
    run: PathBuf,
    /// Hardest and easiest blocks to list.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Histogram rows.
    #[arg(long, default_value_t = 20)]
    bins: usize,
    /// Characters of decoded text shown per listed block.
    #[arg(long, default_value_t = 80)]
    preview_chars: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct SweepArgs {
    /// Sweep file (see configs/sweeps/).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Args)]
pub(super) struct FitArgs {
    /// Loss table (CSV).
    file: PathBuf,
    /// Table layout: colpret (also results.csv), chinchilla, datablations or opt; detected
    /// from the header when omitted.
    #[arg(long)]
    format: Option<Format>,
    /// chinchilla: L(N, D) = E + A/N^alpha + B/D^beta; compute: L = beta * x^alpha per group.
    #[arg(long, default_value = "chinchilla")]
    form: Form,
    /// Chinchilla objective: huber (log residuals, 1,024-start L-BFGS), lsq (raw loss, from
    /// p0) or both.
    #[arg(long, default_value = "both")]
    method: Method,
    /// Compute axis of --form compute: flops, tokens_seen or a numeric column such as
    /// theoretical_hours.
    #[arg(long, default_value = "flops")]
    x: String,
    /// Column whose values split --form compute into curves (e.g. policy).
    #[arg(long)]
    group_by: Option<String>,
    /// Keep only rows whose COLUMN equals VALUE (repeatable; all must match).
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    filters: Vec<Filter>,
    /// Drop checkpoints with fewer tokens_seen than this.
    #[arg(long)]
    min_tokens: Option<f64>,
    /// Drop checkpoints below this fraction of their run's final tokens_seen (1 keeps only
    /// the last checkpoint of each run).
    #[arg(long)]
    min_frac: Option<f64>,
    /// Hold out this final fraction of training (of the largest-N run; per group for
    /// --form compute) and report ARE on it.
    #[arg(long, default_value_t = 0.0)]
    holdout: f64,
    /// Bootstrap resamples for 95% intervals (0 = none).
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// What the bootstrap resamples: auto (seeds if there are two or more, else rows), seed,
    /// run or row.
    #[arg(long, default_value = "auto")]
    bootstrap_unit: UnitChoice,
    /// Random grid starts added to the warm start of each Huber bootstrap refit (best kept).
    #[arg(long, default_value_t = 0)]
    bootstrap_starts: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct EvalArgs {
    /// Run directory (its config.toml and checkpoints).
    #[arg(long)]
    run: PathBuf,
    /// Checkpoint directory; default: the run's newest complete checkpoint.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Comma-separated: lambada,hellaswag,piqa,arc_easy,winogrande,wikitext2,val, or auto.
    /// Default: the run's eval.tasks.
    #[arg(long, value_delimiter = ',')]
    tasks: Option<Vec<String>>,
    /// Examples per zero-shot task (the first ones); 0 = all. Default: eval.task_limit.
    #[arg(long)]
    limit: Option<usize>,
    /// Scored tokens per perplexity set; 0 = all. Default: eval.ppl_max_tokens.
    #[arg(long)]
    ppl_tokens: Option<usize>,
    /// Directory of the eval files. Default: eval.tasks_dir (unset: the user cache, ~/.cache/syllabus/eval).
    #[arg(long)]
    tasks_dir: Option<PathBuf>,
    /// Sliding-window stride in tokens. Default: eval.stride (context / 4).
    #[arg(long)]
    stride: Option<usize>,
    /// Requests per forward pass. Default: eval.batch_size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// "cpu" or "cuda:N".
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn ledger_cmd(a: LedgerArgs) -> Result<()> {
    let report = ledger::build_report(
        super::run_directory(&a.run, ledger::LEDGER_FILE)?,
        &ledger::ReportOptions {
            top_k: a.top_k,
            bins: a.bins,
            preview_chars: a.preview_chars,
            ..Default::default()
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(())
}

pub(super) fn sweep_cmd(a: SweepArgs, plugins: &Plugins) -> Result<()> {
    let r = crate::sweep::run_sweep_with(&a.config, plugins)?;
    for (label, outcome) in &r.outcomes {
        println!("{label}: {outcome:?}");
    }
    println!("{} rows -> {}", r.rows, r.dir.join("results.csv").display());
    println!("summary -> {}", r.dir.join("summary.md").display());
    Ok(())
}

pub(super) fn fit_cmd(a: FitArgs) -> Result<()> {
    let opts = FitOptions {
        format: a.format,
        form: a.form,
        method: a.method,
        x: a.x,
        group_by: a.group_by,
        filters: a.filters,
        cut: Cut {
            min_tokens: a.min_tokens,
            min_frac: a.min_frac,
        },
        holdout: a.holdout,
        bootstrap: a.bootstrap,
        bootstrap_unit: a.bootstrap_unit,
        bootstrap_starts: a.bootstrap_starts,
        seed: a.seed,
    };
    let report = scaling::fit_file(&a.file, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(())
}

pub(super) fn eval_cmd(a: EvalArgs, plugins: &Plugins) -> Result<()> {
    let config = Config::load_with(
        &super::run_directory(&a.run, CONFIG_FILE)?.join(CONFIG_FILE),
        &[],
        &plugins.models,
    )?;
    set_threads(config.run.threads)?;
    let device = select_device(&a.device)?;
    use_tf32_matmuls(&device);
    let overrides = train::EvalOverrides {
        tasks: a.tasks,
        tasks_dir: a.tasks_dir,
        task_limit: a.limit,
        ppl_max_tokens: a.ppl_tokens,
        stride: a.stride,
        batch_size: a.batch_size,
        quiet: false,
    };
    let r = train::evaluate_checkpoint(
        &a.run,
        &config,
        a.checkpoint.as_deref(),
        &overrides,
        &device,
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r.report)?);
        return Ok(());
    }
    println!("{} (step {})", r.checkpoint.display(), r.step);
    print!("{}", eval::render_table(&r.report));
    println!("results stored in {}", r.eval_json.display());
    Ok(())
}
