//! Our own fused kernels, and the switch between them and candle's composed ops.
//!
//! With `[perf] kernels = "fused"` (the default) the CPU trains through the model's written-out
//! CPU passes (`model/cpu/`), built on [`gemm`] (matrix products on slices) and [`simd`]
//! (vectorised element-wise math); on the graph path (GPUs, bf16) the hot ops outside the
//! linear layers are fused ops: causal attention (`model/attention_packed.rs`), the
//! cross-entropy over V = 50257 logits (fused with the tied lm_head, `model/lm_head.rs`,
//! `model/loss.rs`) and the AdamW update (`optim/fused.rs`), each with a CPU implementation
//! (rayon) and a CUDA one (`kernels/*.cu`, compiled to PTX by build.rs, launched by `cuda.rs`).
//! Composed from candle's generic ops each is a chain of full-size passes and temporaries
//! (attention's are [B, H, T, T]); the fused versions make one or two passes. The composed
//! versions stay as the reference path: `kernels = "composed"` selects them everywhere, for A/B
//! timings (docs/perf/gpu.md, docs/benchmarks.md) and to rule our kernels out when a run
//! misbehaves.

use candle_core::{CpuStorage, Layout, Storage, StorageRef, Tensor};
use serde::{Deserialize, Serialize};

#[cfg(feature = "cuda")]
pub(crate) mod cuda;
pub mod gemm;
pub mod simd;

/// (B·H, T, hd) of the fused attention's `[3, B, H, T, hd]` layout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionDims {
    pub heads: usize,
    pub t: usize,
    pub hd: usize,
}

impl AttentionDims {
    pub(crate) fn of(qkv: &candle_core::Shape) -> candle_core::Result<Self> {
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

    /// The softmax temperature (the CUDA kernels' argument).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub fn scale(&self) -> f32 {
        1.0 / (self.hd as f32).sqrt()
    }
}

/// `perf.kernels`: which implementation the model's passes and AdamW use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// Our fused kernels: the written-out CPU passes, and fused ops on CUDA. The default.
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

/// Read access to the contiguous f32 data of a CPU tensor, for the backward passes of custom
/// ops (candle hands them tensors, not storages). Holds the tensor's storage lock while alive.
pub(crate) struct CpuF32<'a> {
    guard: StorageRef<'a>,
    range: (usize, usize),
}

impl<'a> CpuF32<'a> {
    /// `t` must be a contiguous f32 tensor on the CPU; `what` names it in the error.
    pub fn of(t: &'a Tensor, what: &str) -> candle_core::Result<Self> {
        let (guard, layout) = t.storage_and_layout();
        let range = match (&*guard, layout.contiguous_offsets()) {
            (Storage::Cpu(CpuStorage::F32(_)), Some(range)) => range,
            _ => candle_core::bail!("{what} must be a contiguous f32 CPU tensor"),
        };
        Ok(Self { guard, range })
    }

    pub fn as_slice(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(data)) => &data[self.range.0..self.range.1],
            // `of` admitted only contiguous f32 CPU storage, and a read guard keeps it so.
            _ => unreachable!("CpuF32 holds f32 CPU storage"),
        }
    }
}
