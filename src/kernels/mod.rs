//! Our own fused kernels, and the switch between them and candle's composed ops.
//!
//! The hot ops outside the linear layers: causal attention (`model/attention.rs`), the
//! cross-entropy over V = 50257 logits (fused with the tied lm_head, `model/lm_head.rs`,
//! `model/loss.rs`) and the AdamW update (`optim/fused.rs`). Composed from candle's generic ops
//! each is a chain of full-size passes and temporaries (attention's are [B, H, T, T]); the fused
//! versions make one or two passes. Each has a CPU implementation (rayon) and a CUDA one
//! (`kernels/*.cu`, compiled to PTX by build.rs, launched by `cuda.rs`). The composed versions
//! stay as the reference path: `[perf] kernels = "composed"` selects them, for A/B timings
//! (docs/perf/gpu.md) and to rule our kernels out when a run misbehaves.

use candle_core::{CpuStorage, Layout};
use serde::{Deserialize, Serialize};

#[cfg(feature = "cuda")]
pub(crate) mod cuda;

/// `perf.kernels`: which implementation attention, the cross-entropy and AdamW use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// Our fused kernels (CPU and CUDA). The default.
    #[default]
    Fused,
    /// candle's composed ops only: the reference implementation.
    Composed,
}

impl Kernels {
    /// True for the default (serde's `skip_serializing_if` takes a reference).
    pub fn is_fused(&self) -> bool {
        *self == Kernels::Fused
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kernels::Fused => "fused",
            Kernels::Composed => "composed",
        }
    }
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The f32 elements a contiguous CPU layout covers; `what` names the operand in the error.
pub(crate) fn contiguous_f32<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{what} must be contiguous")
    };
    Ok(&s.as_slice::<f32>()?[a..b])
}

/// [`contiguous_f32`] for the operand an in-place op writes.
pub(crate) fn contiguous_f32_mut<'a>(
    s: &'a mut CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a mut [f32]> {
    let (Some((a, b)), CpuStorage::F32(buf)) = (l.contiguous_offsets(), s) else {
        candle_core::bail!("{what} must be contiguous f32")
    };
    Ok(&mut buf[a..b])
}
