//! `[sampling.lfr]` parameters and the expanded phase schedule of Learn-Focus-Review
//! (arXiv 2409.06131).
//!
//! ```toml
//! [sampling.lfr]
//! phases = [
//!   { kind = "learn",  epochs = 1.0 },
//!   { kind = "focus",  epochs = 1.0, drop_fraction = 0.5 },
//!   { kind = "review", epochs = 1.0 },
//!   { kind = "focus",  epochs = 1.0, drop_fraction = 0.7 },
//! ]
//! repeat_last = 5     # the last phase runs 5 times: 8 epochs in all, as in quokka's config.py
//! drop = "lowest"     # ablation: "highest" | "random"
//! review = true       # ablation: false
//! score = "last_loss" # or "ema_loss"
//! ```

use serde::Deserialize;

use super::params::{check_fraction, check_problems, Score};
use super::SamplingError;

/// The `lfr` parameters. Every field has a default; the defaults are the paper's schedule as
/// configured in its code, quokka (p1 = p2 = p3 = p4 = 1 epoch, s1 = 50%, s2 = 70%, reps = 5).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LfrParams {
    /// The phases in order (at least one).
    #[serde(default = "default_phases")]
    pub phases: Vec<PhaseSpec>,
    /// How many times the last phase runs in a row (>= 1; default 5). Repetitions keep the
    /// active set (quokka reuses its Phase-4 block list for every rep). After the schedule the
    /// last phase simply continues: the training budget, not the policy, ends the run.
    #[serde(default = "default_repeat_last")]
    pub repeat_last: u32,
    /// Which blocks a focus phase drops. Default `lowest` (the paper's rule).
    #[serde(default)]
    pub drop: DropRule,
    /// `false` replaces every review phase by continuing focus on the same active set: no block
    /// is re-activated, the phase's `epochs` count over that set, and the next focus phase adds
    /// drops to the existing ones (ranked among the still-active blocks). Default `true`.
    #[serde(default = "default_review")]
    pub review: bool,
    /// The ledger loss that ranks blocks at a focus boundary. Default `last_loss`: after a 1-epoch
    /// learn or review phase every block's last loss is its score from that phase, which is what
    /// quokka ranks by (the mean of the phase's recorded perplexities, one per block per epoch).
    /// `ema_loss` smooths over all earlier phases instead.
    #[serde(default)]
    pub score: Score,
}

/// One phase of the schedule.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub kind: PhaseKind,
    /// Length in epochs (> 0, may be fractional) over the phase's *active* blocks: one epoch of
    /// a focus phase dropping 50% is half the steps of a learn epoch. Default 1 when `steps` is
    /// absent.
    #[serde(default)]
    pub epochs: Option<f64>,
    /// Length in optimizer steps (> 0), instead of `epochs`.
    #[serde(default)]
    pub steps: Option<u64>,
    /// Focus only: share of all blocks dropped, in [0, 1), rounded to the nearest block count.
    #[serde(default)]
    pub drop_fraction: Option<f64>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    /// Train on every block (recording every block's loss).
    Learn,
    /// Train on the blocks not dropped.
    Focus,
    /// Re-activate every block (re-recording every block's loss).
    Review,
}

/// Which blocks a focus phase drops (the paper's ablations).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DropRule {
    /// The lowest-loss ("already learned") blocks: the paper's rule.
    #[default]
    Lowest,
    /// The highest-loss blocks.
    Highest,
    /// A seeded random subset.
    Random,
}

/// How a phase changes the dropped set when it begins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Action {
    /// Every block active (learn; review with `review = true`).
    All,
    /// The active set stays as it is (review with `review = false`; repetitions of a focus).
    Keep,
    /// Drop up to `round(fraction * N)` blocks. `fresh`: start from all blocks active (focus
    /// after learn/review); otherwise keep the current drops and add to them (focus after focus).
    Focus { fraction: f64, fresh: bool },
}

/// Phase length: epochs over the active blocks, or optimizer steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Length {
    Epochs(f64),
    Steps(u64),
}

impl Length {
    /// Steps for `active` eligible blocks and `n` samples per step (at least 1).
    pub fn steps(self, active: usize, n: usize) -> u64 {
        match self {
            Length::Steps(s) => s,
            Length::Epochs(e) => ((e * active as f64) / n.max(1) as f64).ceil().max(1.0) as u64,
        }
    }
}

/// One phase of the expanded schedule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Phase {
    pub name: &'static str,
    pub length: Length,
    pub action: Action,
}

/// A phase's planned length: its steps and the blocks active during it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlannedPhase {
    pub steps: u64,
    pub active: usize,
}

/// Steps and active blocks of every phase of `schedule` over `n_blocks` blocks with `n`
/// samples per step, assuming each focus drops its full share (true once every block has been
/// seen, which a learn or review epoch ensures; never-seen blocks are not dropped and would
/// lengthen a phase).
pub(crate) fn plan(schedule: &[Phase], n_blocks: usize, n: usize) -> Vec<PlannedPhase> {
    let mut dropped = 0usize;
    schedule
        .iter()
        .map(|phase| {
            dropped = match phase.action {
                Action::All => 0,
                Action::Keep => dropped,
                Action::Focus { fraction, fresh } => {
                    let target = (fraction * n_blocks as f64).round() as usize;
                    target.max(if fresh { 0 } else { dropped })
                }
            };
            let active = n_blocks - dropped.min(n_blocks);
            PlannedPhase {
                steps: phase.length.steps(active, n),
                active,
            }
        })
        .collect()
}

fn default_phases() -> Vec<PhaseSpec> {
    let phase = |kind, drop_fraction| PhaseSpec {
        kind,
        epochs: Some(1.0),
        steps: None,
        drop_fraction,
    };
    vec![
        phase(PhaseKind::Learn, None),
        phase(PhaseKind::Focus, Some(0.5)),
        phase(PhaseKind::Review, None),
        phase(PhaseKind::Focus, Some(0.7)),
    ]
}

fn default_repeat_last() -> u32 {
    5
}

fn default_review() -> bool {
    true
}

impl Default for LfrParams {
    fn default() -> Self {
        Self {
            phases: default_phases(),
            repeat_last: default_repeat_last(),
            drop: DropRule::default(),
            review: default_review(),
            score: Score::default(),
        }
    }
}

impl LfrParams {
    /// Every range problem at once (`policy` names the table in messages).
    pub fn validate(&self, policy: &str) -> Result<(), SamplingError> {
        let mut problems = Vec::new();
        if self.phases.is_empty() {
            problems.push("phases must list at least one phase".to_string());
        }
        if self.repeat_last == 0 {
            problems.push("repeat_last must be >= 1".to_string());
        }
        for (i, p) in self.phases.iter().enumerate() {
            p.check(&format!("phases[{i}]"), &mut problems);
        }
        check_problems(policy, problems)
    }

    /// The schedule with `repeat_last` expanded and the `review` switch applied.
    pub(crate) fn expand(&self) -> Vec<Phase> {
        let mut specs: Vec<&PhaseSpec> = self.phases.iter().collect();
        if let Some(last) = self.phases.last() {
            specs.extend((1..self.repeat_last).map(|_| last));
        }
        let mut out: Vec<Phase> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let repeat = i >= self.phases.len();
            let prev = out.last().map(|p| p.action);
            out.push(spec.phase(self.review, repeat, prev));
        }
        out
    }
}

impl PhaseSpec {
    fn check(&self, key: &str, problems: &mut Vec<String>) {
        match (self.epochs, self.steps) {
            (Some(_), Some(_)) => {
                problems.push(format!("{key}: give `epochs` or `steps`, not both"))
            }
            (Some(e), None) if !(e.is_finite() && e > 0.0) => {
                problems.push(format!("{key}.epochs must be > 0, got {e}"))
            }
            (None, Some(0)) => problems.push(format!("{key}.steps must be > 0")),
            _ => {}
        }
        match (self.kind, self.drop_fraction) {
            (PhaseKind::Focus, None) => {
                problems.push(format!("{key}: a focus phase needs `drop_fraction`"))
            }
            (PhaseKind::Focus, Some(f)) => {
                check_fraction(problems, &format!("{key}.drop_fraction"), f)
            }
            (_, Some(_)) => {
                problems.push(format!("{key}.drop_fraction only applies to focus phases"))
            }
            _ => {}
        }
    }

    fn length(&self) -> Length {
        match self.steps {
            Some(s) => Length::Steps(s),
            None => Length::Epochs(self.epochs.unwrap_or(1.0)),
        }
    }

    /// The phase this spec becomes, given the `review` switch, whether it is a `repeat_last`
    /// repetition, and the previous phase's action.
    fn phase(&self, review: bool, repeat: bool, prev: Option<Action>) -> Phase {
        let (name, action) = match self.kind {
            PhaseKind::Learn => ("learn", Action::All),
            PhaseKind::Review if review => ("review", Action::All),
            PhaseKind::Review => ("review-off", Action::Keep),
            PhaseKind::Focus if repeat => ("focus", Action::Keep),
            PhaseKind::Focus => {
                let fresh = matches!(prev, None | Some(Action::All));
                let fraction = self.drop_fraction.unwrap_or(0.0);
                ("focus", Action::Focus { fraction, fresh })
            }
        };
        Phase {
            name,
            length: self.length(),
            action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(params: &LfrParams) -> Vec<(&'static str, Action)> {
        params
            .expand()
            .into_iter()
            .map(|p| (p.name, p.action))
            .collect()
    }

    #[test]
    fn default_schedule_expands_like_quokka() {
        let focus = |fraction, fresh| Action::Focus { fraction, fresh };
        let p = LfrParams::default();
        let mut want = vec![
            ("learn", Action::All),
            ("focus", focus(0.5, true)),
            ("review", Action::All),
            ("focus", focus(0.7, true)),
        ];
        want.extend([("focus", Action::Keep); 4]);
        assert_eq!(actions(&p), want);
        assert!(p.expand().iter().all(|ph| ph.length == Length::Epochs(1.0)));

        let off = LfrParams {
            review: false,
            ..LfrParams::default()
        };
        let got = actions(&off);
        assert_eq!(got[2], ("review-off", Action::Keep));
        assert_eq!(
            got[3],
            ("focus", focus(0.7, false)),
            "adds to the existing drops"
        );
    }

    #[test]
    fn default_schedule_spans_four_epochs_of_blocks() {
        let planned = plan(&LfrParams::default().expand(), 1000, 10);
        let steps: Vec<u64> = planned.iter().map(|p| p.steps).collect();
        assert_eq!(steps, [100, 50, 100, 30, 30, 30, 30, 30]);
        assert_eq!(planned[7].active, 300);

        let off = LfrParams {
            review: false,
            ..LfrParams::default()
        };
        let actives: Vec<usize> = plan(&off.expand(), 1000, 10)
            .iter()
            .map(|p| p.active)
            .collect();
        assert_eq!(actives, [1000, 500, 500, 300, 300, 300, 300, 300]);
    }

    #[test]
    fn lengths_count_active_blocks() {
        assert_eq!(Length::Epochs(1.0).steps(50, 10), 5);
        assert_eq!(Length::Epochs(1.0).steps(51, 10), 6);
        assert_eq!(Length::Epochs(0.01).steps(50, 10), 1);
        assert_eq!(Length::Steps(7).steps(50, 10), 7);
    }
}
