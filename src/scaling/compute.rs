//! Loss against compute, per group (e.g. per sampling policy): L = β·C^α, fitted as the
//! least-squares line ln L = ln β + α ln C. This is the Languini Kitchen comparison
//! (Languini Kitchen, arXiv 2309.11197): two such curves cross at C* = (β₁/β₂)^{1/(α₂−α₁)}.

use serde::Serialize;

use super::chinchilla::distinct;
use super::ScalingError;

/// A power law has two parameters; a third point leaves a residual to judge the fit by.
pub const MIN_POINTS: usize = 3;

/// L = beta · x^alpha (alpha < 0 when the loss falls with compute).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PowerLaw {
    pub alpha: f64,
    pub beta: f64,
}

impl PowerLaw {
    pub fn predict(&self, x: f64) -> f64 {
        self.beta * x.powf(self.alpha)
    }
}

/// Ordinary least squares in log-log over (x, loss) pairs; `group` names the curve in errors.
pub fn fit_power_law(group: &str, points: &[(f64, f64)]) -> Result<PowerLaw, ScalingError> {
    let what = || format!("loss vs compute for group `{group}`");
    if points.len() < MIN_POINTS {
        return Err(ScalingError::degenerate(
            what(),
            format!(
                "too few points: {} after filtering, need at least {MIN_POINTS}",
                points.len()
            ),
        ));
    }
    if distinct(points.iter().map(|p| p.0)).len() < 2 {
        return Err(ScalingError::degenerate(
            what(),
            format!(
                "all {} points have the same compute ({}): the slope is undefined",
                points.len(),
                points[0].0
            ),
        ));
    }
    if distinct(points.iter().map(|p| p.1)).len() < 2 {
        return Err(ScalingError::degenerate(
            what(),
            format!(
                "all {} losses are equal ({}): there is nothing to fit",
                points.len(),
                points[0].1
            ),
        ));
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0.ln()).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1.ln()).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in points {
        let dx = x.ln() - mx;
        sxx += dx * dx;
        sxy += dx * (y.ln() - my);
    }
    let alpha = sxy / sxx;
    Ok(PowerLaw {
        alpha,
        beta: (my - alpha * mx).exp(),
    })
}

/// Where two curves meet, and which is lower on each side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Crossing {
    /// C* in the units of the compute axis.
    pub x: f64,
    /// 0 or 1: the curve with the lower loss for compute below C*.
    pub lower_before: usize,
}

/// C* = (β₁/β₂)^{1/(α₂−α₁)}, computed in log space. `None` when the curves do not cross:
/// equal exponents (parallel lines in log-log) or a crossing beyond the range of f64.
pub fn crossover(p1: &PowerLaw, p2: &PowerLaw) -> Option<Crossing> {
    let slope_gap = p2.alpha - p1.alpha;
    if slope_gap == 0.0 {
        return None;
    }
    let ln_x = (p1.beta.ln() - p2.beta.ln()) / slope_gap;
    let x = ln_x.exp();
    if !x.is_finite() || x <= 0.0 {
        return None;
    }
    // ln L1 − ln L2 = (α1 − α2)(ln C − ln C*): below C* its sign is that of α2 − α1.
    let lower_before = if slope_gap > 0.0 { 1 } else { 0 };
    Some(Crossing { x, lower_before })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn power_law_is_recovered_from_noisy_points() {
        let truth = PowerLaw {
            alpha: -0.08,
            beta: 7.5,
        };
        let mut rng = Rng::new(3);
        let pts: Vec<(f64, f64)> = (0..12)
            .map(|i| {
                let x = 10f64.powf(1.0 + i as f64 * 0.3);
                (x, truth.predict(x) * (0.002 * rng.normal()).exp())
            })
            .collect();
        let fit = fit_power_law("g", &pts).unwrap();
        assert!((fit.alpha - truth.alpha).abs() < 0.003, "{fit:?}");
        assert!((fit.beta / truth.beta - 1.0).abs() < 0.02, "{fit:?}");
    }

    #[test]
    fn crossover_matches_the_closed_form_and_sides() {
        // GPT-like: lower now, shallower; qLSTM-like: higher now, steeper.
        let gpt = PowerLaw {
            alpha: -0.05,
            beta: 4.0,
        };
        let lstm = PowerLaw {
            alpha: -0.08,
            beta: 5.0,
        };
        let c = crossover(&gpt, &lstm).unwrap();
        let expected = (4.0f64 / 5.0).powf(1.0 / (-0.08 - -0.05));
        assert!(
            (c.x / expected - 1.0).abs() < 1e-12,
            "{} vs {expected}",
            c.x
        );
        assert!((gpt.predict(c.x) / lstm.predict(c.x) - 1.0).abs() < 1e-12);
        assert_eq!(c.lower_before, 0);
        assert!(gpt.predict(c.x / 10.0) < lstm.predict(c.x / 10.0));
        assert_eq!(crossover(&lstm, &gpt).unwrap().lower_before, 1);
    }

    #[test]
    fn parallel_curves_do_not_cross() {
        let a = PowerLaw {
            alpha: -0.1,
            beta: 4.0,
        };
        let b = PowerLaw { beta: 5.0, ..a };
        assert_eq!(crossover(&a, &b), None);
        let nearly = PowerLaw {
            alpha: -0.1 + 1e-300,
            beta: 5.0,
        };
        assert_eq!(crossover(&a, &nearly), None, "C* beyond f64 range");
    }

    #[test]
    fn degenerate_groups_are_rejected_with_the_group_name() {
        let msg = fit_power_law("lfr", &[(1.0, 3.0), (2.0, 2.9)])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("group `lfr`") && msg.contains("too few points: 2"),
            "{msg}"
        );
        let msg = fit_power_law("u", &[(1.0, 3.0), (1.0, 2.9), (1.0, 2.8)])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("same compute"), "{msg}");
        let msg = fit_power_law("u", &[(1.0, 3.0), (2.0, 3.0), (4.0, 3.0)])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("all 3 losses are equal"), "{msg}");
    }
}
