//! A sampling policy of your own, with every `syllabus` command: sources take turns, each
//! walking its own blocks in shuffled passes, so a small source is repeated and a large one
//! subsampled. Checkpoint-exact: the cursors are saved, the block lists rebuilt from the ledger.
//!
//! `cargo run --release --example custom_policy -- train --config configs/tiny.toml
//! --set sampling.policy=round-robin`

use serde::{Deserialize, Serialize};
use serde_json::Value;
use syllabus::ledger::LedgerRead;
use syllabus::rng::Rng;
use syllabus::sampling::{load_state, no_params, save_state, PassCursor, PolicyEnv};
use syllabus::sampling::{SamplingError, SamplingPolicy, Selection, ShuffledPasses};

pub const NAME: &str = "round-robin";

#[derive(Default, Serialize, Deserialize)]
pub struct RoundRobin {
    seed: u64,
    next: usize,
    #[serde(skip)] // rebuilt from the ledger and `cursors` on restore
    sources: Vec<ShuffledPasses>,
    cursors: Vec<PassCursor>,
}

pub fn construct(
    p: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    no_params(NAME, p)?;
    Ok(Box::new(RoundRobin {
        seed: env.seed,
        ..Default::default()
    }))
}

/// The ledger's sources that have blocks, each as its ascending block ids.
fn sources(ledger: &dyn LedgerRead) -> impl Iterator<Item = Vec<u32>> {
    ledger
        .blocks_by_source()
        .into_iter()
        .filter(|ids| !ids.is_empty())
}

impl SamplingPolicy for RoundRobin {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, ledger: &dyn LedgerRead, _step: u64) -> Selection {
        if self.sources.is_empty() {
            let mut seeds = Rng::new(self.seed);
            self.sources = sources(ledger)
                .map(|ids| ShuffledPasses::started(ids, seeds.fork()))
                .collect();
        }
        let mut take = |_| {
            self.next = (self.next + 1) % self.sources.len();
            self.sources[self.next].take_cycling().map(|id| id as usize)
        };
        Selection::ids((0..n).filter_map(&mut take).collect())
    }

    fn save_state(&self) -> Value {
        let cursors = self.sources.iter().map(|s| s.cursor().clone()).collect();
        save_state(
            NAME,
            &RoundRobin {
                cursors,
                sources: Vec::new(),
                ..*self
            },
        )
    }

    fn restore_state(
        &mut self,
        state: &Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        *self = load_state(NAME, state)?;
        let cursors = std::mem::take(&mut self.cursors);
        let restore = |(ids, c)| {
            ShuffledPasses::restore(ids, false, c).map_err(|e| SamplingError::state(NAME, e))
        };
        self.sources = sources(ledger)
            .zip(cursors)
            .map(restore)
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// The `syllabus` command line with this policy beside the built-in ones.
#[allow(dead_code)] // the tests include this file for `construct`
fn main() -> std::process::ExitCode {
    let mut plugins = syllabus::plugins::Plugins::builtin();
    let policies = &mut plugins.policies;
    policies
        .register(NAME, construct)
        .expect("a name of its own");
    syllabus::cli::main(plugins)
}
