//! The tied lm_head projection fused with the per-token cross-entropy (CPU).
//!
//! Why: at V = 50257 the [N, V] logits are the largest tensors of a step, and on the CPU every
//! fresh [N, V] allocation costs a page-fault pass as large as the arithmetic on it. Through
//! candle's autograd, `matmul` + [`token_nll_fused`](super::loss::token_nll_fused) allocates four
//! of them per step (logits, their gradient, the zero tensor the gradient store adds it into,
//! and the sum). This op allocates one: its backward turns its private logits buffer into the
//! logits gradient in place and feeds it straight into the two weight/input matmuls, so the
//! gradient store only ever sees [N, D] and [V, D] tensors.
//!
//! In bf16 mode ([`Precision::Bf16`]) the composed path is used on every device: the op below
//! is an f32 CPU kernel, and bf16 on the CPU exists to test the GPU's numerics (candle's CPU
//! bf16 matmul widens to f32, so it is slower than f32 there, not faster). The matmul runs in
//! bf16 and its logits are cast to f32 before the log-softmax, so the per-token NLL (and the
//! ledger's per-sequence losses) are f32 reductions in every mode.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Storage, Tensor};

use super::loss::{nll_rows, token_nll_composed, SoftmaxGrad};
use super::{ModelError, Precision};

/// Per-token NLL of `h` [N, D] projected by the tied embedding `wte` [V, D] (logits = h · wteᵀ)
/// against `targets` [N] u32 → [N] f32. Gradients flow to `h` and `wte`. On non-CPU devices, or
/// with bf16 matmuls, it is the composed matmul + f32 log-softmax (same values and gradients in
/// f32; no fused kernel there).
pub fn lm_head_nll(
    h: &Tensor,
    wte: &Tensor,
    targets: &Tensor,
    precision: Precision,
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
    if !h.device().is_cpu() || precision != Precision::F32 {
        let logits = precision.matmul(h, &wte.t()?)?; // [N, V] f32
        return token_nll_composed(&logits, targets);
    }
    // Computed outside the graph; the op's backward supplies the gradients itself.
    let logits = h.detach().matmul(&wte.detach().t()?)?; // [N, V]
    let op = LmHeadNll {
        logits: Mutex::new(Some(logits)),
    };
    Ok(h.apply_op3(wte, &targets.contiguous()?, op)?) // [N]
}

/// Holds the logits from the forward until the backward consumes them (in place).
struct LmHeadNll {
    logits: Mutex<Option<Tensor>>,
}

impl LmHeadNll {
    fn take_logits(&self) -> candle_core::Result<Tensor> {
        let mut guard = self
            .logits
            .lock()
            .map_err(|_| candle_core::Error::msg("lm-head-nll: poisoned lock"))?;
        guard.take().ok_or_else(|| {
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
        let guard = self
            .logits
            .lock()
            .map_err(|_| candle_core::Error::msg("lm-head-nll: poisoned lock"))?;
        let Some(logits) = guard.as_ref() else {
            candle_core::bail!("lm-head-nll: logits already consumed")
        };
        let (storage, layout) = logits.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            candle_core::bail!("lm-head-nll: logits are not on the CPU")
        };
        let nll = nll_rows(cpu, layout, s3, l3)?; // [N]
        let n = nll.len();
        Ok((CpuStorage::F32(nll), Shape::from(n)))
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
        let op = SoftmaxGrad {
            nll: res.to_vec1::<f32>()?,
            grad_nll: grad_res.to_vec1::<f32>()?,
        };
        grad_logits.inplace_op2(targets, &op)?; // [N, V] = dL/dlogits
        let grad_h = grad_logits.matmul(&wte.detach())?; // [N, D]
        let grad_wte = grad_logits.t()?.matmul(&h.detach())?; // [V, D]
        Ok((Some(grad_h), Some(grad_wte), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::rng::Rng;

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
        let mut runs = Vec::new();
        for fused in [true, false] {
            let nll = if fused {
                lm_head_nll(h.as_tensor(), wte.as_tensor(), &targets, Precision::F32)?
            } else {
                let logits = h.as_tensor().matmul(&wte.as_tensor().t()?)?;
                token_nll_composed(&logits, &targets)?
            };
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
            for (a, b) in runs[0][k].iter().zip(&runs[1][k]) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{what}: {a} vs {b}"
                );
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
        let loss =
            lm_head_nll(h.as_tensor(), wte.as_tensor(), &targets, Precision::F32)?.sum_all()?;
        loss.backward()?;
        assert!(loss.backward().is_err());
        Ok(())
    }
}
