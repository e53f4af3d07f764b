//! The `syllabus` command line: command definitions (clap) and their thin handlers, one file
//! per group of commands. [`main`] is the whole program, so a binary of a user's own that
//! registers plugins gets every command:
//!
//! ```no_run
//! use syllabus::plugins::Plugins;
//!
//! fn main() -> std::process::ExitCode {
//!     let mut plugins = Plugins::builtin();
//!     // plugins.policies.register("my-policy", my_policy::construct).expect("a new name");
//!     // plugins.models.register("my-arch", my_arch::construct).expect("a new name");
//!     syllabus::cli::main(plugins)
//! }
//! ```

mod analysis;
mod curate;
mod export;
mod perf;
mod run;
mod tokenizer;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::plugins::Plugins;

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
    /// Tokenize text (.txt, .jsonl, .gz/.zst, .parquet, directories, globs) into a
    /// memory-mapped token store.
    Prepare(run::PrepareArgs),
    /// Train a byte-level BPE tokenizer (a tokenizer.json for `prepare --tokenizer`).
    #[command(subcommand)]
    Tokenizer(tokenizer::TokenizerCommand),
    /// Curate a corpus before `prepare` (DCLM-style): dedup, heuristic and quality filters,
    /// mixing; or `curate train-classifier` for the quality filter's fastText model.
    Curate(curate::CurateArgs),
    /// Check a prepared-data directory completely: manifest checksum, every token store and
    /// document index (header, length, content checksum, token range) against the manifest.
    /// One line per file; exit status 1 if any fails.
    Verify(run::VerifyArgs),
    /// Train a GPT-2 model from a TOML config.
    Train(run::TrainArgs),
    /// Generate text from a run's newest checkpoint.
    Sample(run::SampleArgs),
    /// Measure training throughput (random tokens, after warm-up).
    Bench(perf::BenchArgs),
    /// Measure the reference throughput that converts accelerator-hour budgets into steps
    /// (Languini's protocol) and write it as JSON for `[budget] throughput_file`.
    Throughput(perf::ThroughputArgs),
    /// Check one backward pass on run.device / train.precision against the CPU in f32.
    CheckGrads(perf::CheckGradsArgs),
    /// Inspect a run's per-block loss ledger (safe while the run is training).
    Ledger(analysis::LedgerArgs),
    /// Run a grid of models x compute classes x policies x seeds (resumable) and write
    /// results.csv, summary.md and plots.
    Sweep(analysis::SweepArgs),
    /// Fit a scaling law to a loss table (our results.csv or a ColPret-format CSV).
    Fit(analysis::FitArgs),
    /// Evaluate a run's checkpoint: normalised perplexity and zero-shot tasks (RUN/eval.json).
    Eval(analysis::EvalArgs),
    /// Write a run's checkpoint as a Hugging Face directory (GPT2LMHeadModel, LlamaForCausalLM).
    Export(export::ExportArgs),
}

/// Runs the command named by the process's arguments with the policies of `registry`, prints
/// an error (with its causes) on failure and returns the exit status.
pub fn main(plugins: Plugins) -> ExitCode {
    tune_allocator();
    match run(&plugins, std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", render(&err));
            ExitCode::FAILURE
        }
    }
}

/// Runs the command in `args` (the program name first, as in `std::env::args_os`). As with
/// any clap program, `--help`, `--version` and malformed arguments print and exit the process.
pub fn run<I, T>(plugins: &Plugins, args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::parse_from(args).command {
        Command::Prepare(a) => run::prepare(a),
        Command::Tokenizer(c) => tokenizer::run(c),
        Command::Curate(a) => curate::curate_cmd(a),
        Command::Verify(a) => run::verify(a),
        Command::Train(a) => run::train_cmd(a, plugins),
        Command::Sample(a) => run::sample(a, plugins),
        Command::Bench(a) => perf::bench_cmd(a, plugins),
        Command::Throughput(a) => perf::throughput_cmd(a, plugins),
        Command::Sweep(a) => analysis::sweep_cmd(a, plugins),
        Command::CheckGrads(a) => perf::check_grads_cmd(a, plugins),
        Command::Ledger(a) => analysis::ledger_cmd(a),
        Command::Fit(a) => analysis::fit_cmd(a),
        Command::Eval(a) => analysis::eval_cmd(a, plugins),
        Command::Export(a) => export::export(a, plugins),
    }
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

/// `dir` if it is a run directory holding `needed` (a file `syllabus train` writes there),
/// else an error that says what `--run` expects.
fn run_directory<'a>(dir: &'a Path, needed: &str) -> Result<&'a Path> {
    if !dir.is_dir() {
        bail!(
            "{}: no such run directory (pass the directory `syllabus train` wrote, \
             by default runs/<run.name>)",
            dir.display()
        );
    }
    if !dir.join(needed).is_file() {
        bail!(
            "{} is not a run directory: it has no {needed}, which `syllabus train` writes \
             when a run starts",
            dir.display()
        );
    }
    Ok(dir)
}

/// Sets the process-wide thread count of rayon and candle to `run.threads` (0 keeps their
/// default). Must run before either starts its pool: bit-exact CPU determinism holds per
/// thread count.
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

/// The error and its causes joined by ": ", leaving out a cause whose text the message already
/// holds (library errors embed their OS error's text, which `{:#}` would print a second time).
fn render(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// Keeps freed memory in glibc's heap instead of returning it to the kernel. A training step
/// allocates and frees several [B*T, V] buffers (412 MB each for the tiny model); with glibc's
/// defaults every one is a fresh mmap whose pages the kernel must zero again, which measured
/// ~20% of a CPU step (1000 -> 820 ms on the tiny preset, 2 cores).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
