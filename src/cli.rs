//! Command definitions (clap) and their thin handlers.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use syllabus::config::Config;
use syllabus::data::{self, Gpt2Tokenizer, PrepareOptions};
use syllabus::eval::{self, EvalOverrides};
use syllabus::generate::{generate, SampleOptions};
use syllabus::ledger;
use syllabus::logging::console::config_table;
use syllabus::model::Gpt;
use syllabus::perf::{bench, BenchOptions};
use syllabus::rng::Rng;
use syllabus::train::{checkpoint, select_device, train, TrainOptions};

#[derive(Parser)]
#[command(
    name = "syllabus",
    version,
    about = "Adaptive-curriculum GPT-2 pretraining"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tokenize text (.txt, .jsonl, .gz, directories) into a memory-mapped token store.
    Prepare(PrepareArgs),
    /// Train a GPT-2 model from a TOML config.
    Train(TrainArgs),
    /// Generate text from a run's newest checkpoint.
    Sample(SampleArgs),
    /// Measure training throughput (random tokens, after warm-up).
    Bench(BenchArgs),
    /// Inspect a run's per-block loss ledger (safe while the run is training).
    Ledger(LedgerArgs),
    /// Evaluate a run's checkpoint: normalised perplexity and zero-shot tasks (RUN/eval.json).
    Eval(EvalArgs),
}

#[derive(Args)]
struct EvalArgs {
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
    /// Directory of the eval files. Default: eval.tasks_dir.
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

#[derive(Args)]
struct LedgerArgs {
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
struct PrepareArgs {
    /// Input files or directories (repeatable).
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
}

#[derive(Args)]
struct ConfigArgs {
    /// TOML config file.
    #[arg(long)]
    config: PathBuf,
    /// Override a config key, e.g. --set optim.lr=3e-4 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Continue from the newest complete checkpoint in the run directory.
    #[arg(long)]
    resume: bool,
    /// Replace an existing run in the run directory.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Stop after this optimizer step (with a checkpoint); resume later with --resume.
    #[arg(long)]
    stop_after: Option<u64>,
}

#[derive(Args)]
struct SampleArgs {
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
    /// "cpu" or "cuda:N".
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Prepare(a) => prepare(a),
        Command::Train(a) => train_cmd(a),
        Command::Sample(a) => sample(a),
        Command::Bench(a) => bench_cmd(a),
        Command::Ledger(a) => ledger_cmd(a),
        Command::Eval(a) => eval_cmd(a),
    }
}

fn load_config(a: &ConfigArgs) -> Result<Config> {
    let config = Config::load(&a.config, &a.set)?;
    set_threads(config.run.threads)?;
    Ok(config)
}

/// Thread count must be fixed before candle or rayon start their pools: bit-exact CPU
/// determinism holds per thread count.
fn set_threads(threads: usize) -> Result<()> {
    if threads > 0 {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("configuring the thread pool")?;
    }
    Ok(())
}

fn prepare(a: PrepareArgs) -> Result<()> {
    let m = data::prepare(&PrepareOptions {
        inputs: a.inputs,
        val_inputs: a.val,
        val_fraction: a.val_fraction,
        seed: a.seed,
        out_dir: a.out.clone(),
        overwrite: a.overwrite,
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

fn train_cmd(a: TrainArgs) -> Result<()> {
    let config = load_config(&a.config)?;
    let summary = train(
        &config,
        &TrainOptions {
            resume: a.resume,
            overwrite: a.overwrite,
            stop_after: a.stop_after,
        },
    )?;
    println!(
        "final val loss {:.4} (ppl {:.2}); unigram baseline {:.4}; run dir {}",
        summary.final_eval.loss,
        summary.final_eval.ppl,
        summary.unigram_entropy,
        summary.run_dir.display()
    );
    Ok(())
}

fn sample(a: SampleArgs) -> Result<()> {
    let device = select_device(&a.device)?;
    let Some(path) = checkpoint::latest(&a.run)? else {
        bail!("{}: no complete checkpoint to sample from", a.run.display());
    };
    let ckpt = checkpoint::load(&path, &device)?;
    let cfg = &ckpt.manifest.model;
    let gpt = Gpt::new_inference(cfg, &ckpt.params)?;
    let tokenizer = Gpt2Tokenizer::new()?;
    let mut prompt = tokenizer.encode(&a.prompt);
    if prompt.is_empty() {
        prompt.push(data::EOT_TOKEN); // unconditional sample: start from a document boundary
    }
    if a.temperature <= 0.0 {
        bail!("--temperature must be > 0, got {}", a.temperature);
    }
    let opts = SampleOptions {
        max_new_tokens: a.tokens,
        temperature: a.temperature,
        top_k: a.top_k,
        context: cfg.n_positions,
    };
    let new = generate(&gpt, &prompt, &opts, &mut Rng::new(a.seed), &device)?;
    println!("{}{}", a.prompt, tokenizer.decode(&new));
    Ok(())
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    let config = load_config(&a.config)?;
    let r = bench(
        &config,
        BenchOptions {
            warmup_steps: a.warmup,
            timed_steps: a.steps,
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let rows: Vec<(String, String)> = [
        ("device", r.device.clone()),
        ("threads", r.threads.to_string()),
        ("parameters", r.params.to_string()),
        (
            "batch x accum x context",
            format!("{} x {} x {}", r.batch_size, r.grad_accum, r.context),
        ),
        ("forward ms (median)", format!("{:.1}", r.forward_ms)),
        ("backward ms (median)", format!("{:.1}", r.backward_ms)),
        ("optimizer ms (median)", format!("{:.1}", r.optimizer_ms)),
        ("step ms (median)", format!("{:.1}", r.step_ms)),
        ("tokens/s", format!("{:.0}", r.tokens_per_s)),
        ("FLOPs/token", format!("{:.3e}", r.flops_per_token)),
        (
            "measured matmul peak GFLOP/s",
            format!("{:.1}", r.peak_flops / 1e9),
        ),
        ("MFU", format!("{:.1}%", r.mfu * 100.0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    println!("{}", config_table(&rows));
    Ok(())
}

fn ledger_cmd(a: LedgerArgs) -> Result<()> {
    let report = ledger::build_report(
        &a.run,
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

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let config = Config::load(&a.run.join("config.toml"), &[])?;
    set_threads(config.run.threads)?;
    let device = select_device(&a.device)?;
    let overrides = EvalOverrides {
        tasks: a.tasks,
        tasks_dir: a.tasks_dir,
        task_limit: a.limit,
        ppl_max_tokens: a.ppl_tokens,
        stride: a.stride,
        batch_size: a.batch_size,
        quiet: false,
    };
    let r = eval::evaluate_checkpoint(
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
