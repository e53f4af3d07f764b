//! `[budget]`: how much compute a run may spend (Languini's compute classes).
//!
//! Exactly one amount: `steps`, `tokens`, `flops`, or accelerator hours (`class = "6h"` or
//! `accelerator_hours = 6.0`). Hours need a reference throughput, from exactly one of
//! `throughput_file` (written by `syllabus throughput`), `tokens_per_s` (a published figure) or
//! `measure_throughput = true` (the run measures it before step 0). The other amounts may name a
//! reference too, for `budget/theoretical_hours` and for charging forward-only work at a measured
//! rate. `wall_clock_hours` is an independent hard cap on the run's wall time.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Languini's compute classes (arXiv 2309.11197): the GPT and qLSTM baselines use 6-96 h.
pub const COMPUTE_CLASSES: [(&str, f64); 7] = [
    ("3h", 3.0),
    ("6h", 6.0),
    ("12h", 12.0),
    ("24h", 24.0),
    ("48h", 48.0),
    ("96h", 96.0),
    ("192h", 192.0),
];

/// Hours of a named compute class (`"6h"`), if it is one.
pub fn class_hours(name: &str) -> Option<f64> {
    COMPUTE_CLASSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, h)| h)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Optimizer steps.
    pub steps: Option<u64>,
    /// Training tokens (sequences x context per step; the step count is floored).
    pub tokens: Option<u64>,
    /// Training FLOPs, at the model's FLOPs per token (6N + attention, `GptConfig::flops_per_token`).
    pub flops: Option<f64>,
    /// A named compute class in reference accelerator-hours: "3h", "6h", "12h", "24h", "48h",
    /// "96h", "192h".
    pub class: Option<String>,
    /// A custom compute class, in reference accelerator-hours.
    pub accelerator_hours: Option<f64>,
    /// A reference-throughput JSON file written by `syllabus throughput` (relative paths are
    /// resolved from the working directory). Copied into the run directory at the start.
    pub throughput_file: Option<PathBuf>,
    /// A reference training throughput in tokens/s (e.g. a published one: GPT-small on an RTX
    /// 3090 is 55,416). Forward-only work is then charged at 3x this rate (2N vs 6N FLOPs).
    pub tokens_per_s: Option<f64>,
    /// Measure the reference throughput on this machine before step 0 (never re-measured, also
    /// not on resume: the measurement is stored in the run directory).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub measure_throughput: bool,
    /// How a fractional step count is rounded: "floor" (default: never spends more than the
    /// budget; Languini's `throughput.py`) or "nearest" (Languini's notebook, which produced
    /// the step counts in its README, e.g. 18,265 for GPT-small at 6 h where floor gives 18,264).
    #[serde(default, skip_serializing_if = "StepRounding::is_floor")]
    pub rounding: StepRounding,
    /// Hard cap on the run's wall time in hours (everything included: evaluation, checkpoints).
    /// With the WSD schedule the decay starts early enough that the run still ends cooled down.
    pub wall_clock_hours: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepRounding {
    #[default]
    Floor,
    Nearest,
}

impl StepRounding {
    fn is_floor(&self) -> bool {
        *self == StepRounding::Floor
    }
}

/// Which amount a config chose, resolved (class names become hours).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "amount")]
pub enum BudgetAmount {
    Steps(u64),
    Tokens(u64),
    Flops(f64),
    AcceleratorHours(f64),
}

impl BudgetConfig {
    /// The one amount set. Invariant: the config validated.
    pub fn amount(&self) -> BudgetAmount {
        self.amounts()
            .into_iter()
            .next()
            .expect("validated budget has exactly one amount")
            .1
    }

    fn amounts(&self) -> Vec<(&'static str, BudgetAmount)> {
        let mut v = Vec::new();
        if let Some(s) = self.steps {
            v.push(("steps", BudgetAmount::Steps(s)));
        }
        if let Some(t) = self.tokens {
            v.push(("tokens", BudgetAmount::Tokens(t)));
        }
        if let Some(f) = self.flops {
            v.push(("flops", BudgetAmount::Flops(f)));
        }
        if let Some(c) = &self.class {
            // An unknown class is reported by `problems`; NaN keeps it out of any arithmetic.
            let hours = class_hours(c).unwrap_or(f64::NAN);
            v.push(("class", BudgetAmount::AcceleratorHours(hours)));
        }
        if let Some(h) = self.accelerator_hours {
            v.push(("accelerator_hours", BudgetAmount::AcceleratorHours(h)));
        }
        v
    }

    /// Number of reference-throughput sources given.
    fn references(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.throughput_file.is_some() {
            v.push("throughput_file");
        }
        if self.tokens_per_s.is_some() {
            v.push("tokens_per_s");
        }
        if self.measure_throughput {
            v.push("measure_throughput");
        }
        v
    }

    /// Every problem, as `budget.<field> ...` lines.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let amounts = self.amounts();
        match amounts.len() {
            0 => p.push(
                "budget: set exactly one of steps, tokens, flops, class, accelerator_hours \
                 (e.g. [budget] steps = 600)"
                    .into(),
            ),
            1 => {}
            _ => {
                let names: Vec<&str> = amounts.iter().map(|(n, _)| *n).collect();
                p.push(format!(
                    "budget: set exactly one amount, got {}",
                    names.join(" and ")
                ));
            }
        }
        if let Some(c) = &self.class {
            if class_hours(c).is_none() {
                let known: Vec<&str> = COMPUTE_CLASSES.iter().map(|(n, _)| *n).collect();
                p.push(format!(
                    "budget.class {c:?} is not a compute class; known: {} \
                     (or set budget.accelerator_hours)",
                    known.join(", ")
                ));
            }
        }
        self.check_numbers(&mut p);
        let refs = self.references();
        if refs.len() > 1 {
            p.push(format!(
                "budget: set at most one reference throughput, got {}",
                refs.join(" and ")
            ));
        }
        let hours = amounts
            .iter()
            .any(|(_, a)| matches!(a, BudgetAmount::AcceleratorHours(_)));
        if hours && refs.is_empty() {
            p.push(
                "budget: accelerator hours need a reference throughput: set throughput_file \
                 (from `syllabus throughput`), tokens_per_s, or measure_throughput = true"
                    .into(),
            );
        }
        p
    }

    fn check_numbers(&self, p: &mut Vec<String>) {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if self.steps == Some(0) {
            p.push("budget.steps must be > 0".into());
        }
        if self.tokens == Some(0) {
            p.push("budget.tokens must be > 0".into());
        }
        for (name, v) in [
            ("flops", self.flops),
            ("accelerator_hours", self.accelerator_hours),
            ("tokens_per_s", self.tokens_per_s),
            ("wall_clock_hours", self.wall_clock_hours),
        ] {
            if let Some(x) = v.filter(|&x| !positive(x)) {
                p.push(format!(
                    "budget.{name} must be a finite number > 0, got {x}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> BudgetConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn exactly_one_amount() {
        assert!(cfg("steps = 10").problems().is_empty());
        assert_eq!(cfg("steps = 10").amount(), BudgetAmount::Steps(10));
        let none = cfg("").problems();
        assert!(none[0].contains("exactly one of"), "{none:?}");
        let two = cfg("steps = 10\ntokens = 5").problems();
        assert!(two[0].contains("steps and tokens"), "{two:?}");
    }

    #[test]
    fn classes_resolve_and_unknown_ones_are_listed() {
        let c = cfg("class = \"6h\"\ntokens_per_s = 55416.0");
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.amount(), BudgetAmount::AcceleratorHours(6.0));
        let bad = cfg("class = \"7h\"\ntokens_per_s = 1.0").problems();
        assert!(
            bad[0].contains("\"7h\"") && bad[0].contains("96h"),
            "{bad:?}"
        );
    }

    #[test]
    fn hours_need_exactly_one_reference() {
        let none = cfg("accelerator_hours = 1.5").problems();
        assert!(none[0].contains("need a reference"), "{none:?}");
        let two = cfg("accelerator_hours = 1.5\ntokens_per_s = 3.0\nmeasure_throughput = true")
            .problems();
        assert!(
            two[0].contains("tokens_per_s and measure_throughput"),
            "{two:?}"
        );
    }

    #[test]
    fn numbers_must_be_positive_and_all_problems_are_reported() {
        let p = cfg("flops = -1.0\ntokens_per_s = 0.0\nwall_clock_hours = nan").problems();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p.iter().any(|l| l.contains("budget.flops")));
        assert!(p.iter().any(|l| l.contains("budget.tokens_per_s")));
        assert!(p.iter().any(|l| l.contains("budget.wall_clock_hours")));
    }
}
