//! Recovery of known parameters from synthetic data, and the degenerate-input errors.

use super::*;
use crate::rng::Rng;

/// Hoffmann et al. (2022) Approach 3 estimates.
pub(crate) fn chinchilla_truth() -> LawParams {
    LawParams::from_plain(1.69, 406.4, 410.7, 0.34, 0.28)
}

/// A 6 x 6 grid of N in [1e7, 1e10] and D in [1e9, 1e12] (log-spaced), loss times
/// exp(σ·z) noise with σ = `noise`.
pub(crate) fn synthetic(truth: &LawParams, noise: f64, seed: u64) -> Vec<Point> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for i in 0..6 {
        for j in 0..6 {
            let n = 10f64.powf(7.0 + 3.0 * i as f64 / 5.0);
            let d = 10f64.powf(9.0 + 3.0 * j as f64 / 5.0);
            let loss = truth.predict(n, d) * (noise * rng.normal()).exp();
            out.push(Point::new(n, d, loss));
        }
    }
    out
}

/// Stated tolerance at 0.5% noise: exponents within 0.03, E within 0.05, A and B within a
/// factor e^0.4 (A and α trade off along a ridge, so A is the loosest parameter).
fn assert_recovered(fit: &LawParams, truth: &LawParams, label: &str) {
    let msg = format!("{label}: fitted {fit:?}");
    assert!((fit.alpha - truth.alpha).abs() < 0.03, "{msg}");
    assert!((fit.beta - truth.beta).abs() < 0.03, "{msg}");
    assert!((fit.big_e() - truth.big_e()).abs() < 0.05, "{msg}");
    assert!((fit.a - truth.a).abs() < 0.4, "{msg}");
    assert!((fit.b - truth.b).abs() < 0.4, "{msg}");
}

#[test]
fn huber_grid_fit_recovers_chinchilla_parameters() {
    let truth = chinchilla_truth();
    let pts = synthetic(&truth, 0.005, 11);
    let fit = fit_huber(&pts).unwrap();
    assert_eq!(fit.starts, 1024);
    assert_recovered(&fit.law, &truth, "huber");
    // The optimum is at least as good as the truth under the same objective.
    let at_truth = form::huber_value_grad(&pts, &truth.coords(), form::HUBER_DELTA).0;
    assert!(
        fit.objective <= at_truth + 1e-12,
        "{} > {at_truth}",
        fit.objective
    );
}

#[test]
fn least_squares_fit_recovers_chinchilla_parameters() {
    let truth = chinchilla_truth();
    let pts = synthetic(&truth, 0.005, 12);
    let fit = fit_lsq(&pts).unwrap();
    assert!(fit.converged);
    assert_recovered(&fit.law, &truth, "lsq");
    assert!(fit.objective <= form::sum_squares(&pts, &truth) + 1e-12);
}

#[test]
fn noiseless_data_is_fitted_almost_exactly() {
    let truth = chinchilla_truth();
    let pts = synthetic(&truth, 0.0, 1);
    let lsq = fit_lsq(&pts).unwrap();
    for p in &pts {
        let pred = lsq.law.predict_point(p);
        assert!(
            (pred - p.loss).abs() < 1e-6 * p.loss,
            "{pred} vs {}",
            p.loss
        );
    }
    assert!((lsq.law.alpha - 0.34).abs() < 1e-4 && (lsq.law.beta - 0.28).abs() < 1e-4);
}

#[test]
fn one_model_size_is_rejected_with_a_reason() {
    let pts: Vec<Point> = (0..10)
        .map(|j| Point::new(1e8, 1e9 * (j + 1) as f64, 3.0 - 0.1 * j as f64))
        .collect();
    let msg = fit_huber(&pts).unwrap_err().to_string();
    assert!(msg.contains("only one model size (N = 1.0000e8)"), "{msg}");
    assert!(fit_lsq(&pts).is_err());
}

#[test]
fn one_token_count_equal_losses_and_too_few_points_are_rejected() {
    let same_d: Vec<Point> = (0..8)
        .map(|i| Point::new(1e7 * (i + 1) as f64, 1e9, 3.0 - 0.1 * i as f64))
        .collect();
    let msg = check_identifiable(&same_d).unwrap_err().to_string();
    assert!(msg.contains("only one token count"), "{msg}");

    let flat: Vec<Point> = (0..8)
        .map(|i| Point::new(1e7 * (1 + i % 2) as f64, 1e9 * (1 + i) as f64, 2.5))
        .collect();
    let msg = check_identifiable(&flat).unwrap_err().to_string();
    assert!(msg.contains("all 8 losses are equal (2.5)"), "{msg}");

    let msg = check_identifiable(&flat[..4]).unwrap_err().to_string();
    assert!(msg.contains("too few points: 4"), "{msg}");
}

#[test]
fn jittered_sizes_count_as_one_level() {
    assert_eq!(
        distinct([1e9, 1e9 * (1.0 + 1e-9), 2e9].into_iter()).len(),
        2
    );
}
