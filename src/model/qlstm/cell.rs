//! The quasi-LSTM cell (Languini, arXiv 2309.11197): every gate depends on the input only,
//! never on h_{t-1}, which is what makes the block-parallel form possible. Per channel:
//!
//! ```text
//! f_t = σ(W_f x_t + b_f + 1)                 forget gate (+1: remember by default)
//! u_t = σ(W_i x_t + b_i) ⊙ tanh(W_z x_t + b_z) gated cell input
//! c_t = f_t ⊙ c_{t−1} + u_t                  cell state, c_0 = 0
//! h_t = σ(W_o x_t + b_o) ⊙ tanh(c_t)          output
//! ```
//!
//! This file holds the gate activations (shared by every path) and the plain step-by-step
//! recurrence: the readable reference the block-parallel form (`scan.rs`) is tested against,
//! and the generation path (one step per token).
//!
//! Every op here is a differentiable candle_core op (sigmoid is written with tanh, log σ with
//! exp/log/abs): candle-nn's fused activations are not relied on for gradients.

use candle_core::{Tensor, D};

use crate::model::ModelError;

/// Languini's constant forget-gate offset: σ(1) ≈ 0.73, so a fresh cell keeps most of its
/// state.
pub(crate) const FORGET_BIAS: f64 = 1.0;

/// The gate activations of N rows (B*T flattened, or one decoding step), each [N, D].
#[derive(Debug)]
pub struct Gates {
    /// log f_t (≤ 0): the recurrences multiply forget gates, in log space for the parallel form.
    pub log_f: Tensor,
    /// u_t = σ(i_t) ⊙ tanh(z_t).
    pub u: Tensor,
    /// σ(o_t).
    pub o: Tensor,
}

impl Gates {
    /// From the fused pre-activations `pre` [N, 4D] (columns `[f | i | z | o]`).
    pub fn new(pre: &Tensor) -> Result<Gates, ModelError> {
        let d = pre.dim(D::Minus1)? / 4;
        let part = |k: usize| pre.narrow(1, k * d, d); // [N, D]
        let log_f = log_sigmoid(&(part(0)? + FORGET_BIAS)?)?;
        let u = (sigmoid(&part(1)?)? * part(2)?.tanh()?)?;
        let o = sigmoid(&part(3)?)?;
        Ok(Gates { log_f, u, o })
    }

    /// h = o ⊙ tanh(c) for the cell states `c` [N, D] of the same rows.
    pub fn output(&self, c: &Tensor) -> Result<Tensor, ModelError> {
        Ok((&self.o * c.tanh()?)?)
    }
}

/// σ(a) = (1 + tanh(a / 2)) / 2: exact, stable for any a, differentiable with core ops.
pub fn sigmoid(a: &Tensor) -> candle_core::Result<Tensor> {
    (a * 0.5)?.tanh()?.affine(0.5, 0.5)
}

/// log σ(a) = min(a, 0) − ln(1 + e^{−|a|}), with min(a, 0) = (a − |a|) / 2: no overflow for
/// large |a| and no log(0) (log of a computed σ underflows to −inf below a ≈ −88 in f32).
pub fn log_sigmoid(a: &Tensor) -> candle_core::Result<Tensor> {
    let abs = a.abs()?;
    let min0 = ((a - &abs)? * 0.5)?;
    let tail = (abs.neg()?.exp()? + 1.0)?.log()?;
    min0 - tail
}

/// One step: c_t = f_t ⊙ c_{t−1} + u_t, with `log_f`, `u` and `c_prev` [N, D]; `c_prev`
/// None is the zero initial state.
pub fn step(c_prev: Option<&Tensor>, log_f: &Tensor, u: &Tensor) -> Result<Tensor, ModelError> {
    Ok(match c_prev {
        None => u.clone(),
        Some(c) => ((log_f.exp()? * c)? + u)?,
    })
}

/// The cell states of whole sequences by the plain recurrence, one step after the other:
/// `log_f`, `u` [B, T, D] → c [B, T, D], from c_0 = 0. O(T) sequential steps; the reference
/// for the block-parallel form.
pub fn recurrent(log_f: &Tensor, u: &Tensor) -> Result<Tensor, ModelError> {
    let t = log_f.dim(1)?;
    let mut states = Vec::with_capacity(t);
    for s in 0..t {
        let (lf, us) = (log_f.narrow(1, s, 1)?, u.narrow(1, s, 1)?); // [B, 1, D]
        let c = step(states.last(), &lf, &us)?;
        states.push(c);
    }
    Ok(Tensor::cat(&states, 1)?) // [B, T, D]
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn activations_match_the_definitions_and_stay_finite() -> Result<(), ModelError> {
        let xs = [-200f32, -30.0, -1.5, 0.0, 0.7, 30.0, 200.0];
        let a = Tensor::new(&xs, &Device::Cpu)?;
        let s = sigmoid(&a)?.to_vec1::<f32>()?;
        let ls = log_sigmoid(&a)?.to_vec1::<f32>()?;
        for ((x, s), ls) in xs.iter().zip(s).zip(ls) {
            let x = *x as f64;
            let want = 1.0 / (1.0 + (-x).exp());
            let want_log = -(1.0 + (-x).exp()).ln();
            assert!((s as f64 - want).abs() < 1e-6, "σ({x}) = {s}");
            assert!(ls.is_finite(), "log σ({x}) = {ls}");
            assert!((ls as f64 - want_log).abs() < 1e-5 * (1.0 + want_log.abs()));
        }
        Ok(())
    }
}
