//! Per-token cross-entropy (negative log-likelihood) from logits.
//!
//! With V = 50257 the logits dominate memory and time on CPU. The composed
//! `log_softmax` + `gather` materialises several [N, V] tensors forward and more backward; the
//! fused CPU op below reads the logits twice forward (max, then exp-sum) and writes the
//! [N, V] gradient once backward, row-parallel with rayon.
//!
//! Numerics: max-subtraction for stability; exponentials in f32, row sums accumulated in f64
//! (a 50257-term f32 sum would lose ~1e-5 relative); output f32.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use super::ModelError;

/// Per-token NLL, choosing the implementation by device: the fused op on CPU, the composed ops
/// elsewhere (the fused op has no CUDA kernel). Both give the same values and gradients.
/// `logits` [N, V] f32, `targets` [N] u32 → [N] f32.
pub fn token_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
    if logits.device().is_cpu() {
        token_nll_fused(logits, targets)
    } else {
        token_nll_composed(logits, targets)
    }
}

/// Fused CPU cross-entropy with an exact backward: d nll_n / d logits_n = softmax(logits_n) -
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

/// Backward op: (logits [N, V], targets [N]) → grad_logits [N, V], with the per-row NLL and
/// upstream gradient captured (N floats each, small).
struct TokenNllGrad {
    nll: Vec<f32>,
    grad_nll: Vec<f32>,
}

/// The contiguous f32 logits and u32 targets slices, plus V.
fn cpu_slices<'a>(
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
) -> candle_core::Result<(&'a [f32], &'a [u32], usize)> {
    let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
    else {
        candle_core::bail!("token-nll: inputs must be contiguous")
    };
    let logits = &s1.as_slice::<f32>()?[a0..a1];
    let targets = &s2.as_slice::<u32>()?[b0..b1];
    let (_, v) = l1.shape().dims2()?;
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= v) {
        candle_core::bail!("token-nll: target {bad} out of range for vocab {v}")
    }
    Ok((logits, targets, v))
}

/// log(sum(exp(row))) with max-subtraction, summed in f64.
fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&x| (x - max).exp() as f64).sum();
    max as f64 + sum.ln()
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
        let (logits, targets, v) = cpu_slices(s1, l1, s2, l2)?;
        let nll: Vec<f32> = logits
            .par_chunks(v)
            .zip(targets.par_iter())
            .map(|(row, &t)| (log_sum_exp(row) - row[t as usize] as f64) as f32)
            .collect(); // [N]
        let n = nll.len();
        Ok((CpuStorage::F32(nll), Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // N floats each; `to_vec1` also resolves a broadcast (strided) upstream gradient.
        let op = TokenNllGrad {
            nll: res.to_vec1::<f32>()?,
            grad_nll: grad_res.to_vec1::<f32>()?,
        };
        let grad_logits = logits.apply_op2_no_bwd(targets, &op)?; // [N, V]
        Ok((Some(grad_logits), None)) // targets are indices: no gradient
    }
}

impl CustomOp2 for TokenNllGrad {
    fn name(&self) -> &'static str {
        "token-nll-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (logits, targets, v) = cpu_slices(s1, l1, s2, l2)?;
        let mut grad = vec![0f32; logits.len()]; // [N, V]
        grad.par_chunks_mut(v)
            .zip(logits.par_chunks(v))
            .enumerate()
            .for_each(|(n, (out, row))| {
                let t = targets[n] as usize;
                // nll = lse - x_t, so lse is recovered exactly enough (f32 rounding of nll,
                // ~1e-7 relative) without storing state in the forward op.
                let lse = (self.nll[n] as f64 + row[t] as f64) as f32;
                let g = self.grad_nll[n];
                for (o, &x) in out.iter_mut().zip(row) {
                    *o = (x - lse).exp() * g;
                }
                out[t] -= g;
            });
        Ok((CpuStorage::F32(grad), l1.shape().clone()))
    }
}
