//! Mixed precision: which dtype the matmuls run in.
//!
//! Master weights, AdamW moments, gradients as the optimizer sees them, LayerNorm, softmax and
//! the cross-entropy stay f32 in every mode. In `bf16` mode each matmul casts both operands to
//! bf16 and its product back to f32 (the scheme of PyTorch autocast and of Micikevicius et al.
//! 2018, "Mixed Precision Training", with bf16 instead of f16 so no loss scaling is needed: bf16
//! has f32's exponent range). The cast's backward casts the gradient back to f32, so every Var
//! still receives an f32 gradient.
//!
//! Numerics of one bf16 matmul: the operands lose their mantissa below 8 bits (relative
//! rounding up to 2^-9 ≈ 2e-3); cuBLAS accumulates in f32 (`CUBLAS_COMPUTE_32F`), and candle's
//! CPU backend widens bf16 to f32 for its gemm, so both accumulate in f32 and round the product
//! to bf16 once.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// `train.precision`: the dtype of matmul operands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32 (TF32 tensor cores on CUDA for the matmuls, see `device::use_tf32_matmuls`).
    #[default]
    F32,
    /// bf16 matmul operands with f32 accumulation; everything else f32.
    Bf16,
}

impl Precision {
    /// Dtype the matmul operands are cast to.
    pub fn matmul_dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// `a · b` with both operands in [`Precision::matmul_dtype`], the product returned as f32.
    /// Operands already in that dtype are not copied (`to_dtype` to the same dtype is a no-op).
    pub fn matmul(self, a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        let dt = self.matmul_dtype();
        a.to_dtype(dt)?
            .matmul(&b.to_dtype(dt)?)?
            .to_dtype(DType::F32)
    }

    /// `x` (f32) rounded to the matmul dtype and back: the values a matmul in this precision
    /// would see, for f32 kernels that stand in for one (the fused attention). No-op in f32.
    pub fn round(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Precision::F32 => Ok(x.clone()),
            Precision::Bf16 => x.to_dtype(DType::BF16)?.to_dtype(DType::F32),
        }
    }

    /// True for the default (serde's `skip_serializing_if` takes a reference).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn bf16_matmul_is_f32_out_and_close_to_f32() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let a = Tensor::from_vec(
            (0..12).map(|i| 0.1 + i as f32 / 7.0).collect(),
            (3, 4),
            &dev,
        )?;
        let b = Tensor::from_vec((0..8).map(|i| 1.0 - i as f32 / 5.0).collect(), (4, 2), &dev)?;
        let exact = Precision::F32
            .matmul(&a, &b)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mixed = Precision::Bf16.matmul(&a, &b)?;
        assert_eq!(mixed.dtype(), DType::F32);
        let mixed = mixed.flatten_all()?.to_vec1::<f32>()?;
        let scale = exact.iter().fold(0f32, |m, x| m.max(x.abs()));
        let mut differs = false;
        for (e, m) in exact.iter().zip(&mixed) {
            // Two operand roundings and one output rounding of 2^-9 each, over 4-term sums.
            assert!((e - m).abs() <= 8e-3 * scale, "{e} vs {m}");
            differs |= e != m;
        }
        assert!(
            differs,
            "bf16 rounding should be visible in at least one element"
        );
        Ok(())
    }

    #[test]
    fn parses_lowercase_names() {
        #[derive(Deserialize)]
        struct W {
            p: Precision,
        }
        let w: W = toml::from_str("p = \"bf16\"").expect("bf16 parses");
        assert_eq!(w.p, Precision::Bf16);
        assert!(toml::from_str::<W>("p = \"fp16\"").is_err());
    }
}
