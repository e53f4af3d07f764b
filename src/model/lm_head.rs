//! The tied lm_head projection fused with the per-token cross-entropy (the graph path, CPU and
//! CUDA; the CPU passes have their own, vocabulary-chunked, `cpu/lm_head.rs`).
//!
//! Why: at V = 50257 the [N, V] logits are the largest tensors of a step; on the CPU every
//! fresh [N, V] allocation costs a page-fault pass as large as the arithmetic on it, and on a
//! GPU every pass over them is memory-bound. Through candle's autograd, `matmul` +
//! [`token_nll_fused`](super::loss::token_nll_fused) allocates four of them per step (logits,
//! their gradient, the zero tensor the gradient store adds it into, and the sum). This op
//! allocates one: its backward turns its private logits buffer into the logits gradient in
//! place and feeds it straight into the two weight/input matmuls, so the gradient store only
//! ever sees [N, D] and [V, D] tensors.
//!
//! Mixed precision: the three matmuls (logits, and the two in the backward) run in the
//! [`Precision`]'s dtype with f32 results, exactly as the composed path's autograd would; the
//! logits, the log-softmax and the per-token NLL (hence the ledger's per-sequence losses) are
//! f32 in every mode. `[perf] kernels = "composed"` ([`Kernels::Composed`]) selects the
//! composed matmul + log-softmax instead, the reference path.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Storage, Tensor};

use super::loss::{nll_rows, token_nll_composed, SoftmaxGrad};
use super::{ModelError, Precision};
use crate::kernels::Kernels;

/// Per-token NLL of `h` [N, D] projected by the tied embedding `wte` [V, D] (logits = h · wteᵀ)
/// against `targets` [N] u32 → [N] f32. Gradients flow to `h` and `wte`.
pub fn lm_head_nll(
    h: &Tensor,
    wte: &Tensor,
    targets: &Tensor,
    precision: Precision,
    kernels: Kernels,
) -> Result<Tensor, ModelError> {
    let (n, d) = h.dims2()?;
    let (_v, d_wte) = wte.dims2()?;
    if d != d_wte || targets.dims() != [n] || targets.dtype() != DType::U32 {
        return Err(ModelError::BadInput(format!(
            "lm_head_nll: h {:?}, wte {:?}, targets {:?} {:?}",
            h.dims(),
            wte.dims(),
            targets.dtype(),
            targets.dims()
        )));
    }
    if kernels == Kernels::Composed || h.device().is_metal() {
        let logits = precision.matmul(h, &wte.t()?)?; // [N, V] f32
        return token_nll_composed(&logits, targets);
    }
    // Computed outside the graph; the op's backward supplies the gradients itself.
    let logits = precision.matmul(&h.detach(), &wte.detach().t()?)?; // [N, V] f32
    let op = LmHeadNll {
        logits: Mutex::new(Some(logits)),
        precision,
    };
    Ok(h.apply_op3(wte, &targets.contiguous()?, op)?) // [N]
}

/// Holds the logits from the forward until the backward consumes them (in place).
struct LmHeadNll {
    logits: Mutex<Option<Tensor>>,
    precision: Precision,
}

impl LmHeadNll {
    fn lock(&self) -> candle_core::Result<std::sync::MutexGuard<'_, Option<Tensor>>> {
        self.logits
            .lock()
            .map_err(|_| candle_core::Error::msg("lm-head-nll: poisoned lock"))
    }

    /// The logits computed in [`lm_head_nll`], still unconsumed.
    fn logits(&self) -> candle_core::Result<Tensor> {
        match self.lock()?.as_ref() {
            Some(logits) => Ok(logits.clone()),
            None => candle_core::bail!("lm-head-nll: logits already consumed"),
        }
    }

    fn take_logits(&self) -> candle_core::Result<Tensor> {
        self.lock()?.take().ok_or_else(|| {
            // The buffer is overwritten by the first backward; a second one would be wrong.
            candle_core::Error::msg("lm-head-nll: backward already ran on this graph")
        })
    }
}

impl CustomOp3 for LmHeadNll {
    fn name(&self) -> &'static str {
        "lm-head-nll"
    }

    /// Reads the logits computed in [`lm_head_nll`]; `h` and `wte` were consumed there.
    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let logits = self.logits()?;
        let (storage, layout) = logits.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            candle_core::bail!("lm-head-nll: logits are not on the CPU")
        };
        let nll = nll_rows(cpu, layout, s3, l3)?; // [N]
        let n = nll.len();
        Ok((CpuStorage::F32(nll), Shape::from(n)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let logits = self.logits()?;
        let (storage, layout) = logits.storage_and_layout();
        let Storage::Cuda(cuda) = &*storage else {
            candle_core::bail!("lm-head-nll: logits are not on the GPU")
        };
        let n = layout.shape().dims2()?.0;
        let nll = crate::kernels::cuda::token_nll(cuda, layout, s3, l3)?; // [N]
        Ok((nll, Shape::from(n)))
    }

    fn bwd(
        &self,
        h: &Tensor,
        wte: &Tensor,
        targets: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad_logits = self.take_logits()?; // [N, V], ours alone: safe to overwrite
        SoftmaxGrad::apply(&grad_logits, targets, res, grad_res)?; // [N, V] = dL/dlogits
        let p = self.precision;
        let grad_h = p.matmul(&grad_logits, &wte.detach())?; // [N, D]
        let grad_wte = p.matmul(&grad_logits.t()?, &h.detach())?; // [V, D]
        Ok((Some(grad_h), Some(grad_wte), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::rng::Rng;

    /// Fused vs composed in each precision: the same matmul roundings, so values and
    /// gradients agree to f32 rounding (f32) or to one bf16 rounding of the products (bf16).
    #[test]
    fn matches_composed_in_value_and_gradient() -> Result<(), ModelError> {
        let (n, d, v) = (23, 16, 301);
        let mut rng = Rng::new(2);
        let mut draw = |len: usize, std: f64| -> Vec<f32> {
            (0..len).map(|_| (rng.normal() * std) as f32).collect()
        };
        let dev = Device::Cpu;
        let h = Var::from_vec(draw(n * d, 1.0), (n, d), &dev)?;
        let wte = Var::from_vec(draw(v * d, 0.5), (v, d), &dev)?;
        let w = Tensor::from_vec(draw(n, 1.0), n, &dev)?; // per-token weights
        let targets: Vec<u32> = (0..n as u32).map(|i| (i * 13) % v as u32).collect();
        let targets = Tensor::from_vec(targets, n, &dev)?;
        for (precision, tol) in [(Precision::F32, 1e-5), (Precision::Bf16, 1e-2)] {
            let mut runs = Vec::new();
            for kernels in [Kernels::Fused, Kernels::Composed] {
                let nll =
                    lm_head_nll(h.as_tensor(), wte.as_tensor(), &targets, precision, kernels)?;
                let grads = (&nll * &w)?.sum_all()?.backward()?;
                let get = |t: &Tensor| -> Result<Vec<f32>, ModelError> {
                    let g = grads.get(t).ok_or(ModelError::BadInput("no grad".into()))?;
                    Ok(g.flatten_all()?.to_vec1::<f32>()?)
                };
                runs.push([
                    nll.to_vec1::<f32>()?,
                    get(h.as_tensor())?,
                    get(wte.as_tensor())?,
                ]);
            }
            for (k, what) in ["nll", "grad h", "grad wte"].iter().enumerate() {
                let scale = runs[1][k].iter().fold(0f32, |m, x| m.max(x.abs()));
                for (a, b) in runs[0][k].iter().zip(&runs[1][k]) {
                    assert!(
                        (a - b).abs() <= tol * (scale + b.abs()),
                        "{precision} {what}: {a} vs {b}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn second_backward_is_an_error_not_a_wrong_gradient() -> Result<(), ModelError> {
        let dev = Device::Cpu;
        let h = Var::from_vec(vec![0.5f32; 8], (2, 4), &dev)?;
        let wte = Var::from_vec((0..20).map(|i| i as f32 * 0.1).collect(), (5, 4), &dev)?;
        let targets = Tensor::new(&[1u32, 3], &dev)?;
        let loss = lm_head_nll(
            h.as_tensor(),
            wte.as_tensor(),
            &targets,
            Precision::F32,
            Kernels::Fused,
        )?
        .sum_all()?;
        loss.backward()?;
        assert!(loss.backward().is_err());
        Ok(())
    }
}
