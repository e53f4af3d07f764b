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
use syllabus::perf::{bench, check_grads, BenchOptions, GradCheckReport, Tolerance};
use syllabus::rng::Rng;
use syllabus::scaling::{self, Cut, Filter, FitOptions, Form, Format, Method, UnitChoice};
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
    /// Measure the reference throughput that converts accelerator-hour budgets into steps
    /// (Languini's protocol) and write it as JSON for `[budget] throughput_file`.
    Throughput(ThroughputArgs),
    /// Check one backward pass on run.device / train.precision against the CPU in f32.
    CheckGrads(CheckGradsArgs),
    /// Inspect a run's per-block loss ledger (safe while the run is training).
    Ledger(LedgerArgs),
    /// Run a grid of models x compute classes x policies x seeds (resumable) and write
    /// results.csv, summary.md and plots.
    Sweep(SweepArgs),
    /// Fit a scaling law to a loss table (our results.csv or a ColPret-format CSV).
    Fit(FitArgs),
    /// Evaluate a run's checkpoint: normalised perplexity and zero-shot tasks (RUN/eval.json).
    Eval(EvalArgs),
}

#[derive(Args)]
struct SweepArgs {
    /// Sweep file (see configs/sweeps/).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Args)]
struct FitArgs {
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
    /// "cpu", "cuda" or "cuda:N" (needs a CUDA build).
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

#[derive(Args)]
struct ThroughputArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output JSON file.
    #[arg(long, default_value = "reference_throughput.json")]
    out: PathBuf,
    /// Warm-up steps (Languini: 5).
    #[arg(long, default_value_t = syllabus::budget::LANGUINI_WARMUP)]
    warmup: usize,
    /// Timed steps; tokens/s uses their mean (Languini: ~15).
    #[arg(long, default_value_t = syllabus::budget::LANGUINI_TIMED)]
    steps: usize,
    /// Micro-batch sizes to try (comma-separated); the fastest is kept, as Languini's sweep
    /// does. Default: the config's train.batch_size.
    #[arg(long, value_delimiter = ',')]
    batch_sizes: Vec<usize>,
}

#[derive(Args)]
struct CheckGradsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Relative L2 tolerance per gradient tensor (default: 1e-2 for f32, 5e-2 for bf16).
    #[arg(long)]
    grad_tol: Option<f64>,
    /// Relative tolerance of the loss (default: 1e-3 for f32, 5e-3 for bf16).
    #[arg(long)]
    loss_tol: Option<f64>,
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
        Command::Throughput(a) => throughput_cmd(a),
        Command::Sweep(a) => sweep_cmd(a),
        Command::CheckGrads(a) => check_grads_cmd(a),
        Command::Ledger(a) => ledger_cmd(a),
        Command::Fit(a) => fit_cmd(a),
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
        ("precision", r.precision.clone()),
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
        ("step ms (mean)", format!("{:.1}", r.step_ms_mean)),
        (
            "forward-only ms (median)",
            format!("{:.1}", r.forward_only_ms),
        ),
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

fn check_grads_cmd(a: CheckGradsArgs) -> Result<()> {
    let config = load_config(&a.config)?;
    let tolerance =
        Tolerance::default_for(config.train.precision).overridden(a.grad_tol, a.loss_tol);
    let r = check_grads(&config, Some(tolerance))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_grad_check(&r);
    }
    if !r.passed() {
        bail!(
            "gradient check failed on {} ({}):\n  - {}",
            r.device,
            r.precision,
            r.problems.join("\n  - ")
        );
    }
    Ok(())
}

fn print_grad_check(r: &GradCheckReport) {
    let mut rows = vec![
        (
            "device".to_string(),
            format!("{} ({})", r.device, r.precision),
        ),
        (
            "batch x context".to_string(),
            format!("{} x {}", r.batch_size, r.context),
        ),
        (
            "loss / CPU f32 loss".to_string(),
            format!("{:.6} / {:.6}", r.loss, r.reference_loss),
        ),
        (
            "max gradient relative error".to_string(),
            format!(
                "{:.3e} (tolerance {:.1e})",
                r.max_rel_err(),
                r.tolerance.grad
            ),
        ),
    ];
    for p in &r.params {
        rows.push((
            p.name.clone(),
            format!("norm {:.4e}, rel err {:.2e}", p.norm, p.rel_err),
        ));
    }
    println!("{}", config_table(&rows));
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

fn throughput_cmd(a: ThroughputArgs) -> Result<()> {
    let base = load_config(&a.config)?;
    let sizes = match a.batch_sizes.is_empty() {
        true => vec![base.train.batch_size],
        false => a.batch_sizes.clone(),
    };
    let mut best: Option<syllabus::budget::ThroughputReference> = None;
    for b in sizes {
        let mut set = a.config.set.clone();
        set.push(format!("train.batch_size={b}"));
        let config = Config::load(&a.config.config, &set)?;
        let r = syllabus::budget::measure(&config, a.warmup, a.steps)
            .with_context(|| format!("measuring batch size {b}"))?;
        eprintln!(
            "batch {b} x {} x {}: {:.1} tokens/s train, {:.1} forward-only",
            r.grad_accum, r.context, r.tokens_per_s, r.forward_tokens_per_s
        );
        if best.as_ref().map_or(0.0, |x| x.tokens_per_s) < r.tokens_per_s {
            best = Some(r);
        }
    }
    let r = best.context("no batch size measured")?;
    r.write(&a.out)?;
    let tokens_per_step = (r.batch_size * r.grad_accum * r.context) as f64;
    let mut rows = vec![
        ("device".to_string(), r.device.clone()),
        (
            "batch x accum x context".into(),
            format!("{} x {} x {}", r.batch_size, r.grad_accum, r.context),
        ),
        ("tokens/s (train)".into(), format!("{:.1}", r.tokens_per_s)),
        (
            "tokens/s (forward-only)".into(),
            format!("{:.1}", r.forward_tokens_per_s),
        ),
    ];
    for (name, hours) in syllabus::budget::COMPUTE_CLASSES {
        let steps = (hours * 3600.0 * r.tokens_per_s / tokens_per_step).floor();
        rows.push((format!("steps for class {name}"), format!("{steps:.0}")));
    }
    println!("{}", config_table(&rows));
    println!("wrote {}", a.out.display());
    Ok(())
}

fn sweep_cmd(a: SweepArgs) -> Result<()> {
    let r = syllabus::sweep::run_sweep(&a.config)?;
    for (label, outcome) in &r.outcomes {
        println!("{label}: {outcome:?}");
    }
    println!("{} rows -> {}", r.rows, r.dir.join("results.csv").display());
    println!("summary -> {}", r.dir.join("summary.md").display());
    Ok(())
}

fn fit_cmd(a: FitArgs) -> Result<()> {
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
