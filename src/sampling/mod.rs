//! Sampling policies: which blocks each optimizer step trains on.
//!
//! Policies return decisions and the caller acts on them (the burn-train style): a policy never
//! writes the ledger. One optimizer step `step` with `n = batch_size * grad_accum` sequences:
//!
//! 1. `sel = policy.next_batch(n, &ledger, step)`; the caller writes `sel.state_updates` to the
//!    ledger (phase boundaries emit them), then trains on `sel.ids`.
//! 2. The ledger records the finite per-sequence losses of the training forward pass (no extra
//!    scoring passes).
//! 3. `updates = policy.observe(ids, losses, &ledger, step)` with the ids whose losses were
//!    recorded; the caller writes `updates`.
//! 4. Only if the policy asked (`sel.score`, e.g. a candidate pool for the next step): a
//!    forward-only pass on the updated weights scores those blocks, and
//!    `policy.observe_scored(ids, losses, step)` receives them. The ledger keeps training-pass
//!    losses only. Scoring is charged to the compute budget at the measured forward-only rate
//!    ; a policy declares its per-step amount in `scored_per_step` so the budget can be
//!    converted to steps before step 0.
//!
//! Checkpoints are taken between steps: `save_state()` holds only small things (cursors, phase,
//! RNG); per-block state lives in the ledger (`policy_state`, Leitner box), which is snapshotted
//! with the checkpoint, so `restore_state` rebuilds the big structures (active sets, queues) from
//! the ledger and the run continues exactly as if it had not stopped.
//!
//! Cost: `next_batch` + `observe` are O(B log N) or better per step (B = n). Work that is O(N) or
//! O(N log N) happens only at boundaries: epoch reshuffles, LFR phase changes, spaced-repetition
//! epochs, loss-priority rebuilds (amortized over at least `rebuild_fraction * N / B` steps).
//! Block ids are stored as `u32` (4 bytes per block), so a policy handles up to 2^32 - 1 blocks.
//!
//! Built-in policies ([`Registry::builtin`]): `uniform`, `lfr` (Learn-Focus-Review, arXiv
//! 2409.06131), `loss-priority`, `spaced` (Leitner boxes), `curriculum` and `online-batch`
//! (scores a candidate pool each step; the scoring is charged to the budget). A user policy is a
//! type implementing [`SamplingPolicy`] plus a [`PolicyConstructor`] registered under a name
//! (see `examples/custom_policy.rs`).

mod bitset;
mod curriculum;
mod error;
mod keys;
mod lfr;
mod lfr_schedule;
mod loss_priority;
mod online_batch;
mod params;
mod passes;
mod registry;
mod source_passes;
mod spaced;
mod uniform;

pub use curriculum::{Curriculum, CurriculumParams, CurriculumScore, Order, Then};
pub use error::SamplingError;
pub use lfr::{Lfr, DROPPED};
pub use lfr_schedule::{DropRule, LfrParams, PhaseKind, PhaseSpec};
pub use loss_priority::{LossPriority, LossPriorityParams};
pub use online_batch::{OnlineBatch, OnlineBatchParams};
pub use params::{
    block_count, check_ledger, check_problems, load_state, no_params, parse_params, save_state,
    Score,
};
pub use passes::{PassCursor, ShuffledPasses};
pub use registry::{PolicyConstructor, Registry};
pub use source_passes::SourcePasses;
pub use spaced::{interval as leitner_interval, Spaced, SpacedParams};
pub use uniform::Uniform;

use crate::ledger::{BlockRecord, LedgerRead};

/// A sampling policy. `Send` so the trainer may run it beside the model on another thread.
///
/// Only [`next_batch`](SamplingPolicy::next_batch) is required: the defaults describe a
/// stateless policy that ignores losses (its name is its type's name, it has no checkpoint
/// state, and it reports every block as active).
pub trait SamplingPolicy: Send {
    /// The name in messages; by default the type's name (policies usually return their
    /// registry name, `"lfr"`, ...).
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Block ids for the next optimizer step (`n = batch_size * grad_accum`), plus per-block
    /// state changes for the ledger, which the caller writes before training.
    fn next_batch(&mut self, n: usize, ledger: &dyn LedgerRead, step: u64) -> Selection;

    /// Called after the ledger recorded this step's finite losses for `ids` (the training forward
    /// pass's per-sequence losses, `losses[i]` for `ids[i]`). Returns state changes. The
    /// default ignores losses (static orders such as `uniform` and `curriculum`).
    fn observe(
        &mut self,
        _ids: &[usize],
        _losses: &[f32],
        _ledger: &dyn LedgerRead,
        _step: u64,
    ) -> Vec<StateUpdate> {
        Vec::new()
    }

    /// A note for the start of a run of `planned_steps` steps of `n` sequences, when the
    /// policy's own plan does not match that budget (LFR: a phase schedule that ends before the
    /// budget, whose last phase then runs to the end, or one the budget cuts short). Default:
    /// none.
    fn plan_note(&self, _planned_steps: u64, _n: usize) -> Option<String> {
        None
    }

    /// Blocks this policy asks to score (forward-only) per step when steps carry `n` sequences:
    /// the budget plan charges them up front. Default 0 (policies that only train).
    fn scored_per_step(&self, _n: usize) -> usize {
        0
    }

    /// Forward-only losses of the blocks a `Selection::score` asked for, on the weights after
    /// the step. Default: ignored (only policies that ask for scoring override it).
    fn observe_scored(&mut self, _ids: &[usize], _losses: &[f32], _step: u64) -> Vec<StateUpdate> {
        Vec::new()
    }

    /// Small serialisable state for checkpoints (cursors, phase, RNG); this module's
    /// `save_state` / `load_state` tag it with the policy's name. Default: none (`null`).
    fn save_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores `save_state`'s output on a policy built with the same parameters and env, given
    /// the ledger snapshotted with the same checkpoint. Default: accepts only `null`, the
    /// default `save_state` (a stateless policy has nothing to restore).
    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        _ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        match state.is_null() {
            true => Ok(()),
            false => Err(SamplingError::state(
                self.name(),
                "the checkpoint holds policy state, but this policy keeps none",
            )),
        }
    }

    /// Phase and eligibility, for TensorBoard (`sampler/phase`, `sampler/active_fraction`).
    /// Default: one phase named after the policy, every block active.
    fn report(&self) -> PolicyReport {
        PolicyReport {
            phase_name: self.name().to_string(),
            active_fraction: 1.0,
            ..Default::default()
        }
    }
}

/// What a policy chose for one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Block ids to train on, in batch order (length `n`).
    pub ids: Vec<usize>,
    /// Ledger state changes to write before training (often empty).
    pub state_updates: Vec<StateUpdate>,
    /// Blocks to score with a forward-only pass after this step's update (charged to the
    /// budget); their losses go to `observe_scored`. Usually empty.
    pub score: Vec<usize>,
}

impl Selection {
    /// Checks what a policy returned for a step of `n` sequences over `n_blocks` blocks: `n`
    /// training ids, and every id (trained, scored, updated) below `n_blocks`.
    pub fn check(
        &self,
        policy: &str,
        step: u64,
        n: usize,
        n_blocks: usize,
    ) -> Result<(), SamplingError> {
        let invalid = |message: String| SamplingError::InvalidSelection {
            policy: policy.to_string(),
            step,
            message,
        };
        if self.ids.len() != n {
            return Err(invalid(format!(
                "{} block ids for a batch of {n}",
                self.ids.len()
            )));
        }
        let updates = self.state_updates.iter().map(|u| u.id);
        let all = self.ids.iter().chain(&self.score).copied().chain(updates);
        match all.into_iter().find(|&id| id >= n_blocks) {
            Some(id) => Err(invalid(format!(
                "block id {id} is out of range (0..{n_blocks})"
            ))),
            None => Ok(()),
        }
    }

    /// A batch without state changes.
    pub fn ids(ids: Vec<usize>) -> Self {
        Self {
            ids,
            state_updates: Vec::new(),
            score: Vec::new(),
        }
    }
}

/// A per-block state change for the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateUpdate {
    pub id: usize,
    /// New `BlockRecord::policy_state` (policy-defined; LFR: 0 active, 1 dropped).
    pub policy_state: u8,
    /// New Leitner box, when the policy keeps one (`spaced`).
    pub leitner_box: Option<u8>,
}

impl StateUpdate {
    /// Writes this change into a record (what the trainer's ledger does for each update).
    pub fn apply_to(&self, record: &mut BlockRecord) {
        record.policy_state = self.policy_state;
        if let Some(b) = self.leitner_box {
            record.set_leitner_box(b);
        }
    }
}

/// Applies updates to an in-memory ledger, in order (later updates of one id win).
/// Out-of-range ids are ignored: policies only emit ids below the ledger length.
pub fn apply_updates(ledger: &mut [BlockRecord], updates: &[StateUpdate]) {
    for u in updates {
        if let Some(r) = ledger.get_mut(u.id) {
            u.apply_to(r);
        }
    }
}

/// What a policy is built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEnv {
    /// Training blocks; ids are `0..n_blocks`.
    pub n_blocks: usize,
    /// Seed of the policy's random stream; the trainer draws it from the run's one RNG.
    pub seed: u64,
    /// Tokens per block (context + 1), for information.
    pub tokens_per_block: usize,
}

/// Where a policy stands, for logging.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyReport {
    /// Phase index (policy-defined; LFR: index in the expanded schedule).
    pub phase: u32,
    pub phase_name: String,
    /// Share of blocks currently eligible for training, in [0, 1].
    pub active_fraction: f64,
    /// Epoch (pass) index, policy-defined (see each policy).
    pub epoch: u64,
    /// Further named scalars (e.g. `dropped`, `queue_len`).
    pub extra: Vec<(String, f64)>,
}
