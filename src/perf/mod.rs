//! Throughput measurement: a measured matmul peak for MFU, and `syllabus bench`; and
//! `syllabus check-grads`, the device/precision gradient check that goes with it on a GPU.

mod bench;
mod grad_check;
mod peak;

pub use bench::{bench, BenchOptions, BenchReport};
pub use grad_check::{check_grads, GradCheckReport, ParamGradCheck, Tolerance};
pub use peak::{Peak, PeakSetting, PerfConfig, PEAK_PRESETS};

use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::model::Precision;

use crate::rng::Rng;

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

/// A human name for `device`, recorded with throughput measurements: the CPU model and thread
/// count, or the CUDA ordinal.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => {
            let model = std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                })
                .unwrap_or_else(|| "unknown CPU".into());
            let threads = candle_core::utils::get_num_threads();
            format!("cpu: {model} ({threads} threads)")
        }
        other => format!("{:?}", other.location()),
    }
}
