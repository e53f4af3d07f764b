//! `loss-priority`: always train the blocks with the highest priority = loss + staleness bonus.
//!
//! **Formula.** With `E = N / n` steps per epoch, a block last trained at step `s` with score
//! `L` (default: the ledger's `ema_loss`) has at step `t` the priority
//! `L + λ (t - s) / E` (λ = `staleness_bonus`, nats per epoch without training). The bonus is
//! linear rather than logarithmic on purpose: `L + λ (t - s)/E = λ t/E + (L - λ s/E)`, and `λ t/E`
//! is the same for every block, so ranking by the time-invariant key `L - λ s / E` ranks by
//! priority at every step. Only trained blocks change key: O(B log N) per step, never a re-key of
//! all N. Never-seen blocks come first, in a seeded shuffled order (an "infinite" priority), so
//! every block is scored once before any is repeated.
//!
//! **No starvation.** Let `ΔL` be the spread of scores. A block trained at step `t` gets key at
//! most `L_max - λ t/E`, below the key of a block idle since `s` once `t > s + E ΔL / λ`; after
//! that every block can overtake the idle one at most once, so after the unseen pass a block waits
//! at most `E (1 + ΔL/λ) + 1` steps (with λ = 1 and ΔL = 2 nats: 3 epochs).
//!
//! **Structure.** A `priority_queue::PriorityQueue` of all N blocks would cost ~50 bytes per
//! block (5 GB at 10^8). Instead: `ranked`, all blocks sorted by key at the last rebuild (`u32`
//! ids, 4 bytes per block; keys recomputed from the ledger when compared), and `fresh`, a
//! `PriorityQueue` of the blocks trained since then (~50 bytes each, at most `rebuild_fraction *
//! N` of them). A ranked entry is stale when its block is in `fresh`. When `fresh` exceeds
//! `rebuild_fraction * N`, both are rebuilt from the ledger: one sequential scan and a sort of N
//! packed 16-byte keys (transient), O(N log N), at most once per `rebuild_fraction * N / n`
//! steps. (Merging the queue into the still-sorted ranking was measured slower: it reads the
//! ledger in random order.) Keys carry the id as tie-break, so a batch is the top `n` of a strict
//! order computed from the ledger alone: restoring from a checkpoint (which rebuilds) continues
//! exactly. During the first pass the shuffled never-seen order adds 4 bytes per block. When
//! `n > N`, the batch repeats blocks.
//!
//! Report: phase 0 `unseen-first` until every block was drawn once, then 1 `priority`; epoch =
//! samples drawn / N; extra `queue_len`, `ranked_left`, `rebuilds`.

use std::hash::BuildHasherDefault;

use priority_queue::PriorityQueue;
use rayon::slice::ParallelSliceMut;
use serde::{Deserialize, Serialize};

use super::bitset::Bitset;
use super::keys::{ord_f64, IdHasher};
use super::params::{block_count, check_ledger, check_problems, load_state, parse_params};
use super::params::{read, save_state, Score};
use super::passes::{PassCursor, ShuffledPasses};
use super::{PolicyEnv, PolicyReport, SamplingError, SamplingPolicy, Selection, StateUpdate};
use crate::ledger::{BlockRecord, LedgerRead};
use crate::rng::Rng;

pub(crate) const NAME: &str = "loss-priority";

/// `[sampling.loss-priority]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LossPriorityParams {
    /// λ: priority gained per epoch without training, in nats (> 0; default 1.0). Smaller values
    /// follow the loss more greedily and let low-loss blocks wait longer.
    #[serde(default = "default_bonus")]
    pub staleness_bonus: f64,
    /// Rebuild the ranking when the blocks trained since the last rebuild exceed this share of
    /// all blocks, in (0, 1] (default 0.05). Trades memory (~50 bytes per queued block) against
    /// rebuild frequency; it does not change which blocks are chosen.
    #[serde(default = "default_rebuild")]
    pub rebuild_fraction: f64,
    /// The ledger loss used as `L` (default `ema_loss`).
    #[serde(default = "default_score")]
    pub score: Score,
}

fn default_bonus() -> f64 {
    1.0
}
fn default_rebuild() -> f64 {
    0.05
}
fn default_score() -> Score {
    Score::EmaLoss
}

impl Default for LossPriorityParams {
    fn default() -> Self {
        Self {
            staleness_bonus: default_bonus(),
            rebuild_fraction: default_rebuild(),
            score: default_score(),
        }
    }
}

impl LossPriorityParams {
    pub fn validate(&self, policy: &str) -> Result<(), SamplingError> {
        let mut problems = Vec::new();
        let l = self.staleness_bonus;
        if !(l.is_finite() && l > 0.0) {
            problems.push(format!(
                "staleness_bonus must be > 0 (0 allows starvation), got {l}"
            ));
        }
        let f = self.rebuild_fraction;
        if !(f > 0.0 && f <= 1.0) {
            problems.push(format!("rebuild_fraction must be in (0, 1], got {f}"));
        }
        check_problems(policy, problems)
    }
}

/// Packed priority: order-preserving key bits above `u32::MAX - id` (higher key first, then
/// lower id). Never 0, which marks a queued block that is in the current batch.
type Priority = u128;
const IN_FLIGHT: Priority = 0;

type Queue = PriorityQueue<u32, Priority, BuildHasherDefault<IdHasher>>;

#[derive(Serialize, Deserialize)]
struct LpState {
    /// `n` of the first batch: fixes the staleness unit `E = N / n`.
    samples_per_step: usize,
    samples: u64,
    unseen: PassCursor,
    unseen_done: bool,
    rebuilds: u64,
}

pub struct LossPriority {
    params: LossPriorityParams,
    n_blocks: u32,
    samples_per_step: usize,
    samples: u64,
    unseen: ShuffledPasses,
    unseen_done: bool,
    ranked: Vec<u32>,
    ranked_pos: usize,
    fresh: Queue,
    in_flight: Vec<u32>,
    needs_rebuild: bool,
    rebuilds: u64,
}

pub(crate) fn construct(
    params: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    Ok(Box::new(LossPriority::new(
        parse_params(NAME, params)?,
        env,
    )?))
}

impl LossPriority {
    pub fn new(params: LossPriorityParams, env: &PolicyEnv) -> Result<Self, SamplingError> {
        params.validate(NAME)?;
        Ok(Self {
            params,
            n_blocks: block_count(NAME, env)?,
            samples_per_step: 0,
            samples: 0,
            unseen: ShuffledPasses::new(Rng::new(env.seed)),
            unseen_done: false,
            ranked: Vec::new(),
            ranked_pos: 0,
            fresh: Queue::default(),
            in_flight: Vec::new(),
            // The first batch ranks whatever the ledger already holds (normally nothing seen).
            needs_rebuild: true,
            rebuilds: 0,
        })
    }

    /// The time-invariant key `L - λ s / E` (+inf for never-seen blocks), packed with the id.
    fn priority(&self, id: u32, r: &BlockRecord) -> Priority {
        let score = self.params.score.of(r);
        let key = if r.seen() && score.is_finite() {
            let epochs = r.last_step as f64 * self.samples_per_step as f64 / self.n_blocks as f64;
            score as f64 - self.params.staleness_bonus * epochs
        } else {
            f64::INFINITY
        };
        ((ord_f64(key) as u128) << 32) | (u32::MAX - id) as u128
    }

    fn rebuild_threshold(&self) -> usize {
        let share = (self.params.rebuild_fraction * self.n_blocks as f64).ceil() as usize;
        share.max(self.samples_per_step)
    }

    /// The next never-seen block of the shuffled first pass.
    fn next_unseen(&mut self, ledger: &dyn LedgerRead) -> Option<u32> {
        while !self.unseen_done {
            match self.unseen.take() {
                Some(id) if !read(ledger, id).seen() => return Some(id),
                Some(_) => {}
                None => {
                    self.unseen_done = true;
                    self.unseen.release();
                }
            }
        }
        None
    }

    /// The highest-priority block not in the batch yet: the better of the ranked head (skipping
    /// entries whose block was retrained since the rebuild) and the queue head.
    fn pop_best(&mut self, ledger: &dyn LedgerRead) -> Option<u32> {
        while let Some(&id) = self.ranked.get(self.ranked_pos) {
            if !self.fresh.contains(&id) {
                break;
            }
            self.ranked_pos += 1;
        }
        let ranked = self
            .ranked
            .get(self.ranked_pos)
            .map(|&id| (self.priority(id, &read(ledger, id)), id));
        let queued = self
            .fresh
            .peek()
            .map(|(&id, &p)| (p, id))
            .filter(|&(p, _)| p != IN_FLIGHT);
        match (ranked, queued) {
            (Some(r), Some(q)) if q.0 > r.0 => Some(self.take_queued(q.1)),
            (Some(r), _) => {
                self.ranked_pos += 1;
                Some(r.1)
            }
            (None, Some(q)) => Some(self.take_queued(q.1)),
            (None, None) => None,
        }
    }

    /// Marks a queued block as in the batch; it stays queued so its ranked entry stays stale.
    fn take_queued(&mut self, id: u32) -> u32 {
        self.fresh.change_priority(&id, IN_FLIGHT);
        id
    }

    /// Re-queues `ids` with their ledger priorities (after training, or when not observed).
    fn requeue(&mut self, ids: impl IntoIterator<Item = u32>, ledger: &dyn LedgerRead) {
        for id in ids {
            let p = self.priority(id, &read(ledger, id));
            self.fresh.push(id, p);
        }
    }

    /// Sorts every block by key (except never-seen blocks still ahead in the first pass).
    fn rebuild(&mut self, ledger: &dyn LedgerRead) {
        let mut pending = Bitset::new(if self.unseen_done {
            0
        } else {
            self.n_blocks as usize
        });
        if !self.unseen_done {
            let done = self.unseen.len() - self.unseen.remaining();
            self.unseen.order()[done..]
                .iter()
                .for_each(|&id| pending.set(id as usize));
        }
        let mut keys: Vec<Priority> = (0..self.n_blocks)
            .filter_map(|id| {
                let r = read(ledger, id);
                (r.seen() || !pending.get(id as usize)).then(|| self.priority(id, &r))
            })
            .collect();
        // Keys are distinct (they hold the id), so the parallel sort is deterministic.
        keys.par_sort_unstable_by(|a, b| b.cmp(a));
        self.ranked = keys.iter().map(|&k| u32::MAX - k as u32).collect();
        self.ranked_pos = 0;
        self.fresh.clear();
        self.fresh.shrink_to_fit();
        self.needs_rebuild = false;
        self.rebuilds += 1;
    }

    fn select(&mut self, n: usize, ledger: &dyn LedgerRead) -> Vec<usize> {
        let mut ids: Vec<usize> = Vec::with_capacity(n);
        while ids.len() < n {
            let Some(id) = self.next_unseen(ledger).or_else(|| self.pop_best(ledger)) else {
                break;
            };
            self.in_flight.push(id);
            ids.push(id as usize);
        }
        // Fewer than n blocks exist: repeat the batch's blocks (as shuffled epochs would).
        for i in ids.len()..n {
            match ids.get(i % ids.len().max(1)) {
                Some(&id) => ids.push(id),
                None => break,
            }
        }
        ids
    }
}

impl SamplingPolicy for LossPriority {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, ledger: &dyn LedgerRead, _step: u64) -> Selection {
        if self.samples_per_step == 0 {
            self.samples_per_step = n.max(1);
        }
        if self.unseen.cursor().passes == 0 {
            self.unseen.begin((0..self.n_blocks).collect(), true);
        }
        if !self.in_flight.is_empty() {
            // The previous batch was never observed: its blocks go back with unchanged keys.
            let stale = std::mem::take(&mut self.in_flight);
            self.requeue(stale, ledger);
        }
        if self.needs_rebuild || self.fresh.len() > self.rebuild_threshold() {
            self.rebuild(ledger);
        }
        let ids = self.select(n, ledger);
        self.samples += ids.len() as u64;
        Selection::ids(ids)
    }

    fn observe(
        &mut self,
        _ids: &[usize],
        _losses: &[f32],
        ledger: &dyn LedgerRead,
        _step: u64,
    ) -> Vec<StateUpdate> {
        // Every block of the batch gets its key from the ledger: trained ones have a new score
        // and last step, ones without a finite loss keep theirs. Reading the ledger rather than
        // `losses` keeps keys a function of the ledger, which restore relies on.
        let batch = std::mem::take(&mut self.in_flight);
        self.requeue(batch, ledger);
        Vec::new()
    }

    fn save_state(&self) -> serde_json::Value {
        let state = LpState {
            samples_per_step: self.samples_per_step,
            samples: self.samples,
            unseen: self.unseen.cursor().clone(),
            unseen_done: self.unseen_done,
            rebuilds: self.rebuilds,
        };
        save_state(NAME, &state)
    }

    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        check_ledger(NAME, self.n_blocks, ledger)?;
        let s: LpState = load_state(NAME, state)?;
        self.unseen = match (s.unseen_done, s.unseen.passes) {
            (true, _) => Ok(ShuffledPasses::released(s.unseen)),
            (false, 0) => ShuffledPasses::restore(Vec::new(), true, s.unseen),
            (false, _) => ShuffledPasses::restore((0..self.n_blocks).collect(), true, s.unseen),
        }
        .map_err(|m| SamplingError::state(NAME, m))?;
        self.samples_per_step = s.samples_per_step;
        self.samples = s.samples;
        self.unseen_done = s.unseen_done;
        self.rebuilds = s.rebuilds;
        self.ranked = Vec::new();
        self.ranked_pos = 0;
        self.fresh.clear();
        self.in_flight.clear();
        self.needs_rebuild = true;
        Ok(())
    }

    fn report(&self) -> PolicyReport {
        let (phase, name) = if self.unseen_done {
            (1, "priority")
        } else {
            (0, "unseen-first")
        };
        PolicyReport {
            phase,
            phase_name: name.into(),
            active_fraction: 1.0,
            epoch: self.samples / self.n_blocks as u64,
            extra: vec![
                ("queue_len".into(), self.fresh.len() as f64),
                (
                    "ranked_left".into(),
                    (self.ranked.len() - self.ranked_pos) as f64,
                ),
                ("rebuilds".into(), self.rebuilds as f64),
            ],
        }
    }
}
