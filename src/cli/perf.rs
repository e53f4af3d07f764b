//! `bench`, `throughput`, `check-grads`: speed, the budget's reference rate, gradient checks.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::config::Config;
use crate::logging::console::config_table;
use crate::perf::{bench, check_grads, BenchOptions, GradCheckReport, Tolerance};
use crate::plugins::Plugins;

use super::{set_threads, ConfigArgs};

#[derive(Args)]
pub(super) struct BenchArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Vocabulary size for this timing only (random tokens need no tokenizer), e.g. to time
    /// the lm_head of a smaller trained tokenizer. Default: the model config's.
    #[arg(long)]
    vocab_size: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct ThroughputArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output JSON file.
    #[arg(long, default_value = "reference_throughput.json")]
    out: PathBuf,
    /// Warm-up steps (Languini: 5).
    #[arg(long, default_value_t = crate::budget::LANGUINI_WARMUP)]
    warmup: usize,
    /// Timed steps; tokens/s uses their mean (Languini: ~15).
    #[arg(long, default_value_t = crate::budget::LANGUINI_TIMED)]
    steps: usize,
    /// Micro-batch sizes to try (comma-separated); the fastest is kept, as Languini's sweep
    /// does. Default: the config's train.batch_size.
    #[arg(long, value_delimiter = ',')]
    batch_sizes: Vec<usize>,
}

#[derive(Args)]
pub(super) struct CheckGradsArgs {
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

pub(super) fn bench_cmd(a: BenchArgs, plugins: &Plugins) -> Result<()> {
    if a.steps == 0 {
        bail!("--steps must be at least 1 (the timed steps)");
    }
    let mut config = Config::load_with(&a.config.config, &a.config.set, &plugins.models)?;
    set_threads(config.run.threads)?;
    match a.vocab_size {
        Some(0) => bail!("--vocab-size must be > 0"),
        Some(v) => config
            .set_vocab_size(v, &plugins.models)
            .map_err(|p| anyhow::anyhow!("--vocab-size {v}: {}", p.join("; ")))?,
        None => {}
    }
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
        ("kernels", r.kernels.clone()),
        ("threads", r.threads.to_string()),
        ("model", format!("{} {}", r.arch, inline_table(&r.shape))),
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

pub(super) fn throughput_cmd(a: ThroughputArgs, plugins: &Plugins) -> Result<()> {
    if a.steps == 0 {
        bail!("--steps must be at least 1 (the timed steps)");
    }
    let base = Config::load_with(&a.config.config, &a.config.set, &plugins.models)?;
    set_threads(base.run.threads)?;
    let sizes = match a.batch_sizes.is_empty() {
        true => vec![base.train.batch_size],
        false => a.batch_sizes.clone(),
    };
    let mut best: Option<crate::budget::ThroughputReference> = None;
    for b in sizes {
        let mut set = a.config.set.clone();
        set.push(format!("train.batch_size={b}"));
        let config = Config::load_with(&a.config.config, &set, &plugins.models)?;
        let r = crate::budget::measure(&config, a.warmup, a.steps)
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
    for (name, hours) in crate::budget::COMPUTE_CLASSES {
        let steps = (hours * 3600.0 * r.tokens_per_s / tokens_per_step).floor();
        rows.push((format!("steps for class {name}"), format!("{steps:.0}")));
    }
    println!("{}", config_table(&rows));
    println!("wrote {}", a.out.display());
    Ok(())
}

pub(super) fn check_grads_cmd(a: CheckGradsArgs, plugins: &Plugins) -> Result<()> {
    let config = Config::load_with(&a.config.config, &a.config.set, &plugins.models)?;
    set_threads(config.run.threads)?;
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

/// `k = v, ...` of a shape table, in key order.
fn inline_table(t: &toml::Table) -> String {
    let fields: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    fields.join(", ")
}
