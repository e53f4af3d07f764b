//! `lfr`: Learn-Focus-Review (Prakriya et al., arXiv 2409.06131).
//!
//! The model first learns from every block, then focuses on the blocks it finds hard (dropping
//! the lowest-loss share), then reviews everything (re-recording every block's loss, because the
//! trainer records the loss of every trained block), then focuses again. The schedule is data
//! ([`LfrParams`]); after its last phase the policy keeps sampling with that phase.
//!
//! Within a phase: shuffled epochs over the active blocks. At a phase boundary (once per phase,
//! O(N) plus an O(N) average `select_nth_unstable` over the candidates): rank, drop, and emit a
//! `StateUpdate` for every block whose ledger `policy_state` (0 active, 1 dropped) changes.
//! Never-seen blocks (NaN score) count as the hardest and are never dropped, so a focus drops
//! exactly `round(drop_fraction * N)` blocks unless fewer seen blocks are active.
//!
//! Report: `phase` = index in the expanded schedule (`repeat_last` unrolled), `phase_name`
//! (`learn`, `focus`, `review`, `review-off`), `epoch` = pass index within the phase; extra
//! `dropped`, `phase_step`, `phase_steps`.

use serde::{Deserialize, Serialize};

use super::bitset::Bitset;
use super::keys::{id_of, score_then_id};
use super::lfr_schedule::{plan, Action, DropRule, LfrParams, Phase};
use super::params::{block_count, check_ledger, load_state, parse_params, read, save_state};
use super::passes::{PassCursor, ShuffledPasses};
use super::{PolicyEnv, PolicyReport, SamplingError, SamplingPolicy, Selection, StateUpdate};
use crate::ledger::LedgerRead;
use crate::rng::Rng;

pub(crate) const NAME: &str = "lfr";

/// `policy_state` of a block a focus phase dropped.
pub const DROPPED: u8 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LfrCursor {
    /// Current index in the expanded schedule; `None` before the first batch.
    phase: Option<usize>,
    /// Length of the current phase in steps (fixed when it began).
    phase_steps: u64,
    /// Steps taken in the current phase.
    steps_done: u64,
    /// Pass count when the phase began (epochs are reported per phase).
    phase_first_pass: u64,
    /// Seeds the random subset of each `drop = "random"` focus phase.
    drop_seeds: Rng,
}

#[derive(Serialize, Deserialize)]
struct LfrState {
    cursor: LfrCursor,
    passes: PassCursor,
}

pub struct Lfr {
    params: LfrParams,
    schedule: Vec<Phase>,
    n_blocks: u32,
    /// Blocks dropped in the current phase (mirrors `policy_state == DROPPED` in the ledger).
    dropped: Bitset,
    cursor: LfrCursor,
    passes: ShuffledPasses,
}

pub(crate) fn construct(
    params: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    Ok(Box::new(Lfr::new(parse_params(NAME, params)?, env)?))
}

impl Lfr {
    pub fn new(params: LfrParams, env: &PolicyEnv) -> Result<Self, SamplingError> {
        params.validate(NAME)?;
        let n_blocks = block_count(NAME, env)?;
        let mut seeds = Rng::new(env.seed);
        let drop_seeds = seeds.fork();
        Ok(Self {
            schedule: params.expand(),
            params,
            n_blocks,
            dropped: Bitset::new(n_blocks as usize),
            cursor: LfrCursor {
                phase: None,
                phase_steps: 0,
                steps_done: 0,
                phase_first_pass: 0,
                drop_seeds,
            },
            passes: ShuffledPasses::new(seeds),
        })
    }

    /// Number of phases in the expanded schedule.
    pub fn schedule_len(&self) -> usize {
        self.schedule.len()
    }

    /// The phase that must begin before the next batch, if any.
    fn due_phase(&self) -> Option<usize> {
        match self.cursor.phase {
            None => Some(0),
            Some(i) if self.cursor.steps_done >= self.cursor.phase_steps => {
                (i + 1 < self.schedule.len()).then_some(i + 1)
            }
            Some(_) => None,
        }
    }

    /// Phase boundary: update the dropped set, sync the ledger, start the phase's first pass.
    fn enter_phase(&mut self, i: usize, n: usize, ledger: &dyn LedgerRead) -> Vec<StateUpdate> {
        let phase = self.schedule[i].clone();
        match phase.action {
            Action::All => self.dropped.clear(),
            Action::Keep => {}
            Action::Focus { fraction, fresh } => {
                if fresh {
                    self.dropped.clear();
                }
                self.drop_more(fraction, ledger);
            }
        }
        let updates = self.sync_ledger(ledger);
        let members = self.active_ids();
        let active = members.len();
        self.passes.begin(members, self.dropped.ones() == 0);
        self.cursor.phase = Some(i);
        self.cursor.phase_steps = phase.length.steps(active, n);
        self.cursor.steps_done = 0;
        self.cursor.phase_first_pass = self.passes.cursor().passes - 1;
        updates
    }

    /// Drops active seen blocks until `round(fraction * N)` are dropped (never re-activates).
    fn drop_more(&mut self, fraction: f64, ledger: &dyn LedgerRead) {
        let target = (fraction * self.n_blocks as f64).round() as usize;
        let extra = target.saturating_sub(self.dropped.ones());
        if extra == 0 {
            return;
        }
        let mut candidates = self.candidates(ledger);
        let k = extra.min(candidates.len());
        let chosen: &[u64] = match self.params.drop {
            DropRule::Lowest => lowest(&mut candidates, k),
            DropRule::Highest => highest(&mut candidates, k),
            DropRule::Random => random_subset(&mut candidates, k, &mut self.cursor.drop_seeds),
        };
        for &key in chosen {
            self.dropped.set(id_of(key) as usize);
        }
    }

    /// Active blocks that may be dropped: seen, with a finite score, packed (score, id) in id
    /// order. Never-seen blocks are kept: their difficulty is unknown, so they count as hardest.
    fn candidates(&self, ledger: &dyn LedgerRead) -> Vec<u64> {
        let score = self.params.score;
        (0..self.n_blocks)
            .filter(|&id| !self.dropped.get(id as usize))
            .filter_map(|id| {
                let r = read(ledger, id);
                let s = score.of(&r);
                (r.seen() && s.is_finite()).then(|| score_then_id(s, id))
            })
            .collect()
    }

    /// A state update for every block whose ledger state differs from the dropped set.
    fn sync_ledger(&self, ledger: &dyn LedgerRead) -> Vec<StateUpdate> {
        (0..self.n_blocks)
            .filter_map(|id| {
                let want = if self.dropped.get(id as usize) {
                    DROPPED
                } else {
                    0
                };
                (read(ledger, id).policy_state != want).then_some(StateUpdate {
                    id: id as usize,
                    policy_state: want,
                    leitner_box: None,
                })
            })
            .collect()
    }

    fn active_ids(&self) -> Vec<u32> {
        (0..self.n_blocks)
            .filter(|&id| !self.dropped.get(id as usize))
            .collect()
    }
}

/// The `k` smallest keys (lowest score, then lowest id), in O(len) average.
fn lowest(keys: &mut [u64], k: usize) -> &[u64] {
    if k > 0 && k < keys.len() {
        keys.select_nth_unstable(k);
    }
    &keys[..k]
}

/// The `k` largest keys.
fn highest(keys: &mut [u64], k: usize) -> &[u64] {
    let first = keys.len() - k;
    if k > 0 && first > 0 {
        keys.select_nth_unstable(first);
    }
    &keys[first..]
}

/// A uniformly random `k`-subset (partial Fisher-Yates) from a stream forked per phase.
fn random_subset<'a>(keys: &'a mut [u64], k: usize, seeds: &mut Rng) -> &'a [u64] {
    let mut rng = seeds.fork();
    for i in 0..k {
        let j = i + rng.below((keys.len() - i) as u64) as usize;
        keys.swap(i, j);
    }
    &keys[..k]
}

impl SamplingPolicy for Lfr {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, ledger: &dyn LedgerRead, _step: u64) -> Selection {
        let state_updates = match self.due_phase() {
            Some(i) => self.enter_phase(i, n, ledger),
            None => Vec::new(),
        };
        let ids = (0..n)
            .filter_map(|_| self.passes.take_cycling())
            .map(|id| id as usize)
            .collect();
        self.cursor.steps_done += 1;
        Selection {
            ids,
            state_updates,
            score: Vec::new(),
        }
    }

    // `observe` keeps the trait's default (no-op): the ledger records every trained block's
    // loss, and focus boundaries read it from there.

    fn save_state(&self) -> serde_json::Value {
        save_state(
            NAME,
            &LfrState {
                cursor: self.cursor.clone(),
                passes: self.passes.cursor().clone(),
            },
        )
    }

    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        check_ledger(NAME, self.n_blocks, ledger)?;
        let s: LfrState = load_state(NAME, state)?;
        if s.cursor.phase.is_some_and(|p| p >= self.schedule.len()) {
            return Err(SamplingError::state(
                NAME,
                format!(
                    "phase {:?} beyond the {}-phase schedule",
                    s.cursor.phase,
                    self.schedule.len()
                ),
            ));
        }
        self.dropped.clear();
        let mut members = Vec::new();
        if s.cursor.phase.is_some() {
            for id in 0..self.n_blocks {
                if read(ledger, id).policy_state == DROPPED {
                    self.dropped.set(id as usize);
                } else {
                    members.push(id);
                }
            }
        }
        let dense = self.dropped.ones() == 0;
        self.passes = ShuffledPasses::restore(members, dense, s.passes)
            .map_err(|m| SamplingError::state(NAME, m))?;
        self.cursor = s.cursor;
        Ok(())
    }

    fn plan_note(&self, planned_steps: u64, n: usize) -> Option<String> {
        let planned = plan(&self.schedule, self.n_blocks as usize, n);
        let total: u64 = planned.iter().map(|p| p.steps).sum();
        let m = planned.len();
        if total < planned_steps {
            let (last, rest) = (planned.last()?, planned_steps - total);
            Some(format!(
                "lfr: the phase schedule takes about {total} of the {planned_steps} planned \
                 steps; its last phase ({}, {} of {} blocks active) then runs for the remaining \
                 {rest} steps, about {:.1} more passes over those blocks. Write `phases` that \
                 cover the budget to spend it differently.",
                self.schedule[m - 1].name,
                last.active,
                self.n_blocks,
                (rest as f64 * n as f64) / last.active.max(1) as f64
            ))
        } else {
            let mut ends = 0u64;
            let k = planned.iter().position(|p| {
                ends += p.steps;
                ends >= planned_steps
            })?;
            (k + 1 < m).then(|| {
                format!(
                    "lfr: the budget of {planned_steps} steps ends in phase {} of {m} ({}); the \
                     whole schedule takes about {total} steps.",
                    k + 1,
                    self.schedule[k].name
                )
            })
        }
    }

    fn report(&self) -> PolicyReport {
        // Invariant: the schedule has at least one phase (validated) and `phase` indexes it
        // (checked on restore), so the indexing below cannot fail.
        let i = self.cursor.phase.unwrap_or(0);
        let active = match self.cursor.phase {
            Some(_) => self.passes.len() as f64 / self.n_blocks as f64,
            None => 1.0,
        };
        let pass = self.passes.cursor().passes.saturating_sub(1);
        PolicyReport {
            phase: i as u32,
            phase_name: self.schedule[i].name.to_string(),
            active_fraction: active,
            epoch: pass.saturating_sub(self.cursor.phase_first_pass),
            extra: vec![
                ("dropped".into(), self.dropped.ones() as f64),
                ("phase_step".into(), self.cursor.steps_done as f64),
                ("phase_steps".into(), self.cursor.phase_steps as f64),
            ],
        }
    }
}
