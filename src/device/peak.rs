//! The MFU denominator: a vendor peak for known accelerators, or a matmul peak
//! measured in-process (CPU, unknown GPUs).
//!
//! MFU = model FLOPs per token (`GptConfig::flops_per_token`: 6N + the attention term, PaLM's
//! appendix B convention) x tokens/s / peak. Vendor peaks are dense bf16 tensor-core figures
//! without sparsity, the precision GPT-2 training runs in on these devices.

use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::kernels::Kernels;
use crate::model::Precision;
use crate::rng::Rng;

/// Dense bf16 peaks in FLOP/s, from the vendors' data sheets.
pub const PEAK_PRESETS: [(&str, f64); 6] = [
    ("h100", 989.4e12), // H100 SXM5
    ("h100-pcie", 756.0e12),
    ("h200", 989.4e12), // same compute die as H100 SXM5
    ("a100", 312.0e12),
    ("rtx3090", 71.0e12), // GA102 bf16 with fp32 accumulate (Languini's reference device)
    ("rtx4090", 165.2e12),
];

/// `[perf]`: which peak MFU is computed against, and which kernels the hot ops use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerfConfig {
    /// `"measured"` (best f32 matmul rate on the run's device, measured at start), a preset name
    /// (`h100`, `h100-pcie`, `h200`, `a100`, `rtx3090`, `rtx4090`), or a number in FLOP/s.
    /// Default "measured".
    pub peak: PeakSetting,
    /// `"fused"` (our kernels: on the CPU in f32 the model's written-out forward and backward
    /// passes; on CUDA and in bf16 our attention, cross-entropy and AdamW kernels) or
    /// `"composed"` (candle's generic ops with autograd: the reference path, for A/B timings).
    /// Default "fused". On CUDA the fused attention covers head_dim 32 and 64; other sizes run
    /// the composed attention. Left out of the saved config when fused, so configs of earlier
    /// runs stay the same.
    #[serde(skip_serializing_if = "Kernels::is_fused")]
    pub kernels: Kernels,
}

impl Default for PerfConfig {
    fn default() -> Self {
        Self {
            peak: PeakSetting::Name("measured".into()),
            kernels: Kernels::Fused,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PeakSetting {
    Name(String),
    Flops(f64),
}

/// A resolved peak and where it came from, for the logs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Peak {
    pub flops: f64,
    pub source: String,
}

impl PerfConfig {
    pub fn problems(&self) -> Vec<String> {
        match &self.peak {
            PeakSetting::Name(n) if n != "measured" && preset(n).is_none() => {
                let names: Vec<&str> = PEAK_PRESETS.iter().map(|(n, _)| *n).collect();
                vec![format!(
                    "perf.peak {n:?} is unknown; use \"measured\", one of {}, or FLOP/s",
                    names.join(", ")
                )]
            }
            PeakSetting::Flops(f) if !(f.is_finite() && *f > 0.0) => {
                vec![format!("perf.peak must be > 0 FLOP/s, got {f}")]
            }
            _ => Vec::new(),
        }
    }

    /// The peak for `device`; a measured one uses `precision`'s matmul dtype. Invariant: the
    /// config validated.
    pub fn resolve(&self, device: &Device, precision: Precision) -> candle_core::Result<Peak> {
        Ok(match &self.peak {
            PeakSetting::Flops(f) => Peak {
                flops: *f,
                source: "config".into(),
            },
            PeakSetting::Name(n) => match preset(n) {
                Some(flops) => Peak {
                    flops,
                    source: format!("{n} bf16 data sheet"),
                },
                None => Peak {
                    flops: matmul_peak_flops_for(device, precision)?,
                    source: format!("measured {precision} matmul"),
                },
            },
        })
    }
}

/// Best-of-N f32 matmul rate on `device`, in FLOP/s: the denominator of MFU where no vendor
/// peak applies (CPU). Square matrices sized so one product takes milliseconds, not seconds:
/// on the CPU n = 1024, the size where the `gemm` kernels measured fastest (2 cores, AVX-512:
/// ~415 GFLOP/s at 1024 against ~350 at 768 and ~390 at 2048), best of 10 so that a moment of
/// contention does not lower the peak and inflate every MFU.
pub fn matmul_peak_flops(device: &Device) -> candle_core::Result<f64> {
    matmul_peak_flops_for(device, Precision::F32)
}

/// The same probe with operands in `precision`'s matmul dtype: MFU of a bf16 run is measured
/// against the bf16 peak (TF32 for f32 on CUDA, since opening the GPU enables it).
pub fn matmul_peak_flops_for(device: &Device, precision: Precision) -> candle_core::Result<f64> {
    let (n, runs) = if device.is_cpu() {
        (1024, 11)
    } else {
        (8192, 6)
    };
    let mut rng = Rng::new(0);
    let data: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32).collect();
    let a = Tensor::from_vec(data, (n, n), device)?.to_dtype(precision.matmul_dtype())?;
    let b = a.t()?.contiguous()?;
    let mut best = f64::INFINITY;
    for i in 0..runs {
        device.synchronize()?;
        let t0 = Instant::now();
        let c = a.matmul(&b)?;
        device.synchronize()?;
        let secs = t0.elapsed().as_secs_f64();
        drop(c);
        if i > 0 {
            best = best.min(secs); // the first run pays for allocation and thread start-up
        }
    }
    Ok(2.0 * (n as f64).powi(3) / best)
}

fn preset(name: &str) -> Option<f64> {
    PEAK_PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_numbers_and_errors() {
        let c: PerfConfig = toml::from_str("peak = \"h100\"").unwrap();
        assert!(c.problems().is_empty());
        assert_eq!(
            c.resolve(&Device::Cpu, Precision::F32).unwrap().flops,
            989.4e12
        );
        let c: PerfConfig = toml::from_str("peak = 2.5e11").unwrap();
        assert_eq!(
            c.resolve(&Device::Cpu, Precision::F32).unwrap().flops,
            2.5e11
        );
        let c: PerfConfig = toml::from_str("peak = \"v100\"").unwrap();
        assert!(c.problems()[0].contains("rtx3090"), "{:?}", c.problems());
        let c: PerfConfig = toml::from_str("peak = -1.0").unwrap();
        assert_eq!(c.problems().len(), 1);
    }
}
