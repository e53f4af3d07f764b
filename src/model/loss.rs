//! Per-token cross-entropy (negative log-likelihood) from logits.
//!
//! With V = 50257 the logits dominate memory and time. The composed `log_softmax` + `gather`
//! materialises several [N, V] tensors forward and more backward (measured on the CPU: ~5x
//! slower than the fused op at N = 2048). The fused op below reads the logits twice forward
//! (max, then exp-sum) and writes the [N, V] gradient once backward: row-parallel with rayon on
//! the CPU, one block per row on CUDA (`kernels/cross_entropy.cu`). The model's training path
//! goes one step further and fuses the lm_head matmul too (`lm_head.rs`), reusing these ops.
//!
//! Numerics: max-subtraction for stability; exponentials in f32 via
//! [`exp_fast`](crate::kernels::simd::exp_fast) (vectorised, ~2e-7 relative error); row sums in
//! f32 lanes over 512-element blocks, blocks accumulated in f64 (a flat 50257-term f32 sum would
//! lose up to ~1e-5 relative); output f32.

use candle_core::{CpuStorage, CustomOp2, DType, InplaceOp3, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use super::ModelError;
use crate::kernels::contiguous_f32;
use crate::kernels::simd::{exp_scale_in_place, row_max, sum_exp};

/// Per-token NLL, choosing the implementation by device: the fused op on CPU and CUDA, the
/// composed ops elsewhere (no Metal kernel). Both give the same values and gradients.
/// `logits` [N, V] f32, `targets` [N] u32 → [N] f32.
pub fn token_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
    if logits.device().is_metal() {
        token_nll_composed(logits, targets)
    } else {
        token_nll_fused(logits, targets)
    }
}

/// Fused cross-entropy (CPU and CUDA) with an exact backward: d nll_n / d logits_n = softmax(logits_n) -
/// onehot(target_n). `logits` [N, V] f32, `targets` [N] u32 → [N] f32.
pub fn token_nll_fused(logits: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
    check_inputs(logits, targets)?;
    let logits = logits.contiguous()?; // [N, V]
    let targets = targets.contiguous()?; // [N]
    Ok(logits.apply_op2(&targets, TokenNll)?) // [N]
}

/// The same quantity from differentiable candle ops (any device).
pub fn token_nll_composed(logits: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
    check_inputs(logits, targets)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?; // [N, V]
    let picked = logp.gather(&targets.contiguous()?.unsqueeze(1)?, 1)?; // [N, 1]
    Ok(picked.squeeze(1)?.neg()?) // [N]
}

fn check_inputs(logits: &Tensor, targets: &Tensor) -> Result<(), ModelError> {
    let (n, _v) = logits.dims2().map_err(|_| {
        ModelError::BadInput(format!("logits must be [N, V], got {:?}", logits.dims()))
    })?;
    if logits.dtype() != DType::F32 || targets.dtype() != DType::U32 {
        return Err(ModelError::BadInput(format!(
            "expected f32 logits and u32 targets, got {:?} and {:?}",
            logits.dtype(),
            targets.dtype()
        )));
    }
    if targets.dims() != [n] {
        return Err(ModelError::BadInput(format!(
            "targets must be [{n}] to match logits {:?}, got {:?}",
            logits.dims(),
            targets.dims()
        )));
    }
    Ok(())
}

/// Forward op: (logits [N, V], targets [N]) → nll [N].
struct TokenNll;

/// In-place backward op on (a private copy of the) logits [N, V] with targets [N] and
/// `stats` [2, N] (the forward's NLL, the upstream gradient): turns each row into
/// (softmax(row) - onehot(target)) * grad_nll[n]. Shared with the fused lm_head op, which owns
/// its logits buffer and so needs no copy.
pub(super) struct SoftmaxGrad;

impl SoftmaxGrad {
    /// Overwrites `logits` (owned by the caller, f32 [N, V], contiguous) with dL/dlogits, given
    /// the op's output `nll` [N] and its upstream gradient `grad_nll` [N].
    pub(super) fn apply(
        logits: &Tensor,
        targets: &Tensor,
        nll: &Tensor,
        grad_nll: &Tensor,
    ) -> candle_core::Result<()> {
        // `stack` also resolves a broadcast (strided) upstream gradient.
        let stats = Tensor::stack(&[nll, grad_nll], 0)?; // [2, N]
        logits.inplace_op3(targets, &stats, &SoftmaxGrad)
    }
}

/// Contiguous offsets of both inputs and V, with every target checked against V.
fn checked_offsets<'a>(
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
) -> candle_core::Result<((usize, usize), &'a [u32], usize)> {
    let (Some(a), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
        candle_core::bail!("token-nll: inputs must be contiguous")
    };
    let targets = &s2.as_slice::<u32>()?[b0..b1];
    let (n, v) = l1.shape().dims2()?;
    if targets.len() != n {
        candle_core::bail!("token-nll: {} targets for {n} rows", targets.len())
    }
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= v) {
        candle_core::bail!("token-nll: target {bad} out of range for vocab {v}")
    }
    Ok((a, targets, v))
}

/// Per-row NLL of contiguous logits [N, V] (validated by [`checked_offsets`]).
pub(super) fn nll_rows(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> candle_core::Result<Vec<f32>> {
    let ((a0, a1), targets, v) = checked_offsets(l1, s2, l2)?;
    let logits = &s1.as_slice::<f32>()?[a0..a1];
    Ok(logits
        .par_chunks(v)
        .zip(targets.par_iter())
        .map(|(row, &t)| (log_sum_exp(row) - row[t as usize] as f64) as f32)
        .collect()) // [N]
}

/// Elements summed in f32 before the partial sum is added to the f64 total.
const BLOCK: usize = 512;

/// log(sum(exp(row))) with max-subtraction: f32 lanes within a block, f64 across blocks.
fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row_max(row);
    let total: f64 = row.chunks(BLOCK).map(|b| sum_exp(b, max) as f64).sum();
    max as f64 + total.ln()
}

impl CustomOp2 for TokenNll {
    fn name(&self) -> &'static str {
        "token-nll"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let nll = nll_rows(s1, l1, s2, l2)?; // [N]
        let n = nll.len();
        Ok((CpuStorage::F32(nll), Shape::from(n)))
    }

    /// Targets >= V are an error here; the CUDA kernel gives them a NaN loss instead (checking
    /// on the host would need a device-to-host copy every step).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let n = l1.shape().dims2()?.0;
        Ok((
            crate::kernels::cuda::token_nll(s1, l1, s2, l2)?,
            Shape::from(n),
        ))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // The logits belong to the graph: work on a copy (detached, so no graph edge).
        let grad_logits = logits.detach().copy()?; // [N, V]
        SoftmaxGrad::apply(&grad_logits, targets, res, grad_res)?;
        Ok((Some(grad_logits), None)) // targets are indices: no gradient
    }
}

impl InplaceOp3 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "token-nll-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let ((a0, a1), targets, v) = checked_offsets(l1, s2, l2)?;
        let n = targets.len();
        let stats = contiguous_f32(s3, l3, "token-nll-grad: stats")?;
        if stats.len() != 2 * n {
            candle_core::bail!("token-nll-grad: {} stats for {n} rows", stats.len())
        }
        let (nll, grad_nll) = stats.split_at(n);
        let CpuStorage::F32(buf) = s1 else {
            candle_core::bail!("token-nll-grad: logits must be f32")
        };
        buf[a0..a1]
            .par_chunks_mut(v)
            .enumerate()
            .for_each(|(n, row)| {
                let t = targets[n] as usize;
                // nll = lse - x_t, so lse is recovered exactly enough (f32 rounding of nll,
                // ~1e-7 relative) without storing state in the forward op.
                let lse = (nll[n] as f64 + row[t] as f64) as f32;
                let g = grad_nll[n];
                exp_scale_in_place(row, lse, g);
                row[t] -= g;
            });
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        crate::kernels::cuda::token_nll_grad(s1, l1, s2, l2, s3, l3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_logits_give_nan_loss() -> Result<(), ModelError> {
        let dev = candle_core::Device::Cpu;
        let logits = Tensor::new(&[[0f32, f32::NAN, 1.0], [0.0, 1.0, 2.0]], &dev)?;
        let targets = Tensor::new(&[0u32, 2], &dev)?;
        let nll = token_nll_fused(&logits, &targets)?.to_vec1::<f32>()?;
        assert!(nll[0].is_nan());
        let want = (1f64 + 1f64.exp() + 2f64.exp()).ln() - 2.0;
        assert!((nll[1] as f64 - want).abs() < 1e-6);
        Ok(())
    }
}
