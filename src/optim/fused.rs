//! The AdamW update as two in-place passes per parameter tensor (CPU: rayon; CUDA:
//! `kernels/adamw.cu`), instead of candle's ~15 composed ops that each allocate and write a
//! full-size temporary. Two passes because a candle in-place op mutates one tensor: first the
//! moments `mv` ([2, n]: m then v), then the parameter. Arithmetic is f32, as on the GPU.

use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor};
use rayon::prelude::*;

use crate::kernels::{contiguous_f32, contiguous_f32_mut};

/// Elements per rayon task: large enough that scheduling is noise next to the arithmetic.
const CHUNK: usize = 1 << 14;

/// One AdamW update of `param` (a Var's tensor, updated in place) with moments `mv` [2, n]
/// (updated in place) from gradient `grad` (same shape as `param`).
pub(super) fn adamw_update(
    param: &Tensor,
    mv: &Tensor,
    grad: &Tensor,
    moments: MomentsUpdate,
    apply: ParamUpdate,
) -> candle_core::Result<()> {
    let grad = grad.contiguous()?.flatten_all()?; // [n], no copy when already contiguous
    mv.inplace_op2(&grad, &moments)?;
    param.inplace_op2(mv, &apply)
}

/// m <- beta1 m + (1 - beta1) g', v <- beta2 v + (1 - beta2) g'^2, g' = grad_scale * g.
#[derive(Clone, Copy, Debug)]
pub(super) struct MomentsUpdate {
    pub beta1: f32,
    pub beta2: f32,
    /// Global-norm clipping factor (1 when not clipped).
    pub grad_scale: f32,
}

/// p <- decay p - lr (m / bc1) / (sqrt(v / bc2) + eps).
#[derive(Clone, Copy, Debug)]
pub(super) struct ParamUpdate {
    pub lr: f32,
    /// 1 - lr * weight_decay, or 1 for the no-decay group.
    pub decay: f32,
    pub inv_bc1: f32,
    pub inv_bc2: f32,
    pub eps: f32,
}

impl InplaceOp2 for MomentsUpdate {
    fn name(&self) -> &'static str {
        "adamw-moments"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let g = contiguous_f32(s2, l2, "adamw: gradient")?;
        let mv = contiguous_f32_mut(s1, l1, "adamw: moments")?;
        if mv.len() != 2 * g.len() {
            candle_core::bail!(
                "adamw: {} moment values for {} gradients",
                mv.len(),
                g.len()
            )
        }
        let (m, v) = mv.split_at_mut(g.len());
        let Self {
            beta1,
            beta2,
            grad_scale,
        } = *self;
        m.par_chunks_mut(CHUNK)
            .zip(v.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .for_each(|((m, v), g)| {
                for ((m, v), &g) in m.iter_mut().zip(v.iter_mut()).zip(g) {
                    let g = g * grad_scale;
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                }
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
    ) -> candle_core::Result<()> {
        let args = (self.beta1, self.beta2, self.grad_scale);
        crate::kernels::cuda::adamw_moments(s1, l1, s2, l2, args)
    }
}

impl InplaceOp2 for ParamUpdate {
    fn name(&self) -> &'static str {
        "adamw-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let mv = contiguous_f32(s2, l2, "adamw: moments")?;
        let p = contiguous_f32_mut(s1, l1, "adamw: parameter")?;
        if mv.len() != 2 * p.len() {
            candle_core::bail!(
                "adamw: {} moment values for {} parameters",
                mv.len(),
                p.len()
            )
        }
        let (m, v) = mv.split_at(p.len());
        let Self {
            lr,
            decay,
            inv_bc1,
            inv_bc2,
            eps,
        } = *self;
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK))
            .zip(v.par_chunks(CHUNK))
            .for_each(|((p, m), v)| {
                for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                    *p = decay * *p - lr * (m * inv_bc1) / ((v * inv_bc2).sqrt() + eps);
                }
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
    ) -> candle_core::Result<()> {
        let args = [self.lr, self.decay, self.inv_bc1, self.inv_bc2, self.eps];
        crate::kernels::cuda::adamw_apply(s1, l1, s2, l2, args)
    }
}
