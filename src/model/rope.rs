//! Rotary position embeddings (Su et al. 2021, RoFormer), in the "rotate half" layout of
//! Hugging Face's LLaMA: a head's first half holds the real parts and its second half the
//! imaginary parts of its hd/2 rotating pairs, pair i turning at frequency θ^(−2i/hd). Built
//! from differentiable ops (candle-nn's `rotary_emb` kernels have no backward).

use candle_core::{Device, Tensor, D};

use super::ModelError;

/// cos and sin tables for every position up to a maximum.
#[derive(Clone, Debug)]
pub struct Rope {
    cos: Tensor, // [T_max, hd]
    sin: Tensor, // [T_max, hd]
}

impl Rope {
    /// Tables for positions 0..max_t of heads of width `head_dim` (even) and base `theta`.
    pub fn new(
        head_dim: usize,
        max_t: usize,
        theta: f64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if head_dim % 2 != 0 {
            return Err(ModelError::InvalidConfig(format!(
                "rotary embeddings need an even head width, got {head_dim}"
            )));
        }
        let half = head_dim / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(max_t * head_dim), Vec::new());
        sin.reserve(max_t * head_dim);
        for t in 0..max_t {
            let angles: Vec<f64> = (0..half)
                .map(|i| t as f64 * theta.powf(-2.0 * i as f64 / head_dim as f64))
                .collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos() as f32));
                sin.extend(angles.iter().map(|a| a.sin() as f32));
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (max_t, head_dim), device)?,
            sin: Tensor::from_vec(sin, (max_t, head_dim), device)?,
        })
    }

    /// `x` [B, T, H, hd] rotated by position: x · cos + rotate_half(x) · sin, where
    /// rotate_half([x1, x2]) = [−x2, x1].
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let (_b, t, _h, hd) = x.dims4()?;
        let cos = self.cos.narrow(0, 0, t)?.reshape((1, t, 1, hd))?;
        let sin = self.sin.narrow(0, 0, t)?.reshape((1, t, 1, hd))?;
        let x1 = x.narrow(D::Minus1, 0, hd / 2)?;
        let x2 = x.narrow(D::Minus1, hd / 2, hd / 2)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?; // [B, T, H, hd]
        Ok((x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?)
    }
}
