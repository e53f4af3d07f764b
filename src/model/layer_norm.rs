//! LayerNorm built from differentiable tensor ops (the graph path; the CPU passes have their
//! own, `cpu/layer_norm.rs`).
//!
//! candle-nn's `LayerNorm` (and `ops::layer_norm`) run a fused kernel with no backward: gradients
//! stop there without an error. Every op used here has a backward, so gradients reach the
//! input, the gain and the bias.

use candle_core::{Tensor, D};

use super::ModelError;

/// GPT-2's epsilon (`layer_norm_epsilon` in Hugging Face's `GPT2Config`).
pub const LN_EPS: f64 = 1e-5;

/// LayerNorm over the last dimension with a learned gain and bias.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor, // [D]
    bias: Tensor,   // [D]
    eps: f64,
}

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self {
            weight,
            bias,
            eps: LN_EPS,
        }
    }

    /// `(x - mean) / sqrt(var + eps) * weight + bias`, statistics over the last dim
    /// (biased variance, as PyTorch).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mean = x.mean_keepdim(D::Minus1)?; // [.., 1]
        let centered = x.broadcast_sub(&mean)?; // [.., D]
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?; // [.., 1]
        let inv_std = (var + self.eps)?.sqrt()?.recip()?; // [.., 1]
        let normed = centered.broadcast_mul(&inv_std)?; // [.., D]
        let out = normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?; // [.., D]
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_reference_and_passes_gradients() -> Result<(), ModelError> {
        let dev = Device::Cpu;
        let x = Var::from_vec(vec![1f32, 2., 4., -1., 0., 3.], (2, 3), &dev)?;
        let w = Var::from_vec(vec![1f32, 2., 0.5], 3, &dev)?;
        let b = Var::from_vec(vec![0f32, 1., -1.], 3, &dev)?;
        let ln = LayerNorm::new(w.as_tensor().clone(), b.as_tensor().clone());
        let y = ln.forward(x.as_tensor())?;
        let got = y.to_vec2::<f32>()?;
        // Row 0: mean 7/3, biased var 14/9.
        let (m, s) = (7.0f64 / 3.0, (14.0f64 / 9.0 + 1e-5).sqrt());
        let want0 = [
            (1.0 - m) / s,
            2.0 * (2.0 - m) / s + 1.0,
            0.5 * (4.0 - m) / s - 1.0,
        ];
        for (g, w) in got[0].iter().zip(want0) {
            assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
        }
        let grads = y.sqr()?.sum_all()?.backward()?;
        for v in [&x, &w, &b] {
            let g = grads
                .get(v.as_tensor())
                .expect("every input gets a gradient");
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
        Ok(())
    }
}
