//! Fused causal self-attention, forward and backward (FlashAttention's algorithm: Dao et al.
//! 2022, "FlashAttention"; Dao 2023, "FlashAttention-2").
//!
//! Why: the composed attention (`QKᵀ`, mask, softmax, `· V`) materialises several [B, H, T, T]
//! tensors per layer and candle keeps them for the backward: ~4 GB per 1024-token sequence for
//! gpt2-124m, and on a GPU every one of them is a memory-bound pass. This op keeps only the
//! output and each row's log-sum-exp ([B, H, T, hd + 1]); the backward recomputes the
//! probabilities from q, k and the log-sum-exp.
//!
//! Implementations: CUDA (`kernels/attention.cu`, one thread per row, head_dim 32 or 64; its
//! source is also run on the host by `tests/cuda_kernels_host.rs`) and the CPU (below: the
//! same math, rayon over rows forward and over heads backward, any head_dim). The arithmetic is
//! f32; in bf16 mode q, k and v are rounded to bf16 first (`Precision::round`), the operands a
//! bf16 matmul sees.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Device, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use super::{ModelError, Precision};
use crate::kernels::{contiguous_f32, Kernels};

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

/// Causal softmax attention with scale 1/sqrt(hd): `qkv` [3, B, H, T, hd] (f32) → [B, H, T, hd].
pub fn fused_causal_attention(qkv: &Tensor) -> candle_core::Result<Tensor> {
    if qkv.dtype() != DType::F32 {
        candle_core::bail!("fused attention: qkv must be f32, got {:?}", qkv.dtype())
    }
    let hd = qkv.dim(4)?;
    let out = qkv.contiguous()?.apply_op1(FusedAttention)?; // [B, H, T, hd + 1]
    out.narrow(3, 0, hd) // [B, H, T, hd]; the log-sum-exp column stays for the backward
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

/// (B·H, T, hd) of a [3, B, H, T, hd] layout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionDims {
    pub heads: usize,
    pub t: usize,
    pub hd: usize,
}

impl AttentionDims {
    fn of(qkv: &Shape) -> candle_core::Result<Self> {
        let (three, b, h, t, hd) = qkv.dims5()?;
        if three != 3 {
            candle_core::bail!("fused attention: qkv must be [3, B, H, T, hd], got {qkv:?}")
        }
        Ok(Self {
            heads: b * h,
            t,
            hd,
        })
    }

    /// The softmax temperature.
    pub fn scale(&self) -> f32 {
        1.0 / (self.hd as f32).sqrt()
    }

    fn plane(&self) -> usize {
        self.heads * self.t * self.hd
    }
}

/// Forward: [3, B, H, T, hd] → [B, H, T, hd + 1] (output row, then its log-sum-exp).
struct FusedAttention;

/// Backward: (qkv, forward output, [dO | D]) → [3, B, H, T, hd] gradients of q, k and v.
struct AttentionBackward;

impl CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = AttentionDims::of(l.shape())?;
        let out = forward_cpu(contiguous_f32(s, l, "fused attention: qkv")?, dims);
        Ok((CpuStorage::F32(out), out_shape(l.shape())?))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let dims = AttentionDims::of(l.shape())?;
        let out = crate::kernels::cuda::attention_forward(s, l, dims)?;
        Ok((out, out_shape(l.shape())?))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let hd = qkv.dim(4)?;
        let o = res.narrow(3, 0, hd)?; // [B, H, T, hd]
        let grad_o = grad_res.narrow(3, 0, hd)?; // [B, H, T, hd]; the lse column's gradient is 0
        let big_d = (&grad_o * &o)?.sum_keepdim(3)?; // [B, H, T, 1] = rowsum(dO · O)
        let dod = Tensor::cat(&[&grad_o, &big_d], 3)?; // [B, H, T, hd + 1]
        let grad = qkv.apply_op3_no_bwd(&res.detach(), &dod, &AttentionBackward)?;
        Ok(Some(grad)) // [3, B, H, T, hd]
    }
}

/// [3, B, H, T, hd] → [B, H, T, hd + 1].
fn out_shape(qkv: &Shape) -> candle_core::Result<Shape> {
    let (_, b, h, t, hd) = qkv.dims5()?;
    Ok(Shape::from((b, h, t, hd + 1)))
}

impl CustomOp3 for AttentionBackward {
    fn name(&self) -> &'static str {
        "fused-attention-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = AttentionDims::of(l1.shape())?;
        let qkv = contiguous_f32(s1, l1, "fused attention: qkv")?;
        let out = contiguous_f32(s2, l2, "fused attention: output")?;
        let dod = contiguous_f32(s3, l3, "fused attention: output gradient")?;
        let rows = dims.heads * dims.t * (dims.hd + 1);
        if out.len() != rows || dod.len() != rows {
            candle_core::bail!("fused attention backward: buffers do not match {dims:?}")
        }
        Ok((
            CpuStorage::F32(backward_cpu(qkv, out, dod, dims)),
            l1.shape().clone(),
        ))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let dims = AttentionDims::of(l1.shape())?;
        let grad = crate::kernels::cuda::attention_backward(s1, l1, s2, l2, s3, l3, dims)?;
        Ok((grad, l1.shape().clone()))
    }
}

/// Dot product in 8 independent lanes (vectorisable; a single accumulator is a serial chain).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `acc += w · x`.
fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
    for (a, &x) in acc.iter_mut().zip(x) {
        *a += w * x;
    }
}

/// The three [BH, T, hd] planes of a qkv buffer.
fn planes(qkv: &[f32], dims: AttentionDims) -> (&[f32], &[f32], &[f32]) {
    let (q, kv) = qkv.split_at(dims.plane());
    let (k, v) = kv.split_at(dims.plane());
    (q, k, v)
}

/// Forward on the CPU; the per-row loop of `attention_forward` in kernels/attention.cu.
fn forward_cpu(qkv: &[f32], dims: AttentionDims) -> Vec<f32> {
    let AttentionDims { t, hd, .. } = dims;
    let scale = dims.scale();
    let (q, k, v) = planes(qkv, dims);
    let mut out = vec![0f32; dims.heads * t * (hd + 1)];
    out.par_chunks_mut(hd + 1).enumerate().for_each_init(
        || vec![0f32; hd],
        |qi, (row, o)| {
            let (head, i) = (row / t, row % t);
            for (a, &x) in qi.iter_mut().zip(&q[row * hd..(row + 1) * hd]) {
                *a = x * scale;
            }
            let (acc, lse) = o.split_at_mut(hd);
            // Online softmax: m is the running max score, l the running sum.
            let (mut m, mut l) = (f32::NEG_INFINITY, 0f32);
            for j in 0..=i {
                let key = (head * t + j) * hd;
                let s = dot(qi, &k[key..key + hd]);
                if s > m {
                    let c = (m - s).exp();
                    l *= c;
                    acc.iter_mut().for_each(|a| *a *= c);
                    m = s;
                }
                let p = (s - m).exp();
                l += p;
                axpy(acc, p, &v[key..key + hd]);
            }
            acc.iter_mut().for_each(|a| *a /= l);
            lse[0] = m + l.ln();
        },
    );
    out
}

/// Backward on the CPU. One task per head walks every (query i, key j <= i) pair once and
/// accumulates dq_i, dk_j and dv_j together: p and ds are computed once per pair (the CUDA
/// kernels compute them in each of their three passes, to give every thread one output row).
fn backward_cpu(qkv: &[f32], out: &[f32], dod: &[f32], dims: AttentionDims) -> Vec<f32> {
    let AttentionDims { t, hd, .. } = dims;
    let scale = dims.scale();
    let (q, k, v) = planes(qkv, dims);
    let mut grad = vec![0f32; 3 * dims.plane()];
    let (dq, dkv) = grad.split_at_mut(dims.plane());
    let (dk, dv) = dkv.split_at_mut(dims.plane());
    let head_len = t * hd;
    dq.par_chunks_mut(head_len)
        .zip(dk.par_chunks_mut(head_len))
        .zip(dv.par_chunks_mut(head_len))
        .enumerate()
        .for_each(|(head, ((dq, dk), dv))| {
            // Row i of this head in a [BH, T, hd] plane.
            let at = |i: usize| head * head_len + i * hd..head * head_len + (i + 1) * hd;
            for i in 0..t {
                let qi = &q[at(i)];
                let r = (head * t + i) * (hd + 1);
                let (dout, big_d, lse) = (&dod[r..r + hd], dod[r + hd], out[r + hd]);
                let dqi = &mut dq[i * hd..(i + 1) * hd];
                for j in 0..=i {
                    let (kj, vj) = (&k[at(j)], &v[at(j)]);
                    let p = (scale * dot(qi, kj) - lse).exp(); // p_ij
                    let ds = scale * p * (dot(dout, vj) - big_d); // scale · ds_ij
                    axpy(dqi, ds, kj);
                    axpy(&mut dk[j * hd..(j + 1) * hd], ds, qi);
                    axpy(&mut dv[j * hd..(j + 1) * hd], p, dout);
                }
            }
        });
    grad
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
