//! The Chinchilla form L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, eq. 2) with its two
//! objectives and their analytic derivatives.
//!
//! Parameters are fitted as (a, b, e, α, β) with A = e^a, B = e^b, E = e^e, as in ColPret's
//! `chinchilla_power_law_fit` (ColPret, arXiv 2410.11840). The optimisers work in *coordinates*
//! c = (a, b, e, ln α, ln β): the exponents are constrained to α, β ≥ 0 and writing them as
//! exponentials keeps every coordinate unconstrained, which L-BFGS and Levenberg-Marquardt
//! need. (A fit that wants α → 0 shows up as ln α → -∞, i.e. a tiny α, never a negative one.)

use serde::Serialize;

/// Number of fitted parameters.
pub const N_PARAMS: usize = 5;

/// Optimiser coordinates (a, b, e, ln α, ln β).
pub type Coords = [f64; N_PARAMS];

/// Huber threshold of the Hoffmann-style fit (Hoffmann et al. 2022, §D.2; ColPret
/// `torch_fit.py` uses the same δ).
pub const HUBER_DELTA: f64 = 1e-3;

/// Fitted law in the paper's log parametrisation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LawParams {
    /// ln A
    pub a: f64,
    /// ln B
    pub b: f64,
    /// ln E
    pub e: f64,
    pub alpha: f64,
    pub beta: f64,
}

impl LawParams {
    pub fn from_coords(c: &Coords) -> Self {
        Self {
            a: c[0],
            b: c[1],
            e: c[2],
            alpha: c[3].exp(),
            beta: c[4].exp(),
        }
    }

    /// The optimiser coordinates; exponents must be > 0 (a zero exponent has no logarithm).
    pub fn coords(&self) -> Coords {
        [self.a, self.b, self.e, self.alpha.ln(), self.beta.ln()]
    }

    /// Parameters from the plain-scale constants, as papers report them.
    pub fn from_plain(e: f64, a: f64, b: f64, alpha: f64, beta: f64) -> Self {
        Self {
            a: a.ln(),
            b: b.ln(),
            e: e.ln(),
            alpha,
            beta,
        }
    }

    pub fn big_a(&self) -> f64 {
        self.a.exp()
    }

    pub fn big_b(&self) -> f64 {
        self.b.exp()
    }

    pub fn big_e(&self) -> f64 {
        self.e.exp()
    }

    /// Predicted loss for `n` parameters trained on `d` tokens.
    pub fn predict(&self, n: f64, d: f64) -> f64 {
        self.terms(n.ln(), d.ln()).iter().sum()
    }

    /// Predicted loss at an observation.
    pub fn predict_point(&self, p: &Point) -> f64 {
        self.terms(p.ln_n, p.ln_d).iter().sum()
    }

    /// The three summands (A/N^α, B/D^β, E) from ln N and ln D.
    pub fn terms(&self, ln_n: f64, ln_d: f64) -> [f64; 3] {
        [
            (self.a - self.alpha * ln_n).exp(),
            (self.b - self.beta * ln_d).exp(),
            self.e.exp(),
        ]
    }
}

/// One observation in the logarithms the objectives use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub ln_n: f64,
    pub ln_d: f64,
    pub loss: f64,
    pub ln_loss: f64,
}

impl Point {
    pub fn new(n: f64, d: f64, loss: f64) -> Self {
        Self {
            ln_n: n.ln(),
            ln_d: d.ln(),
            loss,
            ln_loss: loss.ln(),
        }
    }
}

/// Σ Huber_δ(r_i) with r_i = logsumexp(a − α ln N, b − β ln D, e) − ln L, and its gradient in
/// coordinates. Residuals in log space make the fit scale-free across loss levels (Hoffmann
/// et al. 2022, §D.2).
pub fn huber_value_grad(points: &[Point], c: &Coords, delta: f64) -> (f64, Coords) {
    let (alpha, beta) = (c[3].exp(), c[4].exp());
    let mut value = 0.0;
    let mut g = [0.0; N_PARAMS];
    for p in points {
        let t = [c[0] - alpha * p.ln_n, c[1] - beta * p.ln_d, c[2]];
        let m = t[0].max(t[1]).max(t[2]);
        let w = t.map(|ti| (ti - m).exp());
        let s = w[0] + w[1] + w[2];
        let r = m + s.ln() - p.ln_loss;
        value += huber(r, delta);
        // dH/dr, times the softmax weights = d logsumexp / d t_k.
        let h = r.clamp(-delta, delta) / s;
        g[0] += h * w[0];
        g[1] += h * w[1];
        g[2] += h * w[2];
        // d/d ln α = α · d/dα, and dt_0/dα = −ln N.
        g[3] -= h * w[0] * p.ln_n * alpha;
        g[4] -= h * w[1] * p.ln_d * beta;
    }
    (value, g)
}

/// Huber loss as torch's `HuberLoss`: r²/2 inside ±δ, δ(|r| − δ/2) outside.
pub fn huber(r: f64, delta: f64) -> f64 {
    if r.abs() <= delta {
        0.5 * r * r
    } else {
        delta * (r.abs() - 0.5 * delta)
    }
}

/// Raw-loss residuals r_i = L̂_i − L_i (curve_fit's objective is Σ r_i²) and their Jacobian in
/// coordinates, written into the given buffers.
pub fn lsq_residuals(
    points: &[Point],
    c: &Coords,
    residuals: &mut Vec<f64>,
    jacobian: &mut Vec<Coords>,
) {
    let (alpha, beta) = (c[3].exp(), c[4].exp());
    let e_term = c[2].exp();
    residuals.clear();
    jacobian.clear();
    for p in points {
        let n_term = (c[0] - alpha * p.ln_n).exp();
        let d_term = (c[1] - beta * p.ln_d).exp();
        residuals.push(n_term + d_term + e_term - p.loss);
        jacobian.push([
            n_term,
            d_term,
            e_term,
            -n_term * p.ln_n * alpha,
            -d_term * p.ln_d * beta,
        ]);
    }
}

/// Σ (L̂_i − L_i)².
pub fn sum_squares(points: &[Point], law: &LawParams) -> f64 {
    points
        .iter()
        .map(|p| (law.predict_point(p) - p.loss).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_points() -> Vec<Point> {
        let truth = LawParams::from_plain(1.69, 406.4, 410.7, 0.34, 0.28);
        [(1e7, 1e9, 1.01), (3e8, 5e9, 0.98), (2e9, 4e10, 1.02)]
            .iter()
            .map(|&(n, d, noise)| Point::new(n, d, truth.predict(n, d) * noise))
            .collect()
    }

    /// Central differences against the analytic gradient at a point away from Huber's kink.
    #[test]
    fn huber_gradient_matches_finite_differences() {
        let pts = sample_points();
        let c = [5.5, 6.5, 0.4, (0.3f64).ln(), (0.3f64).ln()];
        let delta = 0.5; // large enough to exercise the quadratic branch too
        for d in [delta, HUBER_DELTA] {
            let (_, g) = huber_value_grad(&pts, &c, d);
            for k in 0..N_PARAMS {
                let h = 1e-6;
                let (mut up, mut down) = (c, c);
                up[k] += h;
                down[k] -= h;
                let fd = (huber_value_grad(&pts, &up, d).0 - huber_value_grad(&pts, &down, d).0)
                    / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "k={k} fd={fd} g={}",
                    g[k]
                );
            }
        }
    }

    #[test]
    fn lsq_jacobian_matches_finite_differences() {
        let pts = sample_points();
        let c = [5.5, 6.5, 0.4, (0.3f64).ln(), (0.3f64).ln()];
        let (mut r, mut j) = (Vec::new(), Vec::new());
        lsq_residuals(&pts, &c, &mut r, &mut j);
        for k in 0..N_PARAMS {
            let h = 1e-6;
            let (mut up, mut down) = (c, c);
            up[k] += h;
            down[k] -= h;
            let (mut ru, mut rd, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
            lsq_residuals(&pts, &up, &mut ru, &mut scratch);
            lsq_residuals(&pts, &down, &mut rd, &mut scratch);
            for i in 0..pts.len() {
                let fd = (ru[i] - rd[i]) / (2.0 * h);
                assert!(
                    (fd - j[i][k]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "i={i} k={k}"
                );
            }
        }
    }

    #[test]
    fn coordinates_round_trip_and_prediction_is_the_sum_of_terms() {
        let law = LawParams::from_plain(1.69, 406.4, 410.7, 0.34, 0.28);
        let back = LawParams::from_coords(&law.coords());
        assert!((back.alpha - 0.34).abs() < 1e-15 && (back.big_a() - 406.4).abs() < 1e-9);
        let l = law.predict(1e9, 2e10);
        let by_hand = 1.69 + 406.4 / 1e9f64.powf(0.34) + 410.7 / 2e10f64.powf(0.28);
        assert!((l - by_hand).abs() < 1e-12);
        assert_eq!(huber(0.5e-3, 1e-3), 0.125e-6);
        assert!((huber(-2e-3, 1e-3) - 1.5e-6).abs() < 1e-18);
    }
}
