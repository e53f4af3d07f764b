//! `curriculum`: a static order from easy to hard (or hard to easy) by a score taken from a
//! previous run's ledger, the classic curriculum-learning baseline (Bengio et al., ICML 2009)
//! that LFR's adaptive ordering should beat.
//!
//! ```toml
//! [sampling.curriculum]
//! ledger = "runs/uniform/ledger.bin" # a previous run over the same prepared data
//! score = "ema_loss"                 # "first_loss" | "last_loss" | "min_loss"
//! order = "easy_first"               # "hard_first"
//! then = "repeat"                    # "uniform": shuffled epochs after the first
//! ```
//!
//! Epoch 0 follows the order (ties by id); later epochs repeat it or, with `then = "uniform"`,
//! are shuffled epochs over all blocks. Blocks the previous run never trained (NaN score) count
//! as the hardest. The order is built once at construction (O(N log N)); restore checks a CRC32
//! of it, so a score ledger that changed since the checkpoint is an error, not a silent
//! different order. Report: phase 0 `curriculum` during epoch 0, then 1 `repeat`/`uniform`.

use std::path::PathBuf;

use rayon::slice::ParallelSliceMut;
use serde::{Deserialize, Serialize};

use super::keys::{id_of, score_desc_then_id, score_then_id};
use super::params::{block_count, check_ledger, load_state, parse_params, read, save_state};
use super::passes::{PassCursor, ShuffledPasses};
use super::{PolicyEnv, PolicyReport, SamplingError, SamplingPolicy, Selection};
use crate::ledger::{BlockRecord, LedgerRead, LedgerReader};
use crate::rng::Rng;

pub(crate) const NAME: &str = "curriculum";

/// `[sampling.curriculum]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CurriculumParams {
    /// Ledger file (`RUN_DIR/ledger.bin`) of a previous run over the same blocks; required.
    /// Relative paths are relative to the working directory.
    pub ledger: PathBuf,
    /// Which loss of that ledger scores a block (default `ema_loss`).
    #[serde(default)]
    pub score: CurriculumScore,
    /// Default `easy_first` (lowest score first).
    #[serde(default)]
    pub order: Order,
    /// What follows the first epoch (default `repeat`).
    #[serde(default)]
    pub then: Then,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CurriculumScore {
    #[default]
    EmaLoss,
    FirstLoss,
    LastLoss,
    MinLoss,
}

impl CurriculumScore {
    fn of(self, r: &BlockRecord) -> f32 {
        match self {
            CurriculumScore::EmaLoss => r.ema_loss,
            CurriculumScore::FirstLoss => r.first_loss,
            CurriculumScore::LastLoss => r.last_loss,
            CurriculumScore::MinLoss => r.min_loss,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    EasyFirst,
    HardFirst,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    /// Every epoch follows the same order.
    #[default]
    Repeat,
    /// Shuffled epochs over all blocks after the first.
    Uniform,
}

#[derive(Serialize, Deserialize)]
struct CurriculumState {
    epoch: u64,
    position: usize,
    order_crc: u32,
    shuffled: PassCursor,
}

pub struct Curriculum {
    params: CurriculumParams,
    n_blocks: u32,
    /// The static order (released once `then = "uniform"` takes over).
    order: Vec<u32>,
    order_crc: u32,
    /// Epochs completed in the static order.
    epoch: u64,
    position: usize,
    shuffled: ShuffledPasses,
}

pub(crate) fn construct(
    params: &toml::Table,
    env: &PolicyEnv,
) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
    let params: CurriculumParams = parse_params(NAME, params)?;
    let source = LedgerReader::open(&params.ledger)
        .map_err(|e| SamplingError::setup(NAME, format!("cannot read the score ledger: {e}")))?;
    Ok(Box::new(Curriculum::from_ledger(params, env, &source)?))
}

impl Curriculum {
    /// Builds the order from `source` (the previous run's ledger; `params.ledger` is not read).
    pub fn from_ledger(
        params: CurriculumParams,
        env: &PolicyEnv,
        source: &dyn LedgerRead,
    ) -> Result<Self, SamplingError> {
        let n_blocks = block_count(NAME, env)?;
        if source.len() != n_blocks as usize {
            return Err(SamplingError::setup(
                NAME,
                format!(
                    "the score ledger {} has {} blocks, this run {n_blocks}: it must come from a \
                     run over the same prepared data",
                    params.ledger.display(),
                    source.len()
                ),
            ));
        }
        let order = build_order(&params, n_blocks, source);
        Ok(Self {
            order_crc: order_crc(&order),
            params,
            n_blocks,
            order,
            epoch: 0,
            position: 0,
            shuffled: ShuffledPasses::new(Rng::new(env.seed)),
        })
    }

    /// The static order (empty once shuffled epochs took over).
    pub fn order(&self) -> Vec<usize> {
        self.order.iter().map(|&id| id as usize).collect()
    }

    fn shuffling(&self) -> bool {
        self.params.then == Then::Uniform && self.epoch >= 1
    }

    fn next_id(&mut self) -> Option<u32> {
        if self.shuffling() {
            return self.shuffled.take_cycling();
        }
        if self.position == self.order.len() {
            self.epoch += 1;
            self.position = 0;
            if self.shuffling() {
                self.order = Vec::new();
                self.shuffled.begin((0..self.n_blocks).collect(), true);
                return self.shuffled.take_cycling();
            }
        }
        let id = self.order.get(self.position).copied();
        self.position += 1;
        id
    }
}

/// Ascending (easy first) or descending score, ties by id; NaN = hardest.
fn build_order(params: &CurriculumParams, n: u32, source: &dyn LedgerRead) -> Vec<u32> {
    let key = match params.order {
        Order::EasyFirst => score_then_id,
        Order::HardFirst => score_desc_then_id,
    };
    let mut keys: Vec<u64> = (0..n)
        .map(|id| key(params.score.of(&read(source, id)), id))
        .collect();
    keys.par_sort_unstable(); // distinct keys (they hold the id): deterministic
    keys.into_iter().map(id_of).collect()
}

fn order_crc(order: &[u32]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    order.iter().for_each(|id| h.update(&id.to_le_bytes()));
    h.finalize()
}

impl SamplingPolicy for Curriculum {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, _ledger: &dyn LedgerRead, _step: u64) -> Selection {
        let ids = (0..n)
            .filter_map(|_| self.next_id())
            .map(|id| id as usize)
            .collect();
        Selection::ids(ids)
    }

    fn save_state(&self) -> serde_json::Value {
        let state = CurriculumState {
            epoch: self.epoch,
            position: self.position,
            order_crc: self.order_crc,
            shuffled: self.shuffled.cursor().clone(),
        };
        save_state(NAME, &state)
    }

    fn restore_state(
        &mut self,
        state: &serde_json::Value,
        ledger: &dyn LedgerRead,
    ) -> Result<(), SamplingError> {
        check_ledger(NAME, self.n_blocks, ledger)?;
        let s: CurriculumState = load_state(NAME, state)?;
        if s.order_crc != self.order_crc {
            return Err(SamplingError::state(
                NAME,
                format!(
                    "the score ledger {} changed since the checkpoint",
                    self.params.ledger.display()
                ),
            ));
        }
        if s.position > self.n_blocks as usize {
            return Err(SamplingError::state(
                NAME,
                format!("position {} beyond the order", s.position),
            ));
        }
        self.epoch = s.epoch;
        self.position = s.position;
        if self.shuffling() {
            self.order = Vec::new();
            self.shuffled = ShuffledPasses::restore((0..self.n_blocks).collect(), true, s.shuffled)
                .map_err(|m| SamplingError::state(NAME, m))?;
        }
        Ok(())
    }

    fn report(&self) -> PolicyReport {
        let (phase, name, epoch) = match (self.epoch, self.params.then) {
            (0, _) => (0, NAME, 0),
            (e, Then::Repeat) => (1, "repeat", e),
            (_, Then::Uniform) => (1, "uniform", self.shuffled.cursor().passes),
        };
        PolicyReport {
            phase,
            phase_name: name.into(),
            active_fraction: 1.0,
            epoch,
            extra: Vec::new(),
        }
    }
}
