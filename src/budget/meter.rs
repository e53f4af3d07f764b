//! What a run has spent, and when it must stop.
//!
//! Charged: every trained token, and every forward-only token a policy asked to score (at the
//! plan's `forward_cost`). Not charged but timed separately (Languini counts only theoretical
//! training time): evaluation, checkpointing, logging, throughput calibration. The usage is saved
//! in every checkpoint, so a resumed run continues the same budget and counts nothing twice.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::BudgetPlan;
use crate::config::{ScheduleConfig, ScheduleKind};
use crate::optim::{lr_at, lr_linear_decay, wsd_decay_start};

/// Wall seconds by activity, summed over every session of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WallSeconds {
    /// Batch selection, forward, backward, optimizer, ledger updates, scoring passes.
    pub train: f64,
    pub eval: f64,
    pub checkpoint: f64,
    pub logging: f64,
    /// Measuring the reference throughput before step 0.
    pub calibration: f64,
    /// Everything, start-up included.
    pub total: f64,
}

/// The budget spent so far; persisted in checkpoints (`TrainState::budget`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetUsage {
    pub trained_tokens: u64,
    pub scored_tokens: u64,
    pub wall: WallSeconds,
    /// Set once the wall-clock cap moved the WSD decay earlier.
    pub wall_decay: Option<WallDecay>,
}

/// A WSD decay moved by the wall-clock cap: linear from the peak at `start` to the floor at
/// `end - 1`; the run ends after step `end - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallDecay {
    pub start: u64,
    pub end: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Train,
    Eval,
    Checkpoint,
    Logging,
    Calibration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All planned steps ran.
    Planned,
    /// The next step would overspend (policies whose scoring exceeds what they declared).
    BudgetSpent,
    /// The wall-clock cap ended the run (cooled down first under WSD).
    WallClockCap,
}

pub struct BudgetMeter {
    plan: BudgetPlan,
    usage: BudgetUsage,
    /// Wall total of earlier sessions; this session's elapsed time is added on read.
    wall_before: f64,
    session_start: Instant,
    steps_this_session: u64,
}

impl BudgetMeter {
    /// Continues `usage` (default for a fresh run) under `plan`.
    pub fn new(plan: BudgetPlan, usage: BudgetUsage) -> Self {
        Self {
            plan,
            wall_before: usage.wall.total,
            usage,
            session_start: Instant::now(),
            steps_this_session: 0,
        }
    }

    pub fn plan(&self) -> &BudgetPlan {
        &self.plan
    }

    /// The usage with the wall total brought up to now.
    pub fn usage(&self) -> BudgetUsage {
        let mut u = self.usage.clone();
        u.wall.total = self.wall_total();
        u
    }

    fn wall_total(&self) -> f64 {
        self.wall_before + self.session_start.elapsed().as_secs_f64()
    }

    pub fn add_wall(&mut self, activity: Activity, d: Duration) {
        let w = &mut self.usage.wall;
        let slot = match activity {
            Activity::Train => &mut w.train,
            Activity::Eval => &mut w.eval,
            Activity::Checkpoint => &mut w.checkpoint,
            Activity::Logging => &mut w.logging,
            Activity::Calibration => &mut w.calibration,
        };
        *slot += d.as_secs_f64();
    }

    /// Charges one finished step's work.
    pub fn charge_step(&mut self, trained_tokens: u64, scored_tokens: u64) {
        self.usage.trained_tokens += trained_tokens;
        self.usage.scored_tokens += scored_tokens;
        self.steps_this_session += 1;
    }

    pub fn used_units(&self) -> f64 {
        self.plan
            .units(self.usage.trained_tokens, self.usage.scored_tokens)
    }

    pub fn remaining_fraction(&self) -> f64 {
        (1.0 - self.used_units() / self.plan.total_units).max(0.0)
    }

    /// The step the run ends at: the plan's, or earlier under a wall-clock decay.
    pub fn final_step(&self) -> u64 {
        match self.usage.wall_decay {
            Some(d) => d.end.min(self.plan.planned_steps),
            None => self.plan.planned_steps,
        }
    }

    /// LR of `step`: the schedule over the planned steps, or the moved WSD decay.
    pub fn lr(&self, step: u64, peak: f64, schedule: &ScheduleConfig) -> f64 {
        match self.usage.wall_decay {
            Some(d) if step >= d.start => lr_linear_decay(step, d.start, d.end, peak, schedule),
            _ => lr_at(step, self.plan.planned_steps, peak, schedule),
        }
    }

    /// Why the run must stop before running `step`, if it must.
    pub fn stop_reason(&self, step: u64) -> Option<StopReason> {
        if step >= self.final_step() {
            return Some(match step < self.plan.planned_steps {
                true => StopReason::WallClockCap,
                false => StopReason::Planned,
            });
        }
        // A relative epsilon: unit sums are exact integers unless scoring is charged.
        let total = self.plan.total_units;
        if self.used_units() + self.plan.step_units() > total * (1.0 + 1e-12) {
            return Some(StopReason::BudgetSpent);
        }
        let cap = self.cap_seconds()?;
        (self.wall_total() + self.seconds_per_step() > cap).then_some(StopReason::WallClockCap)
    }

    fn cap_seconds(&self) -> Option<f64> {
        self.plan.wall_clock_hours.map(|h| h * 3600.0)
    }

    /// Mean wall time per step of this session, overheads included (0 before the first step).
    fn seconds_per_step(&self) -> f64 {
        match self.steps_this_session {
            0 => 0.0,
            n => self.session_start.elapsed().as_secs_f64() / n as f64,
        }
    }

    /// After `steps_done` steps: under WSD with a wall-clock cap, starts the decay once the
    /// remaining wall time reaches the decay fraction of the cap, sized to the steps that fit.
    pub fn check_wall_cap(&mut self, steps_done: u64, schedule: &ScheduleConfig) {
        let Some(cap) = self.cap_seconds() else {
            return;
        };
        if schedule.kind != ScheduleKind::Wsd || self.usage.wall_decay.is_some() {
            return;
        }
        self.usage.wall_decay = plan_wall_decay(
            self.wall_total(),
            cap,
            self.seconds_per_step(),
            steps_done,
            self.plan.planned_steps,
            schedule,
        );
    }

    /// TensorBoard scalars (`budget/*`).
    pub fn scalars(&self) -> Vec<(&'static str, f64)> {
        let u = self.usage();
        let mut v = vec![
            ("budget/remaining_fraction", self.remaining_fraction()),
            ("budget/wall_hours", u.wall.total / 3600.0),
            ("budget/train_wall_hours", u.wall.train / 3600.0),
            ("budget/eval_wall_hours", u.wall.eval / 3600.0),
            ("budget/checkpoint_wall_hours", u.wall.checkpoint / 3600.0),
            ("budget/logging_wall_hours", u.wall.logging / 3600.0),
            ("budget/scored_tokens", u.scored_tokens as f64),
        ];
        if let Some(h) = self.plan.theoretical_hours(self.used_units()) {
            v.push(("budget/theoretical_hours", h));
        }
        v
    }
}

/// The decay a wall-clock cap forces, if any: none while more than `decay_fraction` of the cap
/// remains, none if the planned steps finish in time at `secs_per_step` or the scheduled decay
/// has begun; otherwise a decay from `step` over the steps that fit in the remaining time.
pub fn plan_wall_decay(
    elapsed: f64,
    cap: f64,
    secs_per_step: f64,
    step: u64,
    planned: u64,
    schedule: &ScheduleConfig,
) -> Option<WallDecay> {
    let remaining = cap - elapsed;
    if remaining > schedule.decay_fraction * cap || secs_per_step <= 0.0 {
        return None;
    }
    let fits = (remaining.max(0.0) / secs_per_step).floor() as u64;
    let in_time = step + fits >= planned;
    if in_time || step >= wsd_decay_start(planned, schedule) {
        return None;
    }
    Some(WallDecay {
        start: step,
        end: step + fits.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{BudgetAmount, StepRounding};

    fn wsd() -> ScheduleConfig {
        ScheduleConfig {
            kind: ScheduleKind::Wsd,
            warmup_steps: 0,
            min_lr_ratio: 0.1,
            decay_fraction: 0.2,
        }
    }

    fn meter(steps: u64, scored: u64) -> BudgetMeter {
        let amount = BudgetAmount::Steps(steps);
        let plan = BudgetPlan::new(amount, 100, scored, 6.0, None, None, StepRounding::Floor);
        BudgetMeter::new(plan.unwrap(), BudgetUsage::default())
    }

    #[test]
    fn wall_decay_starts_when_the_decay_fraction_of_the_cap_remains() {
        let s = wsd();
        // 1000 s cap, 20% decay: nothing before 800 s.
        assert_eq!(plan_wall_decay(799.0, 1000.0, 1.0, 100, 10_000, &s), None);
        // At 800 s with 1 s/step, 200 steps fit: decay over steps 500..700.
        let d = plan_wall_decay(800.0, 1000.0, 1.0, 500, 10_000, &s).unwrap();
        assert_eq!(
            d,
            WallDecay {
                start: 500,
                end: 700
            }
        );
        // The planned 600 steps finish in time: no change.
        assert_eq!(plan_wall_decay(800.0, 1000.0, 1.0, 500, 600, &s), None);
        // Already inside the scheduled decay (starts at 8,000 of 10,000): no change.
        assert_eq!(plan_wall_decay(800.0, 1000.0, 1.0, 8_500, 10_000, &s), None);
    }

    #[test]
    fn lr_follows_the_moved_decay_and_the_run_ends_at_its_end() {
        let s = wsd();
        let mut m = meter(1000, 0);
        m.usage.wall_decay = Some(WallDecay {
            start: 100,
            end: 201,
        });
        assert_eq!(m.lr(99, 1.0, &s), 1.0);
        assert_eq!(m.lr(100, 1.0, &s), 1.0);
        assert!((m.lr(150, 1.0, &s) - 0.55).abs() < 1e-12);
        assert!((m.lr(200, 1.0, &s) - 0.1).abs() < 1e-12);
        assert_eq!(m.final_step(), 201);
        assert_eq!(m.stop_reason(201), Some(StopReason::WallClockCap));
        assert_eq!(m.stop_reason(200), None);
    }

    #[test]
    fn charges_accumulate_and_the_budget_stops_the_run() {
        let mut m = meter(10, 0);
        for step in 0..10 {
            assert_eq!(m.stop_reason(step), None);
            m.charge_step(100, 0);
        }
        assert_eq!(m.stop_reason(10), Some(StopReason::Planned));
        assert_eq!(m.remaining_fraction(), 0.0);
        // A policy that scores more than it declared runs out of budget before the plan ends.
        let mut m = meter(10, 0);
        m.charge_step(100, 2700); // 100 + 2700 / 3 = 1000 units: all of it
        assert_eq!(m.stop_reason(1), Some(StopReason::BudgetSpent));
    }

    #[test]
    fn usage_round_trips_and_wall_time_accumulates_across_sessions() {
        let mut m = meter(10, 0);
        m.charge_step(100, 30);
        m.add_wall(Activity::Eval, Duration::from_secs(2));
        let mut u = m.usage();
        u.wall.total += 5.0;
        let json = serde_json::to_string(&u).unwrap();
        let back: BudgetUsage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, u);
        let m2 = BudgetMeter::new(m.plan().clone(), back);
        assert_eq!(m2.used_units(), 110.0);
        assert!(m2.usage().wall.total >= 5.0);
        assert_eq!(m2.usage().wall.eval, 2.0);
    }
}
