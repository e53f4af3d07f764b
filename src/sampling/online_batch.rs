//! `online-batch`: online batch selection (Loshchilov & Hutter 2015, arXiv 1511.06343; the
//! "big batch, train on the hardest" baseline of Mindermann et al. 2022, arXiv 2206.07137).
//!
//! Each step asks for a candidate pool of `pool_factor x n` uniformly drawn blocks to be scored
//! with a forward-only pass on the updated weights; the next step trains on the `n` candidates
//! with the highest current loss. Unlike the ledger's losses (from each block's last training
//! pass, possibly many steps old), pool scores are fresh, which is what the scoring pass buys,
//! and it is charged to the compute budget: at the default factor 2 and a forward pass
//! costing a third of a training step, 3/5 of the steps a non-scoring policy gets.
//!
//! ```toml
//! [sampling]
//! policy = "online-batch"
//! [sampling.online-batch]
//! pool_factor = 2.0   # candidates scored per trained sequence, >= 1
//! ```
//!
//! The first step (no pool yet) trains on uniform draws. Report: phase 0, active fraction 1,
//! extra `pool_mean_loss`, `selected_mean_loss`.

use serde::{Deserialize, Serialize};

use super::params::{
    block_count, check_ledger, check_problems, load_state, parse_params, save_state,
};
use super::{PolicyEnv, PolicyReport, SamplingError, SamplingPolicy, Selection, StateUpdate};
use crate::ledger::LedgerRead;
use crate::rng::Rng;

pub(crate) const NAME: &str = "online-batch";

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineBatchParams {
    /// Candidates scored per trained sequence (>= 1). Default 2.
    pub pool_factor: f64,
}

impl Default for OnlineBatchParams {
    fn default() -> Self {
        Self { pool_factor: 2.0 }
    }
}

#[derive(Serialize, Deserialize)]
struct OnlineBatchState {
    rng: Rng,
    /// Scored candidates `(id, loss)` waiting for the next step.
    pool: Vec<(u32, f32)>,
}

pub struct OnlineBatch {
    params: OnlineBatchParams,
    n_blocks: u32,
    rng: Rng,
    pool: Vec<(u32, f32)>,
    selected_mean: f64,
}

pub(crate) fn construct(
    params: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    let p: OnlineBatchParams = parse_params(NAME, params)?;
    let problems = match p.pool_factor.is_finite() && p.pool_factor >= 1.0 {
        true => Vec::new(),
        false => vec![format!("pool_factor must be >= 1, got {}", p.pool_factor)],
    };
    check_problems(NAME, problems)?;
    Ok(Box::new(OnlineBatch {
        params: p,
        n_blocks: block_count(NAME, env)?,
        rng: Rng::new(env.seed),
        pool: Vec::new(),
        selected_mean: f64::NAN,
    }))
}

impl OnlineBatch {
    fn pool_size(&self, n: usize) -> usize {
        (self.params.pool_factor * n as f64).round() as usize
    }

    fn draw(&mut self, k: usize) -> Vec<usize> {
        (0..k)
            .map(|_| self.rng.below(u64::from(self.n_blocks)) as usize)
            .collect()
    }

    /// The `n` highest-loss candidates (ties: lower id first), consuming the pool.
    fn hardest(&mut self, n: usize) -> Vec<usize> {
        let mut pool = std::mem::take(&mut self.pool);
        pool.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        pool.truncate(n);
        self.selected_mean =
            pool.iter().map(|&(_, l)| f64::from(l)).sum::<f64>() / pool.len().max(1) as f64;
        pool.into_iter().map(|(id, _)| id as usize).collect()
    }
}

impl SamplingPolicy for OnlineBatch {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, _ledger: &dyn LedgerRead, _step: u64) -> Selection {
        let mut ids = match self.pool.len() >= n {
            true => self.hardest(n),
            false => Vec::new(),
        };
        // Too few finite scores (or the first step): fill with uniform draws.
        let missing = n - ids.len();
        ids.extend(self.draw(missing));
        let score = self.draw(self.pool_size(n));
        Selection {
            ids,
            state_updates: Vec::new(),
            score,
        }
    }

    fn scored_per_step(&self, n: usize) -> usize {
        self.pool_size(n)
    }

    fn observe_scored(&mut self, ids: &[usize], losses: &[f32], _step: u64) -> Vec<StateUpdate> {
        self.pool = ids
            .iter()
            .zip(losses)
            .filter(|(_, l)| l.is_finite())
            .map(|(&id, &l)| (id as u32, l))
            .collect();
        Vec::new()
    }

    fn save_state(&self) -> serde_json::Value {
        let state = OnlineBatchState {
            rng: self.rng.clone(),
            pool: self.pool.clone(),
        };
        save_state(NAME, &state)
    }

    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        check_ledger(NAME, self.n_blocks, ledger)?;
        let s: OnlineBatchState = load_state(NAME, state)?;
        if let Some(&(id, _)) = s.pool.iter().find(|(id, _)| *id >= self.n_blocks) {
            return Err(SamplingError::state(
                NAME,
                format!("pool block {id} out of range"),
            ));
        }
        self.rng = s.rng;
        self.pool = s.pool;
        Ok(())
    }

    fn report(&self) -> PolicyReport {
        let pool_mean = self.pool.iter().map(|&(_, l)| f64::from(l)).sum::<f64>()
            / self.pool.len().max(1) as f64;
        PolicyReport {
            phase: 0,
            phase_name: NAME.into(),
            active_fraction: 1.0,
            epoch: 0,
            extra: vec![
                ("pool_mean_loss".into(), pool_mean),
                ("selected_mean_loss".into(), self.selected_mean),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::BlockRecord;

    fn policy(pool_factor: f64) -> Box<dyn SamplingPolicy> {
        let mut t = toml::Table::new();
        t.insert("pool_factor".into(), toml::Value::Float(pool_factor));
        let env = PolicyEnv {
            n_blocks: 50,
            seed: 3,
            tokens_per_block: 9,
        };
        construct(&t, &env).unwrap()
    }

    #[test]
    fn trains_on_the_hardest_scored_candidates() {
        let mut p = policy(2.0);
        let ledger = vec![BlockRecord::default(); 50];
        let first = p.next_batch(4, &ledger, 0);
        assert_eq!((first.ids.len(), first.score.len()), (4, 8));
        assert_eq!(p.scored_per_step(4), 8);
        let losses: Vec<f32> = (0..8).map(|i| i as f32).collect();
        p.observe_scored(&first.score, &losses, 0);
        let second = p.next_batch(4, &ledger, 1);
        let want: Vec<usize> = first.score[4..].iter().rev().copied().collect();
        let mut got = second.ids.clone();
        let mut want_sorted = want.clone();
        got.sort_unstable();
        want_sorted.sort_unstable();
        assert_eq!(got, want_sorted, "the 4 highest-loss candidates");
    }

    #[test]
    fn non_finite_scores_are_ignored_and_state_round_trips() {
        let mut p = policy(1.5);
        let ledger = vec![BlockRecord::default(); 50];
        let sel = p.next_batch(2, &ledger, 0);
        assert_eq!(sel.score.len(), 3);
        p.observe_scored(&sel.score, &[f32::NAN, 1.0, 2.0], 0);
        let saved = p.save_state();
        let mut q = policy(1.5);
        q.restore_state(&saved, &ledger).unwrap();
        assert_eq!(p.next_batch(2, &ledger, 1), q.next_batch(2, &ledger, 1));
    }

    #[test]
    fn pool_factor_below_one_is_rejected() {
        let mut t = toml::Table::new();
        t.insert("pool_factor".into(), toml::Value::Float(0.5));
        let env = PolicyEnv {
            n_blocks: 5,
            seed: 0,
            tokens_per_block: 9,
        };
        let err = construct(&t, &env).err().expect("error").to_string();
        assert!(err.contains("pool_factor must be >= 1"), "{err}");
    }
}
