//! Plain least squares on the raw loss, the objective of ColPret's default `ChinchillaFit`
//! (`scipy.optimize.curve_fit` from p0, as ColPret does). curve_fit minimises Σ r² with a
//! trust-region / Levenberg-Marquardt method; we use Levenberg-Marquardt with Marquardt's
//! diagonal scaling (Moré 1978), which needs only the residual Jacobian. argmin has no
//! damped Gauss-Newton solver, so this small one is ours.

use serde::Serialize;

use super::form::{lsq_residuals, Coords, LawParams, Point, N_PARAMS};
use crate::scaling::ScalingError;

/// curve_fit's start for the Chinchilla form in ColPret (`fitting_funcs.py`), as
/// (a, b, e, α, β).
pub const P0: [f64; 5] = [6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596];

/// Stopping rules: relative cost change and relative step below 1e-12, or the iteration cap.
/// (curve_fit's defaults are 1.5e-8; tighter costs nothing at 5 parameters.)
const F_TOL: f64 = 1e-12;
const X_TOL: f64 = 1e-12;
const MAX_ITERS: usize = 2000;
/// Damping grows tenfold after a rejected step and shrinks tenfold after an accepted one.
const LAMBDA_FACTOR: f64 = 10.0;
const LAMBDA_START: f64 = 1e-3;
const LAMBDA_MAX: f64 = 1e16;

#[derive(Clone, Debug, Serialize)]
pub struct LsqFit {
    pub law: LawParams,
    /// Σ (L̂ − L)² at the solution.
    pub objective: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Fits the law from `start` (normally [`P0`]).
pub fn fit(points: &[Point], start: &LawParams) -> Result<LsqFit, ScalingError> {
    let (mut r, mut j) = (Vec::new(), Vec::new());
    let outcome = levenberg_marquardt(start.coords(), |c: &Coords| {
        lsq_residuals(points, c, &mut r, &mut j);
        let finite = r.iter().all(|x| x.is_finite()) && j.iter().flatten().all(|x| x.is_finite());
        finite.then(|| (r.clone(), j.clone()))
    })
    .ok_or_else(|| ScalingError::Fit {
        method: "lsq".into(),
        reason: "the residuals are non-finite at the start point".into(),
    })?;
    Ok(LsqFit {
        law: LawParams::from_coords(&outcome.x),
        objective: outcome.cost,
        iterations: outcome.iterations,
        converged: outcome.converged,
    })
}

/// Result of a Levenberg-Marquardt run.
#[derive(Clone, Copy, Debug)]
pub struct LmOutcome<const P: usize> {
    pub x: [f64; P],
    /// Σ r² at `x`.
    pub cost: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Minimises Σ r(x)² where `residuals(x)` returns (r, ∂r/∂x) or `None` when non-finite (the
/// step is then rejected as if it had increased the cost). Returns `None` only if the start
/// itself is non-finite.
pub fn levenberg_marquardt<const P: usize, F>(
    x0: [f64; P],
    mut residuals: F,
) -> Option<LmOutcome<P>>
where
    F: FnMut(&[f64; P]) -> Option<(Vec<f64>, Vec<[f64; P]>)>,
{
    let (mut r, mut jac) = residuals(&x0)?;
    let mut x = x0;
    let mut cost = sum_sq(&r);
    let mut lambda = LAMBDA_START;
    for iteration in 1..=MAX_ITERS {
        let (jtj, jtr) = normal_equations(&r, &jac);
        let step = loop {
            let mut damped = jtj;
            for k in 0..P {
                // Marquardt scaling; the floor keeps a parameter with no influence solvable.
                damped[k][k] += lambda * jtj[k][k].max(1e-12);
            }
            let neg: [f64; P] = jtr.map(|v| -v);
            if let Some(step) = cholesky_solve(damped, neg) {
                let candidate: [f64; P] = std::array::from_fn(|k| x[k] + step[k]);
                if let Some((r_new, j_new)) = residuals(&candidate) {
                    let new_cost = sum_sq(&r_new);
                    if new_cost <= cost {
                        break Some((step, candidate, new_cost, r_new, j_new));
                    }
                }
            }
            lambda *= LAMBDA_FACTOR;
            if lambda > LAMBDA_MAX {
                break None;
            }
        };
        let Some((step, candidate, new_cost, r_new, j_new)) = step else {
            // No damping finds a decrease: x is a (numerical) minimum.
            return Some(LmOutcome {
                x,
                cost,
                iterations: iteration,
                converged: true,
            });
        };
        let small_step = step
            .iter()
            .zip(&x)
            .all(|(s, xi)| s.abs() <= X_TOL * (xi.abs() + X_TOL));
        let small_gain = cost - new_cost <= F_TOL * cost;
        x = candidate;
        cost = new_cost;
        r = r_new;
        jac = j_new;
        lambda = (lambda / LAMBDA_FACTOR).max(1e-12);
        if small_step || small_gain {
            return Some(LmOutcome {
                x,
                cost,
                iterations: iteration,
                converged: true,
            });
        }
    }
    Some(LmOutcome {
        x,
        cost,
        iterations: MAX_ITERS,
        converged: false,
    })
}

fn sum_sq(r: &[f64]) -> f64 {
    r.iter().map(|v| v * v).sum()
}

/// JᵀJ and Jᵀr.
fn normal_equations<const P: usize>(r: &[f64], jac: &[[f64; P]]) -> ([[f64; P]; P], [f64; P]) {
    let mut jtj = [[0.0; P]; P];
    let mut jtr = [0.0; P];
    for (ri, row) in r.iter().zip(jac) {
        for a in 0..P {
            jtr[a] += row[a] * ri;
            for b in 0..P {
                jtj[a][b] += row[a] * row[b];
            }
        }
    }
    (jtj, jtr)
}

/// Solves M x = v for symmetric positive-definite M; `None` when M is not (numerically) SPD.
pub fn cholesky_solve<const P: usize>(m: [[f64; P]; P], v: [f64; P]) -> Option<[f64; P]> {
    let mut l = [[0.0; P]; P];
    for i in 0..P {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = m[i][i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (m[i][j] - s) / l[j][j];
            }
        }
    }
    let mut y = [0.0; P];
    for i in 0..P {
        y[i] = (v[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0; P];
    for i in (0..P).rev() {
        x[i] = (y[i] - (i + 1..P).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    Some(x)
}

/// The start point [`P0`] as parameters.
pub fn p0() -> LawParams {
    LawParams {
        a: P0[0],
        b: P0[1],
        e: P0[2],
        alpha: P0[3],
        beta: P0[4],
    }
}

const _: () = assert!(N_PARAMS == P0.len());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system_and_rejects_indefinite_ones() {
        let m = [[4.0, 2.0], [2.0, 3.0]];
        let x = cholesky_solve(m, [2.0, 5.0]).unwrap();
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * x[0] + 3.0 * x[1] - 5.0).abs() < 1e-12);
        assert!(cholesky_solve([[1.0, 2.0], [2.0, 1.0]], [1.0, 1.0]).is_none());
    }

    /// Exponential decay y = 3 e^{-0.7 t} + 1, fitted from a poor start.
    #[test]
    fn levenberg_marquardt_recovers_an_exponential() {
        let ts: Vec<f64> = (0..20).map(|i| i as f64 * 0.5).collect();
        let ys: Vec<f64> = ts.iter().map(|t| 3.0 * (-0.7 * t).exp() + 1.0).collect();
        let out = levenberg_marquardt([1.0, 0.1, 0.0], |p: &[f64; 3]| {
            let mut r = Vec::new();
            let mut j = Vec::new();
            for (t, y) in ts.iter().zip(&ys) {
                let e = (-p[1] * t).exp();
                r.push(p[0] * e + p[2] - y);
                j.push([e, -p[0] * t * e, 1.0]);
            }
            Some((r, j))
        })
        .unwrap();
        assert!(out.converged);
        assert!((out.x[0] - 3.0).abs() < 1e-6, "{:?}", out.x);
        assert!((out.x[1] - 0.7).abs() < 1e-6, "{:?}", out.x);
        assert!((out.x[2] - 1.0).abs() < 1e-6, "{:?}", out.x);
        assert!(out.cost < 1e-15);
    }
}
