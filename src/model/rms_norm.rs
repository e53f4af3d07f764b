//! RMSNorm (Zhang & Sennrich 2019), LLaMA's normalisation, from differentiable tensor ops.
//! candle-nn's `rms_norm` is a fused op without a backward: gradients would stop there without
//! an error.

use candle_core::{Tensor, D};

use super::ModelError;

/// `x / sqrt(mean(x²) + eps) * weight` over the last dimension (no centring, no bias).
#[derive(Clone, Debug)]
pub struct RmsNorm {
    weight: Tensor, // [D]
    eps: f64,
}

impl RmsNorm {
    pub fn new(weight: Tensor, eps: f64) -> Self {
        Self { weight, eps }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mean_sq = x.sqr()?.mean_keepdim(D::Minus1)?; // [.., 1]
        let inv_rms = (mean_sq + self.eps)?.sqrt()?.recip()?; // [.., 1]
        Ok(x.broadcast_mul(&inv_rms)?.broadcast_mul(&self.weight)?) // [.., D]
    }
}
