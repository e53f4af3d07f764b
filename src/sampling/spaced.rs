//! `spaced`: spaced repetition with Leitner boxes (Leitner, "So lernt man lernen", 1972): a block
//! the model keeps getting better at is reviewed less and less often; one it gets worse at
//! ("forgotten", in the sense of LFR v1, arXiv 2409.06131) comes back every epoch.
//!
//! **Boxes.** Box 0 = never trained (due every epoch). Box `b >= 1` is reviewed every
//! `2^(b-1)` epochs: intervals 1, 2, 4, 8, ... for boxes 1, 2, 3, 4, ... so that "back to box 1"
//! means "every epoch". After a block is trained: first sight -> box 1; loss below its previous
//! loss -> one box up (at most `max_box`); loss above previous + `tolerance` -> box 1; otherwise
//! it stays. The previous loss is the ledger's `last_loss` read when the batch was chosen (the
//! ledger has already been overwritten by the time `observe` runs).
//!
//! **Epochs.** An epoch trains, in a shuffled order, every block due at its start: a block
//! trained in epoch `e` from box `b` is due in epoch `e + interval(b)`. Epochs in which no block
//! is due are skipped. The due list is computed at the epoch boundary (O(N), like a reshuffle);
//! epochs end at step boundaries, so the last batch of an epoch is completed with blocks from the
//! start of the same epoch's order (those few are trained twice in that epoch).
//!
//! **Ledger state.** Every trained block gets a `StateUpdate` with its new box and
//! `policy_state = epoch mod 256` (the epoch it was last trained). Intervals are at most
//! 2^7 = 128 epochs (`max_box <= 8`) and every block is trained in its due epoch, so the age
//! `(epoch - policy_state) mod 256` is unambiguous; restore rebuilds the current due list from it.
//!
//! Report: phase 0 `spaced`, active fraction = share of blocks due this epoch, epoch = current
//! epoch number, extra `box_<b>` = share of blocks in box b at the epoch start.

use serde::{Deserialize, Serialize};

use super::params::{block_count, check_ledger, check_problems, load_state, parse_params};
use super::params::{read, save_state};
use super::passes::{PassCursor, ShuffledPasses};
use super::{PolicyEnv, PolicyReport, SamplingError, SamplingPolicy, Selection, StateUpdate};
use crate::ledger::{BlockRecord, LedgerRead};
use crate::rng::Rng;

pub(crate) const NAME: &str = "spaced";

/// `[sampling.spaced]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpacedParams {
    /// Highest box, 1..=8 (default 8: reviewed every 128 epochs).
    #[serde(default = "default_max_box")]
    pub max_box: u8,
    /// A loss rise above the previous loss by more than this (nats, >= 0; default 0) sends the
    /// block back to box 1.
    #[serde(default)]
    pub tolerance: f64,
}

fn default_max_box() -> u8 {
    8
}

impl Default for SpacedParams {
    fn default() -> Self {
        Self {
            max_box: default_max_box(),
            tolerance: 0.0,
        }
    }
}

impl SpacedParams {
    pub fn validate(&self, policy: &str) -> Result<(), SamplingError> {
        let mut problems = Vec::new();
        if !(1..=8).contains(&self.max_box) {
            problems.push(format!("max_box must be in 1..=8, got {}", self.max_box));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            problems.push(format!("tolerance must be >= 0, got {}", self.tolerance));
        }
        check_problems(policy, problems)
    }

    /// The box after training with loss `new`, given the previous loss (NaN: never trained).
    pub fn next_box(&self, current: u8, previous: f32, new: f32) -> u8 {
        if previous.is_nan() {
            1
        } else if new < previous {
            current.saturating_add(1).clamp(1, self.max_box)
        } else if new as f64 > previous as f64 + self.tolerance {
            1
        } else {
            current.clamp(1, self.max_box)
        }
    }
}

/// Review interval of box `b` in epochs.
pub fn interval(b: u8) -> u64 {
    if b == 0 {
        1
    } else {
        1 << (b.min(8) - 1)
    }
}

/// Epochs since the block was last trained, relative to epoch `e`.
fn age(e: u64, r: &BlockRecord) -> u64 {
    (e as u8).wrapping_sub(r.policy_state) as u64
}

/// The epoch in which a block is due, seen from epoch `e` (`from` for never-trained blocks).
fn due_epoch(e: u64, from: u64, r: &BlockRecord) -> u64 {
    if r.seen() {
        e.saturating_sub(age(e, r)) + interval(r.leitner_box())
    } else {
        from
    }
}

#[derive(Serialize, Deserialize)]
struct SpacedState {
    started: bool,
    epoch: u64,
    passes: PassCursor,
    box_counts: Vec<u64>,
}

pub struct Spaced {
    params: SpacedParams,
    n_blocks: u32,
    started: bool,
    epoch: u64,
    passes: ShuffledPasses,
    /// (id, last loss, box) of the current batch, read when it was chosen.
    in_flight: Vec<(u32, f32, u8)>,
    /// Blocks per box at the start of the epoch.
    box_counts: Vec<u64>,
}

pub(crate) fn construct(
    params: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    Ok(Box::new(Spaced::new(parse_params(NAME, params)?, env)?))
}

impl Spaced {
    pub fn new(params: SpacedParams, env: &PolicyEnv) -> Result<Self, SamplingError> {
        params.validate(NAME)?;
        Ok(Self {
            params,
            n_blocks: block_count(NAME, env)?,
            started: false,
            epoch: 0,
            passes: ShuffledPasses::new(Rng::new(env.seed)),
            in_flight: Vec::new(),
            box_counts: vec![0; 16],
        })
    }

    /// Epoch boundary: the next epoch with a due block, and its shuffled due list.
    fn advance(&mut self, ledger: &dyn LedgerRead) {
        let (e, from) = if self.started {
            (self.epoch, self.epoch + 1)
        } else {
            (0, 0)
        };
        let first_due = (0..self.n_blocks)
            .map(|id| due_epoch(e, from, &read(ledger, id)))
            .min()
            .unwrap_or(from);
        let next = first_due.max(from);
        self.box_counts = vec![0; 16];
        let mut members = Vec::new();
        for id in 0..self.n_blocks {
            let r = read(ledger, id);
            self.box_counts[r.leitner_box() as usize] += 1;
            if due_epoch(e, from, &r) <= next {
                members.push(id);
            }
        }
        let dense = members.len() == self.n_blocks as usize;
        self.passes.begin(members, dense);
        self.epoch = next;
        self.started = true;
    }

    /// Takes `n` ids from the epoch, completing a short last batch from the epoch's start.
    fn take(&mut self, n: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..n).map_while(|_| self.passes.take()).collect();
        let order = self.passes.order();
        let missing = n - ids.len();
        ids.extend((0..missing).filter_map(|k| order.get(k % order.len().max(1)).copied()));
        ids
    }
}

impl SamplingPolicy for Spaced {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, ledger: &dyn LedgerRead, _step: u64) -> Selection {
        // Blocks of an unobserved batch keep their stamp, so they simply stay due.
        self.in_flight.clear();
        if !self.started || self.passes.remaining() == 0 {
            self.advance(ledger);
        }
        let ids = self.take(n);
        self.in_flight = ids
            .iter()
            .map(|&id| {
                let r = read(ledger, id);
                (id, r.last_loss, r.leitner_box())
            })
            .collect();
        self.in_flight.sort_unstable_by_key(|&(id, _, _)| id);
        Selection {
            ids: ids.into_iter().map(|id| id as usize).collect(),
            state_updates: Vec::new(),
            score: Vec::new(),
        }
    }

    fn observe(
        &mut self,
        ids: &[usize],
        losses: &[f32],
        _ledger: &dyn LedgerRead,
        _step: u64,
    ) -> Vec<StateUpdate> {
        let stamp = self.epoch as u8; // epoch mod 256, see the module docs
                                      // A non-finite loss never reaches the ledger; such a block keeps its box and stays due.
        let updates = ids
            .iter()
            .zip(losses)
            .filter(|(_, loss)| loss.is_finite())
            .map(|(&id, &loss)| {
                let found = self
                    .in_flight
                    .binary_search_by_key(&id, |&(i, _, _)| i as usize);
                // A block observed without having been chosen counts as first sight.
                let (previous, current) = match found {
                    Ok(k) => (self.in_flight[k].1, self.in_flight[k].2),
                    Err(_) => (f32::NAN, 0),
                };
                StateUpdate {
                    id,
                    policy_state: stamp,
                    leitner_box: Some(self.params.next_box(current, previous, loss)),
                }
            })
            .collect();
        self.in_flight.clear();
        updates
    }

    fn save_state(&self) -> serde_json::Value {
        let state = SpacedState {
            started: self.started,
            epoch: self.epoch,
            passes: self.passes.cursor().clone(),
            box_counts: self.box_counts.clone(),
        };
        save_state(NAME, &state)
    }

    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        check_ledger(NAME, self.n_blocks, ledger)?;
        let s: SpacedState = load_state(NAME, state)?;
        // The epoch's due list = blocks trained in it so far (age 0) + blocks still due.
        let e = s.epoch;
        let members: Vec<u32> = match s.started {
            false => Vec::new(),
            true => (0..self.n_blocks)
                .filter(|&id| {
                    let r = read(ledger, id);
                    (r.seen() && age(e, &r) == 0) || due_epoch(e, e, &r) <= e
                })
                .collect(),
        };
        let dense = members.len() == self.n_blocks as usize;
        self.passes = ShuffledPasses::restore(members, dense, s.passes)
            .map_err(|m| SamplingError::state(NAME, m))?;
        self.started = s.started;
        self.epoch = s.epoch;
        self.box_counts = s.box_counts;
        self.box_counts.resize(16, 0);
        self.in_flight.clear();
        Ok(())
    }

    fn report(&self) -> PolicyReport {
        let n = self.n_blocks as f64;
        let boxes = 0..=self.params.max_box as usize;
        PolicyReport {
            phase: 0,
            phase_name: NAME.into(),
            active_fraction: if self.started {
                self.passes.len() as f64 / n
            } else {
                1.0
            },
            epoch: self.epoch,
            extra: boxes
                .map(|b| (format!("box_{b}"), self.box_counts[b] as f64 / n))
                .collect(),
        }
    }
}
