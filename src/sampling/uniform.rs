//! `uniform`: shuffled epochs over all blocks (sampling without replacement), the baseline every
//! curriculum is compared with; each epoch is a fresh permutation drawn from the policy seed.
//!
//! No parameters (`[sampling.uniform]` must be empty). Report: phase 0 `uniform`, active
//! fraction 1, epoch = pass index.

use serde::{Deserialize, Serialize};

use super::params::{block_count, check_ledger, load_state, no_params, save_state};
use super::passes::{PassCursor, ShuffledPasses};
use super::{PolicyEnv, PolicyReport, SamplingError, SamplingPolicy, Selection};
use crate::ledger::LedgerRead;
use crate::rng::Rng;

pub(crate) const NAME: &str = "uniform";

#[derive(Serialize, Deserialize)]
struct UniformState {
    cursor: PassCursor,
}

pub struct Uniform {
    n_blocks: u32,
    passes: ShuffledPasses,
}

pub(crate) fn construct(
    params: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    no_params(NAME, params)?;
    Ok(Box::new(Uniform::new(env)?))
}

impl Uniform {
    pub fn new(env: &PolicyEnv) -> Result<Self, SamplingError> {
        Ok(Self {
            n_blocks: block_count(NAME, env)?,
            passes: ShuffledPasses::new(Rng::new(env.seed)),
        })
    }

    fn all_ids(&self) -> Vec<u32> {
        (0..self.n_blocks).collect()
    }
}

impl SamplingPolicy for Uniform {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, _ledger: &dyn LedgerRead, _step: u64) -> Selection {
        if self.passes.cursor().passes == 0 {
            self.passes.begin(self.all_ids(), true);
        }
        let ids = (0..n)
            .filter_map(|_| self.passes.take_cycling())
            .map(|id| id as usize)
            .collect();
        Selection::ids(ids)
    }

    fn save_state(&self) -> serde_json::Value {
        save_state(
            NAME,
            &UniformState {
                cursor: self.passes.cursor().clone(),
            },
        )
    }

    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        check_ledger(NAME, self.n_blocks, ledger)?;
        let s: UniformState = load_state(NAME, state)?;
        let members = if s.cursor.passes > 0 {
            self.all_ids()
        } else {
            Vec::new()
        };
        self.passes = ShuffledPasses::restore(members, true, s.cursor)
            .map_err(|m| SamplingError::state(NAME, m))?;
        Ok(())
    }

    fn report(&self) -> PolicyReport {
        PolicyReport {
            phase: 0,
            phase_name: NAME.into(),
            active_fraction: 1.0,
            epoch: self.passes.cursor().passes.saturating_sub(1),
            extra: Vec::new(),
        }
    }
}
