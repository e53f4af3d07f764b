//! Causal multi-head self-attention on the graph path, on the model's `[B*T, 3D]` qkv
//! projection, in one of two implementations:
//!
//! - Fused: the `[3, B, H, T, hd]` op of `attention_packed.rs` (CUDA kernels for head_dim 32
//!   and 64; on the CPU the blocked kernel of `cpu/attention.rs`), keeping only the output and
//!   each row's log-sum-exp and recomputing the probabilities in the backward (FlashAttention's
//!   scheme: Dao et al. 2022; Dao 2023).
//! - Composed: candle's matmul, mask and softmax, the reference path (`perf.kernels =
//!   "composed"`, and CUDA head sizes without a kernel). It materialises several [B, H, T, T]
//!   tensors per layer and keeps them for the backward (~4 GB per 1024-token sequence for
//!   gpt2-124m).
//!
//! The arithmetic is f32; in bf16 mode the fused paths round q, k and v to bf16 first
//! (`Precision::round`), the operands a bf16 matmul sees.

use candle_core::{Device, Tensor, D};

use super::attention_packed::fused_causal_attention;
use super::{ModelError, Precision};
use crate::kernels::Kernels;

/// Whether the fused op runs for this head size on this device (CUDA kernels exist for
/// head_dim 32 and 64: every GPT-2 size and the tiny preset; wider heads would spill registers).
pub fn fused_attention_supported(head_dim: usize, device: &Device) -> bool {
    match device {
        Device::Cpu => true,
        Device::Cuda(_) => matches!(head_dim, 32 | 64),
        _ => false,
    }
}

/// Whether a model with `kernels` and this head size runs the fused attention on `device`
/// (otherwise the composed one).
pub fn uses_fused_attention(kernels: Kernels, head_dim: usize, device: &Device) -> bool {
    kernels == Kernels::Fused && fused_attention_supported(head_dim, device)
}

/// Shape of one attention call: B sequences of T positions, `n_head` heads of `head_dim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    pub b: usize,
    pub t: usize,
    pub n_head: usize,
    pub head_dim: usize,
}

/// Causal self-attention with scale 1/sqrt(hd): `qkv` [B*T, 3D] (q, k, v side by side, f32)
/// → [B*T, D] f32, with matmuls in precision `p`.
pub fn causal_self_attention(
    qkv: &Tensor,
    shape: AttentionShape,
    p: Precision,
    kernels: Kernels,
) -> Result<Tensor, ModelError> {
    let AttentionShape {
        b,
        t,
        n_head: nh,
        head_dim: hd,
    } = shape;
    let device = qkv.device();
    if !uses_fused_attention(kernels, hd, device) {
        // Cast once (a no-op in f32): q, k, v then enter their matmuls without copies.
        let qkv = qkv
            .to_dtype(p.matmul_dtype())?
            .reshape((b, t, 3, nh, hd))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?; // [3, B, H, T, hd]
        let y = composed_causal_attention(&qkv, &causal_mask(t, device)?, p)?; // [B, H, T, hd]
        return Ok(y.transpose(1, 2)?.contiguous()?.reshape((b * t, nh * hd))?);
    }
    let qkv = p
        .round(qkv)? // f32 kernel on bf16-rounded operands in bf16 mode
        .reshape((b, t, 3, nh, hd))?
        .permute((2, 0, 3, 1, 4))?
        .contiguous()?; // [3, B, H, T, hd]
    let y = fused_causal_attention(&qkv)?; // [B, H, T, hd]
    Ok(y.transpose(1, 2)?.contiguous()?.reshape((b * t, nh * hd))?)
}

/// The reference attention from candle ops: `qkv` [3, B, H, T, hd] (matmul dtype), additive
/// causal `mask` [T, T] → [B, H, T, hd] f32. Keeps several [B, H, T, T] tensors for backward.
pub fn composed_causal_attention(
    qkv: &Tensor,
    mask: &Tensor,
    p: Precision,
) -> Result<Tensor, ModelError> {
    let q = qkv.get(0)?; // [B, H, T, hd] (contiguous view)
    let k = qkv.get(1)?; // [B, H, T, hd]
    let v = qkv.get(2)?; // [B, H, T, hd]
    let scale = 1.0 / (q.dim(3)? as f64).sqrt();
    let att = (p.matmul(&q, &k.t()?)? * scale)?; // [B, H, T, T] f32
    let att = att.broadcast_add(mask)?; // [B, H, T, T], -inf above the diagonal

    // The composed softmax: softmax_last_dim has no backward (q, k would get zero grads).
    let att = candle_nn::ops::softmax(&att, D::Minus1)?; // [B, H, T, T]
    Ok(p.matmul(&att, &v)?) // [B, H, T, hd] f32
}

/// Additive causal mask [T, T]: 0 on and below the diagonal, -inf above. Every row keeps its
/// diagonal, so the softmax never sees an all -inf row.
pub fn causal_mask(t: usize, device: &Device) -> Result<Tensor, ModelError> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(data, (t, t), device)?) // [T, T]
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;
    use crate::rng::Rng;

    /// Output and q, k, v gradients (of a random weighting of the output) of both paths.
    fn run(
        qkv: &Var,
        weights: &Tensor,
        fused: bool,
        p: Precision,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let t = qkv.dim(3)?;
        let y = if fused {
            fused_causal_attention(&p.round(qkv.as_tensor())?)?
        } else {
            let mask = causal_mask(t, &Device::Cpu)?;
            let x = qkv.as_tensor().to_dtype(p.matmul_dtype())?;
            composed_causal_attention(&x, &mask, p)?
        };
        let grads = (&y * weights)?.sum_all()?.backward()?;
        let g = grads
            .get(qkv.as_tensor())
            .ok_or(ModelError::BadInput("no gradient for qkv".into()))?;
        Ok(vec![
            y.flatten_all()?.to_vec1::<f32>()?,
            g.flatten_all()?.to_vec1::<f32>()?,
        ])
    }

    /// Head sizes 32 (the CUDA kernels' size) and 12 (odd lanes: the CPU's dot tail), in both
    /// precisions; T = 9 so rows see 1 to 9 keys.
    #[test]
    fn fused_matches_composed_in_output_and_gradients() -> Result<(), ModelError> {
        for (hd, p, tol) in [
            (32, Precision::F32, 2e-5),
            (12, Precision::F32, 2e-5),
            (32, Precision::Bf16, 2e-2),
        ] {
            let (b, h, t) = (2, 3, 9);
            let mut rng = Rng::new(hd as u64);
            let mut draw =
                |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.normal() * 1.5) as f32).collect() };
            let qkv = Var::from_vec(draw(3 * b * h * t * hd), (3, b, h, t, hd), &Device::Cpu)?;
            let weights = Tensor::from_vec(draw(b * h * t * hd), (b, h, t, hd), &Device::Cpu)?;
            let fused = run(&qkv, &weights, true, p)?;
            let composed = run(&qkv, &weights, false, p)?;
            for (what, (f, c)) in ["output", "qkv gradient"]
                .iter()
                .zip(fused.iter().zip(&composed))
            {
                let scale = c.iter().fold(0f32, |m, x| m.max(x.abs()));
                for (a, b) in f.iter().zip(c) {
                    assert!(
                        (a - b).abs() <= tol * scale,
                        "hd {hd} {p} {what}: {a} vs {b}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn cuda_kernels_cover_the_gpt2_head_sizes() {
        assert!(fused_attention_supported(12, &Device::Cpu));
        for preset in ["tiny", "gpt2-124m", "gpt2-350m", "gpt2-774m", "gpt2-1.5b"] {
            let hd = crate::model::GptConfig::preset(preset).map(|c| c.head_dim());
            assert!(matches!(hd, Some(32 | 64)), "{preset}: {hd:?}");
        }
    }
}
