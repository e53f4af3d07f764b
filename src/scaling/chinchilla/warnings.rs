//! Plain-language warnings for fits that converged but do not identify their parameters.
//! The optimiser reports the best objective it found; whether the data pin down A, α or E is
//! a separate question, and tables with few model sizes often do not (the datablations table
//! has three sizes within a factor of 3.1).

use super::{distinct, LawParams, Point};

/// ColPret's `closer_in_scale_is_predictive` fits windows of 4 consecutive model sizes
/// (arXiv 2410.11840); fewer than that leaves A and α weakly constrained.
pub const MIN_SIZES_ADVISED: usize = 4;

/// Exponents beyond this turn a power-law term into a step between two observed sizes
/// (published fits are between 0.05 and 0.8).
pub const MAX_PLAUSIBLE_EXPONENT: f64 = 2.0;

/// A term smaller than this share of the loss at every point has no effect on the fit.
pub const NEGLIGIBLE_SHARE: f64 = 1e-4;

/// Warnings about `law` fitted to `points`; empty when none apply.
pub fn fit_warnings(points: &[Point], law: &LawParams) -> Vec<String> {
    let mut out = Vec::new();
    let sizes = distinct(points.iter().map(|p| p.ln_n.exp())).len();
    if sizes < MIN_SIZES_ADVISED {
        out.push(format!(
            "only {sizes} model sizes: A and alpha are weakly identified (use {MIN_SIZES_ADVISED} or more sizes)"
        ));
    }
    for (name, value, term) in [("alpha", law.alpha, "N"), ("beta", law.beta, "D")] {
        if value > MAX_PLAUSIBLE_EXPONENT {
            out.push(format!(
                "{name} = {value:.3} is implausibly large: the {term} term acts as a step between \
                 the observed values, so its constant and exponent are not identified"
            ));
        }
    }
    let max_share = |k: usize| {
        points
            .iter()
            .map(|p| law.terms(p.ln_n, p.ln_d)[k] / p.loss)
            .fold(0.0, f64::max)
    };
    for (k, what) in [
        (0, "the N term A/N^alpha"),
        (1, "the D term B/D^beta"),
        (2, "E"),
    ] {
        if max_share(k) < NEGLIGIBLE_SHARE {
            out.push(format!(
                "{what} is below {NEGLIGIBLE_SHARE} of the loss at every point: the fit has \
                 dropped the term, so it is not identified"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(sizes: &[f64]) -> Vec<Point> {
        let truth = LawParams::from_plain(1.69, 406.4, 410.7, 0.34, 0.28);
        sizes
            .iter()
            .flat_map(|&n| [1e9, 1e10, 1e11].map(|d| Point::new(n, d, truth.predict(n, d))))
            .collect()
    }

    #[test]
    fn a_healthy_fit_has_no_warnings() {
        let truth = LawParams::from_plain(1.69, 406.4, 410.7, 0.34, 0.28);
        assert!(fit_warnings(&grid(&[1e7, 1e8, 1e9, 1e10]), &truth).is_empty());
    }

    #[test]
    fn few_sizes_step_exponents_and_vanished_terms_are_named() {
        let pts = grid(&[2.8e9, 4.2e9, 8.7e9]);
        let step = LawParams::from_plain(1.94, 4.0e188, 331.4, 20.1, 0.257);
        let w = fit_warnings(&pts, &step);
        assert!(w[0].starts_with("only 3 model sizes"), "{w:?}");
        assert!(
            w.iter()
                .any(|m| m.starts_with("alpha = 20.100 is implausibly large")),
            "{w:?}"
        );
        let no_floor = LawParams::from_plain(1e-17, 150.0, 9.9, 0.257, 0.058);
        let w = fit_warnings(&pts, &no_floor);
        assert!(w.iter().any(|m| m.starts_with("E is below")), "{w:?}");
    }
}
