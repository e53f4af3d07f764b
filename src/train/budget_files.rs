//! The run's budget at the start: the reference throughput (measured if asked), the plan for
//! this config and policy, and `budget.json` / `reference_throughput.json` in the run directory.

use std::path::Path;

use super::TrainError;
use crate::budget::{self, BudgetPlan, ThroughputReference};
use crate::config::Config;
use crate::fsutil::{from_checksummed_json, to_checksummed_json};
use crate::sampling::SamplingPolicy;

/// Measures the reference throughput before step 0 (`measure_throughput = true`), with
/// Languini's warm-up and timed rounds.
pub(super) fn measure_reference(config: &Config) -> Result<ThroughputReference, TrainError> {
    eprintln!("budget: measuring the reference throughput (random tokens, fwd+bwd+optimizer)...");
    let r = budget::measure(config, budget::LANGUINI_WARMUP, budget::LANGUINI_TIMED)?;
    Ok(r)
}

/// The budget as steps for this config and policy.
pub(super) fn budget_plan(
    config: &Config,
    policy: &dyn SamplingPolicy,
    reference: Option<ThroughputReference>,
) -> Result<BudgetPlan, TrainError> {
    let ctx = config.context();
    let n = config.train.sequences_per_step();
    let plan = BudgetPlan::new(
        config.budget.amount(),
        config.train.tokens_per_step(ctx),
        (policy.scored_per_step(n) * ctx) as u64,
        config.arch().flops_per_token(ctx),
        reference,
        config.budget.wall_clock_hours,
        config.budget.rounding,
    )?;
    if config.schedule.warmup_steps > plan.planned_steps {
        return Err(TrainError::Budget(budget::BudgetError::WarmupTooLong {
            warmup: config.schedule.warmup_steps,
            planned: plan.planned_steps,
        }));
    }
    Ok(plan)
}

/// `budget.json` (the plan) and `reference_throughput.json` in a fresh run directory.
pub(super) fn write_budget_files(run_dir: &Path, plan: &BudgetPlan) -> Result<(), TrainError> {
    if let Some(r) = &plan.reference {
        r.write(&run_dir.join(budget::REFERENCE_FILE))?;
    }
    write_plan(&run_dir.join(budget::PLAN_FILE), &plan_bytes(plan)?)
}

/// On resume, `budget.json` must be the plan the run computes again from its config and saved
/// reference (it is derived state, read by `sweep`): a missing, corrupt or stale file is
/// rewritten, and the rewrite is reported.
pub(super) fn refresh_budget_file(run_dir: &Path, plan: &BudgetPlan) -> Result<(), TrainError> {
    let path = run_dir.join(budget::PLAN_FILE);
    let current = plan_bytes(plan)?;
    let why = match std::fs::read(&path) {
        Ok(bytes) if bytes == current => return Ok(()),
        Ok(bytes) => match from_checksummed_json::<serde_json::Value>(&bytes, true) {
            Err(e) => e.to_string(),
            Ok(_) => "differs from the plan the config gives".to_string(),
        },
        Err(e) => e.to_string(),
    };
    eprintln!("{}: {why}; rewritten from the config", path.display());
    write_plan(&path, &current)
}

fn plan_bytes(plan: &BudgetPlan) -> Result<Vec<u8>, TrainError> {
    to_checksummed_json(plan).map_err(|e| TrainError::RunDir(format!("budget plan: {e}")))
}

fn write_plan(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    crate::fsutil::write_atomic(path, bytes).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}
