//! A sampling policy written outside the crate and plugged into syllabus through the registry.
//!
//! `source-balanced` gives every corpus source (the ledger's `source` id, from the `source`
//! field of the prepared data) the same share of samples, round-robin, with shuffled epochs
//! inside each source: a small source is repeated more often, a large one subsampled. It shows
//! the whole contract: its own params table with unknown keys rejected, per-block data read from
//! the ledger, checkpointable state, and a report.
//!
//! `cargo run --release --example custom_policy` picks a few batches on an in-memory ledger;
//! `cargo run --release --example custom_policy -- configs/tiny.toml 30` also trains 30 steps
//! with it ([`train_with`]). In a config, after registering the policy in your own binary:
//!
//! ```toml
//! [sampling]
//! policy = "source-balanced"
//! [sampling.source-balanced]
//! skip_sources = [3]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use syllabus::ledger::{BlockRecord, LedgerRead};
use syllabus::rng::Rng;
use syllabus::sampling::{
    check_problems, parse_params, PolicyEnv, PolicyReport, Registry, SamplingError, SamplingPolicy,
    Selection,
};

pub const NAME: &str = "source-balanced";

/// `[sampling.source-balanced]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceBalancedParams {
    /// Source ids never sampled (default: none).
    #[serde(default)]
    pub skip_sources: Vec<u16>,
}

/// One source's blocks and its position in the current shuffled pass.
struct SourceList {
    source: u16,
    ids: Vec<u32>,
    position: usize,
    pass_seed: u64,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    seeds: Rng,
    next_source: usize,
    /// (source, position, pass seed) per source.
    cursors: Vec<(u16, usize, u64)>,
}

pub struct SourceBalanced {
    skip: Vec<u16>,
    seeds: Rng,
    lists: Vec<SourceList>,
    next_source: usize,
    n_blocks: usize,
}

/// The registry entry: parses and validates the params, then builds the policy.
pub fn construct(
    params: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    let p: SourceBalancedParams = parse_params(NAME, params)?;
    let problems = (env.n_blocks == 0)
        .then(|| "needs at least one block".to_string())
        .into_iter()
        .collect();
    check_problems(NAME, problems)?;
    Ok(Box::new(SourceBalanced {
        skip: p.skip_sources,
        seeds: Rng::new(env.seed),
        lists: Vec::new(),
        next_source: 0,
        n_blocks: env.n_blocks,
    }))
}

impl SourceBalanced {
    /// Groups block ids by source (ascending ids), skipping the excluded sources. O(N), once.
    fn group(&self, ledger: &dyn LedgerRead) -> Vec<SourceList> {
        let mut by_source: BTreeMap<u16, Vec<u32>> = BTreeMap::new();
        for id in 0..ledger.len() {
            let source = ledger.record(id).source;
            if !self.skip.contains(&source) {
                by_source.entry(source).or_default().push(id as u32);
            }
        }
        let list = |(source, ids)| SourceList {
            source,
            ids,
            position: 0,
            pass_seed: 0,
        };
        by_source.into_iter().map(list).collect()
    }

    fn next_id(&mut self) -> Option<u32> {
        let k = self.next_source % self.lists.len().max(1);
        self.next_source = self.next_source.wrapping_add(1);
        let list = self.lists.get_mut(k)?;
        if list.position == list.ids.len() {
            list.ids.sort_unstable();
            list.pass_seed = self.seeds.next_u64();
            Rng::new(list.pass_seed).shuffle(&mut list.ids);
            list.position = 0;
        }
        let id = list.ids.get(list.position).copied();
        list.position += 1;
        id
    }
}

impl SamplingPolicy for SourceBalanced {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, ledger: &dyn LedgerRead, _step: u64) -> Selection {
        if self.lists.is_empty() {
            self.lists = self.group(ledger);
            // Every list starts "exhausted" so its first pass is shuffled on first use.
            self.lists.iter_mut().for_each(|l| l.position = l.ids.len());
        }
        let ids = (0..n)
            .filter_map(|_| self.next_id())
            .map(|id| id as usize)
            .collect();
        Selection::ids(ids)
    }

    fn save_state(&self) -> serde_json::Value {
        let cursors = self
            .lists
            .iter()
            .map(|l| (l.source, l.position, l.pass_seed))
            .collect();
        let saved = Saved {
            seeds: self.seeds.clone(),
            next_source: self.next_source,
            cursors,
        };
        serde_json::to_value(saved).unwrap_or_default()
    }

    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        let bad = |m: String| SamplingError::State {
            policy: NAME.into(),
            message: m,
        };
        let saved = Saved::deserialize(state).map_err(|e| bad(e.to_string()))?;
        let mut lists = if saved.cursors.is_empty() {
            Vec::new()
        } else {
            self.group(ledger)
        };
        if lists.len() != saved.cursors.len() {
            return Err(bad(
                "the ledger's sources differ from the checkpoint's".into()
            ));
        }
        for (list, &(source, position, pass_seed)) in lists.iter_mut().zip(&saved.cursors) {
            if list.source != source || position > list.ids.len() {
                return Err(bad(format!("source {source} does not match the ledger")));
            }
            if pass_seed != 0 {
                Rng::new(pass_seed).shuffle(&mut list.ids);
            }
            list.position = position;
            list.pass_seed = pass_seed;
        }
        self.lists = lists;
        self.seeds = saved.seeds;
        self.next_source = saved.next_source;
        Ok(())
    }

    fn report(&self) -> PolicyReport {
        let eligible: usize = self.lists.iter().map(|l| l.ids.len()).sum();
        PolicyReport {
            phase: 0,
            phase_name: NAME.into(),
            active_fraction: eligible as f64 / self.n_blocks.max(1) as f64,
            epoch: 0,
            extra: vec![("sources".into(), self.lists.len() as f64)],
        }
    }
}

/// An in-memory ledger of 90 blocks from three sources of 60, 20 and 10 blocks.
pub fn demo_ledger() -> Vec<BlockRecord> {
    (0..90)
        .map(|id| {
            BlockRecord::unseen(if id < 60 {
                0
            } else if id < 80 {
                1
            } else {
                2
            })
        })
        .collect()
}

/// The built-in registry plus `source-balanced`.
pub fn registry() -> Result<Registry, SamplingError> {
    let mut registry = Registry::builtin();
    registry.register(NAME, construct)?;
    Ok(registry)
}

/// Picks `steps` batches of `n` with policy `name` on the demo ledger; returns the batches and
/// each source's share of the samples.
pub fn pick(
    name: &str,
    steps: usize,
    n: usize,
) -> Result<(Vec<Vec<usize>>, Vec<f64>), SamplingError> {
    let ledger = demo_ledger();
    let env = PolicyEnv {
        n_blocks: ledger.len(),
        seed: 7,
        tokens_per_block: 129,
    };
    let params: toml::Table = toml::from_str("skip_sources = []").unwrap_or_default();
    let params = if name == NAME {
        params
    } else {
        toml::Table::new()
    };
    let mut policy = registry()?.create(name, &params, &env)?;
    let batches: Vec<Vec<usize>> = (0..steps)
        .map(|step| policy.next_batch(n, &ledger, step as u64).ids)
        .collect();
    let mut counts = [0usize; 3];
    batches
        .iter()
        .flatten()
        .for_each(|&id| counts[ledger[id].source as usize] += 1);
    let total = (steps * n).max(1) as f64;
    Ok((batches, counts.iter().map(|&c| c as f64 / total).collect()))
}

/// Trains `steps` steps of the config at `path` with this policy selected, through the same
/// trainer as `syllabus train` (`train_with_registry` takes the extended registry).
pub fn train_with(
    path: &std::path::Path,
    steps: u64,
) -> Result<syllabus::train::TrainSummary, Box<dyn std::error::Error>> {
    let overrides = [
        format!("sampling.policy={NAME}"),
        format!("budget.steps={steps}"),
        format!("schedule.warmup_steps={}", steps.min(10)),
        "run.name=custom-policy".to_string(),
    ];
    let config = syllabus::config::Config::load(path, &overrides)?;
    let opts = syllabus::train::TrainOptions {
        overwrite: true,
        ..Default::default()
    };
    Ok(syllabus::train::train_with_registry(
        &config,
        &opts,
        &registry()?,
    )?)
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    if let Some(config) = args.next() {
        let steps = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
        let s = train_with(config.as_ref(), steps)?;
        println!(
            "{NAME}: {} steps, val loss {:.4}",
            s.steps, s.final_eval.loss
        );
        return Ok(());
    }
    println!("registered policies: {}", registry()?.names().join(", "));
    for name in ["uniform", NAME] {
        let (batches, shares) = pick(name, 5, 6)?;
        println!("\n{name}:");
        for (step, ids) in batches.iter().enumerate() {
            println!("  step {step}: {ids:?}");
        }
        let pct: Vec<String> = shares
            .iter()
            .map(|s| format!("{:.0}%", 100.0 * s))
            .collect();
        println!(
            "  share of samples per source (60/20/10 blocks): {}",
            pct.join(" / ")
        );
    }
    Ok(())
}
