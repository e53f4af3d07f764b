//! A fixed compute budget per run (Languini's compute classes, arXiv 2309.11197).
//!
//! `[budget]` names one amount (steps, tokens, FLOPs or reference accelerator-hours); with a
//! reference throughput it becomes a step count before step 0 ([`BudgetPlan`]), the LR schedule
//! is laid out over exactly those steps, and a [`BudgetMeter`] charges every trained token and
//! every forward-only token a policy asks to score, until the budget is spent. Usage is saved in
//! checkpoints, so a resumed run continues the same budget.
//!
//! Files in the run directory: `reference_throughput.json` (the rate the run converts with:
//! measured, copied from `throughput_file`, or given as a number; never re-measured, also not on
//! resume) and `budget.json` (the plan).

mod meter;
mod plan;
mod reference;

pub use crate::config::{class_hours, BudgetAmount, BudgetConfig, StepRounding, COMPUTE_CLASSES};
pub use meter::{
    plan_wall_decay, Activity, BudgetMeter, BudgetUsage, StopReason, WallDecay, WallSeconds,
};
pub use plan::BudgetPlan;
pub use reference::{
    measure, ThroughputReference, FORWARD_COST_BY_FLOPS, LANGUINI_TIMED, LANGUINI_WARMUP,
    THROUGHPUT_FORMAT, THROUGHPUT_VERSION,
};

use std::path::{Path, PathBuf};

use crate::config::Config;

/// The reference throughput a run uses, in its run directory.
pub const REFERENCE_FILE: &str = "reference_throughput.json";
/// The run's budget plan, written at the start.
pub const PLAN_FILE: &str = "budget.json";

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("reference throughput {path}: {message}")]
    Reference { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("accelerator hours need a reference throughput")]
    NoReference,
    #[error(
        "budget {amount:?} is less than one step: {units:.0} train-token units, one step costs \
         {per_step:.0}"
    )]
    LessThanOneStep {
        amount: BudgetAmount,
        units: f64,
        per_step: f64,
    },
    #[error("schedule.warmup_steps ({warmup}) exceeds the {planned} steps the budget buys")]
    WarmupTooLong { warmup: u64, planned: u64 },
    #[error("measuring the reference throughput: {0}")]
    Measure(#[from] crate::perf::PerfError),
}

/// Where the reference comes from before any run directory is touched.
pub enum ReferenceSource {
    None,
    Ready(Box<ThroughputReference>),
    /// `measure_throughput = true` on a fresh run: measured after all input is validated.
    Measure,
}

/// Resolves `config`'s reference: on resume the run directory's copy (never re-measured);
/// otherwise the file, the number, or a pending measurement.
pub fn reference_source(
    config: &Config,
    run_dir: &Path,
    resume: bool,
) -> Result<ReferenceSource, BudgetError> {
    let b = &config.budget;
    let model = config.arch().as_ref();
    let saved = run_dir.join(REFERENCE_FILE);
    if resume && b.measure_throughput && !saved.exists() {
        return Err(BudgetError::Reference {
            path: saved,
            message: "missing: the run measured its reference throughput at the start and \
                      must not re-measure it on resume"
                .into(),
        });
    }
    let r = if resume && saved.exists() {
        ThroughputReference::read(&saved, model)?
    } else if let Some(path) = &b.throughput_file {
        ThroughputReference::read(path, model)?
    } else if let Some(tps) = b.tokens_per_s {
        let t = &config.train;
        ThroughputReference::from_rate(tps, t.batch_size, t.grad_accum, config.context())
    } else if b.measure_throughput {
        return Ok(ReferenceSource::Measure);
    } else {
        return Ok(ReferenceSource::None);
    };
    Ok(ReferenceSource::Ready(Box::new(r)))
}
