//! Drive a training run from Rust instead of the CLI: load a config, override a few fields,
//! train, and read the summary.
//!
//! cargo run --release --example train_from_code -- configs/tiny.toml 50

use syllabus::config::Config;
use syllabus::train::{train, TrainOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "configs/tiny.toml".into());
    let steps: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);
    let overrides = [
        format!("budget.steps={steps}"),
        format!("schedule.warmup_steps={}", steps.min(10)),
        "run.name=from-code".to_string(),
    ];
    let config = Config::load(path.as_ref(), &overrides)?;
    let summary = train(
        &config,
        &TrainOptions {
            overwrite: true,
            ..Default::default()
        },
    )?;
    println!(
        "{} steps, {} tokens: val loss {:.4} (unigram baseline {:.4})",
        summary.steps, summary.tokens_seen, summary.final_eval.loss, summary.unigram_entropy
    );
    Ok(())
}
