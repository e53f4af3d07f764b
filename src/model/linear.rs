//! Linear layer in Hugging Face's `Conv1D` convention (weight [in, out], y = x · W + b),
//! optionally followed by GELU (the MLP's first layer), from candle ops (the graph path).

use candle_core::Tensor;

use super::{ModelError, Precision};

/// What follows the affine map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    /// GELU, tanh approximation (GPT-2's `gelu_new`).
    Gelu,
}

#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor, // [in, out]
    bias: Tensor,   // [out]
}

impl Linear {
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self { weight, bias }
    }

    /// `act(x · W + b)` for `x` [N, in] f32 → [N, out] f32, the product in precision `p`.
    pub fn forward(&self, x: &Tensor, act: Activation, p: Precision) -> Result<Tensor, ModelError> {
        let y = p.matmul(x, &self.weight)?.broadcast_add(&self.bias)?; // [N, out]
        Ok(match act {
            Activation::Identity => y,
            Activation::Gelu => y.gelu()?, // candle's gelu is the tanh approximation
        })
    }
}
