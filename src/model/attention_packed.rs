//! Fused causal attention on a `[3, B, H, T, hd]` stack: the layout of the CUDA kernels
//! (`kernels/attention.cu`, one thread per row, head_dim 32 or 64; their source is also run on
//! the host by `tests/cuda_kernels_host.rs`). The op keeps only the output and each row's
//! log-sum-exp ([B, H, T, hd + 1]); the backward recomputes the probabilities from q, k and the
//! log-sum-exp. On the CPU the same op runs the blocked per-head kernel of `cpu/attention.rs`
//! (the model's CPU path calls that kernel on its own `[B*T, 3D]` layout instead).

use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::attention::{head_backward, head_forward, HeadQkv, HeadRows};
use crate::kernels::{contiguous_f32, AttentionDims};

/// Causal softmax attention with scale 1/sqrt(hd): `qkv` [3, B, H, T, hd] (f32) → [B, H, T, hd].
pub fn fused_causal_attention(qkv: &Tensor) -> candle_core::Result<Tensor> {
    if qkv.dtype() != DType::F32 {
        candle_core::bail!("fused attention: qkv must be f32, got {:?}", qkv.dtype())
    }
    let hd = qkv.dim(4)?;
    let out = qkv.contiguous()?.apply_op1(FusedAttention)?; // [B, H, T, hd + 1]
    out.narrow(3, 0, hd) // [B, H, T, hd]; the log-sum-exp column stays for the backward
}

// CPU-side views of the kernels' layout.
impl AttentionDims {
    fn plane(&self) -> usize {
        self.heads * self.t * self.hd
    }

    /// Head `head` of one [BH, T, hd] plane.
    fn rows<'a>(&self, plane: &'a [f32], head: usize) -> HeadRows<'a> {
        let (t, hd) = (self.t, self.hd);
        HeadRows {
            data: &plane[head * t * hd..(head + 1) * t * hd],
            t,
            hd,
            rs: hd,
        }
    }

    /// Head `head` of a [BH, T, hd + 1] buffer (rows of hd values, then one extra column).
    fn rows_with_extra<'a>(&self, buf: &'a [f32], head: usize) -> HeadRows<'a> {
        let (t, hd) = (self.t, self.hd);
        HeadRows {
            data: &buf[head * t * (hd + 1)..(head + 1) * t * (hd + 1)],
            t,
            hd,
            rs: hd + 1,
        }
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

/// The three [BH, T, hd] planes of a qkv buffer.
fn planes(qkv: &[f32], dims: AttentionDims) -> (&[f32], &[f32], &[f32]) {
    let (q, kv) = qkv.split_at(dims.plane());
    let (k, v) = kv.split_at(dims.plane());
    (q, k, v)
}

fn head(qkv: &[f32], dims: AttentionDims, head: usize) -> HeadQkv<'_> {
    let (q, k, v) = planes(qkv, dims);
    HeadQkv {
        q: dims.rows(q, head),
        k: dims.rows(k, head),
        v: dims.rows(v, head),
    }
}

/// Forward on the CPU, one rayon task per head.
fn forward_cpu(qkv: &[f32], dims: AttentionDims) -> Vec<f32> {
    let AttentionDims { t, hd, .. } = dims;
    let mut out = vec![0f32; dims.heads * t * (hd + 1)];
    out.par_chunks_mut(t * (hd + 1)).enumerate().for_each_init(
        || (Vec::new(), vec![0f32; t * hd], vec![0f32; t]),
        |(scores, o, lse), (h, dst)| {
            head_forward(head(qkv, dims, h), o, lse, scores);
            for (i, row) in dst.chunks_exact_mut(hd + 1).enumerate() {
                row[..hd].copy_from_slice(&o[i * hd..(i + 1) * hd]);
                row[hd] = lse[i];
            }
        },
    );
    out
}

/// Backward on the CPU, one rayon task per head.
fn backward_cpu(qkv: &[f32], out: &[f32], dod: &[f32], dims: AttentionDims) -> Vec<f32> {
    let AttentionDims { t, hd, .. } = dims;
    let mut grad = vec![0f32; 3 * dims.plane()];
    let (dq, dkv) = grad.split_at_mut(dims.plane());
    let (dk, dv) = dkv.split_at_mut(dims.plane());
    let head_len = t * hd;
    dq.par_chunks_mut(head_len)
        .zip(dk.par_chunks_mut(head_len))
        .zip(dv.par_chunks_mut(head_len))
        .enumerate()
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(p, dp), (h, ((dq, dk), dv))| {
                let (o, dout) = (dims.rows_with_extra(out, h), dims.rows_with_extra(dod, h));
                let extra = |buf: &HeadRows<'_>| -> Vec<f32> {
                    (0..t).map(|i| buf.data[i * (hd + 1) + hd]).collect()
                };
                let (lse, d) = (extra(&o), extra(&dout));
                head_backward(head(qkv, dims, h), dout, &lse, &d, (dq, dk, dv), p, dp);
            },
        );
    grad
}
