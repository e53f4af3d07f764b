//! The budget as a step count, fixed before step 0 (Languini: steps = hours x 3600 x tokens/s /
//! tokens per step, floored as in `throughput.py`).
//!
//! Everything is counted in *training-token equivalents* (units): a trained token costs 1, a
//! forward-only token (a policy's scoring work) costs `forward_cost` = train rate / forward rate
//! (measured; 1/3 by FLOPs when no measurement exists). Each amount converts to units:
//! steps x tokens per step, tokens, FLOPs / FLOPs per token, hours x 3600 x reference tokens/s.
//! So all policies get the same compute, and one that scores candidates gets fewer steps.

use serde::Serialize;

use super::{BudgetAmount, BudgetError, StepRounding, ThroughputReference, FORWARD_COST_BY_FLOPS};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetPlan {
    pub amount: BudgetAmount,
    /// Sequences x context per optimizer step.
    pub tokens_per_step: u64,
    /// Forward-only tokens the policy declared it scores per step.
    pub scored_tokens_per_step: u64,
    /// Cost of a forward-only token, in training tokens.
    pub forward_cost: f64,
    /// The whole budget in training-token equivalents (with "nearest" rounding, raised to the
    /// rounded step count when that rounds up).
    pub total_units: f64,
    pub rounding: StepRounding,
    /// Steps the budget buys; the LR schedule is laid out over exactly these.
    pub planned_steps: u64,
    pub flops_per_token: f64,
    pub reference: Option<ThroughputReference>,
    pub wall_clock_hours: Option<f64>,
}

impl BudgetPlan {
    /// Converts `amount` to steps. `scored_tokens_per_step` is the policy's declared scoring
    /// work per step (0 for policies that only train).
    pub fn new(
        amount: BudgetAmount,
        tokens_per_step: u64,
        scored_tokens_per_step: u64,
        flops_per_token: f64,
        reference: Option<ThroughputReference>,
        wall_clock_hours: Option<f64>,
        rounding: StepRounding,
    ) -> Result<Self, BudgetError> {
        let forward_cost = reference
            .as_ref()
            .map_or(FORWARD_COST_BY_FLOPS, ThroughputReference::forward_cost);
        let total_units = match amount {
            BudgetAmount::Steps(s) => (s * tokens_per_step) as f64,
            BudgetAmount::Tokens(t) => t as f64,
            BudgetAmount::Flops(f) => f / flops_per_token,
            BudgetAmount::AcceleratorHours(h) => {
                let tps = reference
                    .as_ref()
                    .ok_or(BudgetError::NoReference)?
                    .tokens_per_s;
                h * 3600.0 * tps
            }
        };
        let per_step = tokens_per_step as f64 + scored_tokens_per_step as f64 * forward_cost;
        let exact = total_units / per_step;
        let planned_steps = match rounding {
            StepRounding::Floor => exact.floor(),
            StepRounding::Nearest => exact.round(),
        } as u64;
        let total_units = total_units.max(planned_steps as f64 * per_step);
        if planned_steps == 0 {
            return Err(BudgetError::LessThanOneStep {
                amount,
                units: total_units,
                per_step,
            });
        }
        Ok(Self {
            amount,
            tokens_per_step,
            scored_tokens_per_step,
            forward_cost,
            total_units,
            rounding,
            planned_steps,
            flops_per_token,
            reference,
            wall_clock_hours,
        })
    }

    /// Units charged for `trained` training tokens and `scored` forward-only tokens.
    pub fn units(&self, trained: u64, scored: u64) -> f64 {
        trained as f64 + scored as f64 * self.forward_cost
    }

    /// Units one more step costs, at the declared scoring rate.
    pub fn step_units(&self) -> f64 {
        self.units(self.tokens_per_step, self.scored_tokens_per_step)
    }

    /// Theoretical reference-accelerator hours of `units` (Languini's `theoretical_gpu_seconds`),
    /// when a reference throughput is known.
    pub fn theoretical_hours(&self, units: f64) -> Option<f64> {
        self.reference
            .as_ref()
            .map(|r| units / r.tokens_per_s / 3600.0)
    }

    /// `(field, value)` rows for the start-of-run table and the run's `budget.json`.
    pub fn table_rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            ("amount".to_string(), describe(self.amount)),
            ("tokens per step".into(), self.tokens_per_step.to_string()),
            ("planned steps".into(), self.planned_steps.to_string()),
            (
                "planned tokens".into(),
                (self.planned_steps * self.tokens_per_step).to_string(),
            ),
            (
                "budget (train-token units)".into(),
                format!("{:.0}", self.total_units),
            ),
            (
                "planned FLOPs".into(),
                format!(
                    "{:.3e}",
                    (self.planned_steps * self.tokens_per_step) as f64 * self.flops_per_token
                ),
            ),
        ];
        if self.scored_tokens_per_step > 0 {
            rows.push((
                "scored tokens per step".into(),
                format!(
                    "{} at {:.3} units each",
                    self.scored_tokens_per_step, self.forward_cost
                ),
            ));
        }
        if let Some(r) = &self.reference {
            rows.push((
                "reference throughput".into(),
                format!(
                    "{:.1} tokens/s train, {:.1} forward-only ({}, {})",
                    r.tokens_per_s, r.forward_tokens_per_s, r.source, r.device
                ),
            ));
            if let Some(h) = self.theoretical_hours(self.total_units) {
                rows.push(("theoretical hours".into(), format!("{h:.4}")));
            }
        }
        if let Some(h) = self.wall_clock_hours {
            rows.push(("wall-clock cap".into(), format!("{h} h")));
        }
        rows
    }
}

fn describe(amount: BudgetAmount) -> String {
    match amount {
        BudgetAmount::Steps(s) => format!("{s} steps"),
        BudgetAmount::Tokens(t) => format!("{t} tokens"),
        BudgetAmount::Flops(f) => format!("{f:.3e} FLOPs"),
        BudgetAmount::AcceleratorHours(h) => format!("{h} accelerator-hours"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const F: StepRounding = StepRounding::Floor;

    fn reference(tps: f64, forward_tps: f64) -> ThroughputReference {
        let mut r = ThroughputReference::from_rate(tps, 1, 1, 512);
        r.forward_tokens_per_s = forward_tps;
        r
    }

    #[test]
    fn languini_gpt_small_6h() {
        // The Languini README: 55,416 tok/s, batch 128 x 512, 6 h = 18,264.55 steps. The Languini
        // README says 18,265 (its notebook rounds); floored, it is 18,264.
        let plan = |rounding| {
            let r = reference(55_416.0, 3.0 * 55_416.0);
            let amount = BudgetAmount::AcceleratorHours(6.0);
            BudgetPlan::new(amount, 128 * 512, 0, 1.0, Some(r), None, rounding).unwrap()
        };
        let p = plan(F);
        assert_eq!(p.planned_steps, 18_264);
        assert_eq!(p.total_units, 6.0 * 3600.0 * 55_416.0);
        let p = plan(StepRounding::Nearest);
        assert_eq!(p.planned_steps, 18_265);
        assert_eq!(
            p.total_units,
            18_265.0 * 128.0 * 512.0,
            "the rounded-up step is granted"
        );
        // 12 h and 24 h at batch 256 are 36,529 steps in the Languini README.
        let r = reference(55_416.0, 3.0 * 55_416.0);
        let p12 = BudgetPlan::new(
            BudgetAmount::AcceleratorHours(12.0),
            128 * 512,
            0,
            1.0,
            Some(r),
            None,
            F,
        );
        assert_eq!(p12.unwrap().planned_steps, 36_529);
    }

    #[test]
    fn steps_tokens_and_flops_convert_and_floor() {
        let p = BudgetPlan::new(BudgetAmount::Steps(600), 2048, 0, 6.0, None, None, F).unwrap();
        assert_eq!(p.planned_steps, 600);
        let p = BudgetPlan::new(BudgetAmount::Tokens(10_000), 2048, 0, 6.0, None, None, F).unwrap();
        assert_eq!(p.planned_steps, 4, "10,000 / 2,048 floors to 4");
        let p = BudgetPlan::new(
            BudgetAmount::Flops(6.0 * 4096.0),
            2048,
            0,
            6.0,
            None,
            None,
            F,
        );
        assert_eq!(p.unwrap().planned_steps, 2);
        let err =
            BudgetPlan::new(BudgetAmount::Tokens(100), 2048, 0, 6.0, None, None, F).unwrap_err();
        assert!(err.to_string().contains("less than one step"), "{err}");
    }

    #[test]
    fn scoring_work_is_charged_at_the_forward_rate() {
        // Forward-only runs 4x faster than training here: a scored token costs 0.25 units.
        let r = reference(1000.0, 4000.0);
        let p =
            BudgetPlan::new(BudgetAmount::Steps(100), 1000, 2000, 6.0, Some(r), None, F).unwrap();
        assert_eq!(p.forward_cost, 0.25);
        assert_eq!(p.step_units(), 1500.0);
        assert_eq!(p.planned_steps, 66, "100,000 units / 1,500 per step");
        // Without a measurement, forward-only work costs a third (2N of 6N FLOPs).
        let p = BudgetPlan::new(BudgetAmount::Steps(100), 1000, 3000, 6.0, None, None, F).unwrap();
        assert_eq!(p.planned_steps, 50);
    }

    #[test]
    fn theoretical_hours_need_a_reference() {
        let p = BudgetPlan::new(BudgetAmount::Steps(10), 100, 0, 6.0, None, None, F).unwrap();
        assert_eq!(p.theoretical_hours(1000.0), None);
        let r = reference(1000.0, 3000.0);
        let p = BudgetPlan::new(BudgetAmount::Steps(10), 100, 0, 6.0, Some(r), None, F).unwrap();
        assert_eq!(p.theoretical_hours(3_600_000.0), Some(1.0));
    }
}
