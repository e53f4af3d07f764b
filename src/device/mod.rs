//! The accelerator: opening the device named by `run.device`, its name for reports, and the
//! matmul peak MFU is measured against ([`peak`]). Asking for CUDA from a CPU-only binary, or on
//! a machine where the GPU cannot be opened, is an error, never a silent fall back to CPU.

mod peak;

pub use peak::PEAK_PRESETS;
pub use peak::{matmul_peak_flops, matmul_peak_flops_for, Peak, PeakSetting, PerfConfig};

use candle_core::Device;

/// A device that cannot be named or opened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeviceError(String);

/// `"cpu"` -> `Some(None)`, `"cuda"` -> `Some(Some(0))`, `"cuda:N"` -> `Some(Some(N))`,
/// anything else -> `None`.
pub fn parse_device(s: &str) -> Option<Option<usize>> {
    match s {
        "cpu" => Some(None),
        "cuda" => Some(Some(0)),
        _ => s.strip_prefix("cuda:")?.parse().ok().map(Some),
    }
}

/// `"cpu"`, `"cuda"` (ordinal 0) or `"cuda:N"`.
pub fn select_device(spec: &str) -> Result<Device, DeviceError> {
    match parse_device(spec) {
        Some(None) => Ok(Device::Cpu),
        Some(Some(ordinal)) => cuda_device(spec, ordinal),
        None => Err(DeviceError(format!(
            "run.device must be \"cpu\", \"cuda\" or \"cuda:N\", got {spec:?}"
        ))),
    }
}

/// Runs f32 matmuls on CUDA devices on TF32 tensor cores, as PyTorch's
/// `set_float32_matmul_precision("high")`: ~8x the FP32 rate on an H100 for a 10-bit mantissa
/// in the products, accumulation still in f32 (the whole model in `train.precision = "f32"`,
/// and the peak probe). A process-wide switch in candle, so callers make it explicitly where a
/// device is opened for training or measuring; the CPU is unaffected.
pub fn use_tf32_matmuls(device: &Device) {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        candle_core::cuda::set_gemm_reduced_precision_f32(true);
    }
    #[cfg(not(feature = "cuda"))]
    let _ = device;
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

#[cfg(feature = "cuda")]
fn cuda_device(spec: &str, ordinal: usize) -> Result<Device, DeviceError> {
    Device::new_cuda(ordinal).map_err(|e| {
        DeviceError(format!(
            "run.device = {spec:?}: cannot open CUDA device {ordinal} (is there a GPU with \
             that ordinal, and are the CUDA 13 libraries on LD_LIBRARY_PATH?): {e}"
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(spec: &str, _ordinal: usize) -> Result<Device, DeviceError> {
    Err(DeviceError(format!(
        "run.device = {spec:?}, but this binary was built without CUDA support \
         (build it with scripts/build-cuda.sh, i.e. `cargo build --release --features cuda`; \
         see README)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_the_cpu() -> Result<(), DeviceError> {
        assert!(select_device("cpu")?.is_cpu());
        Ok(())
    }

    #[test]
    fn unknown_device_names_are_rejected_with_the_accepted_forms() {
        for spec in ["gpu", "cuda:", "cuda:x", "CUDA:0", ""] {
            let msg = select_device(spec).unwrap_err().to_string();
            assert!(
                msg.contains("\"cpu\", \"cuda\" or \"cuda:N\""),
                "{spec}: {msg}"
            );
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_an_error_not_the_cpu() {
        for spec in ["cuda", "cuda:0", "cuda:3"] {
            let msg = select_device(spec).unwrap_err().to_string();
            assert!(
                msg.contains("built without CUDA support") && msg.contains(spec),
                "{spec}: {msg}"
            );
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn a_missing_gpu_ordinal_is_an_error() {
        // No machine here has 1000 GPUs: the open must fail with the spec in the message.
        let msg = select_device("cuda:999").unwrap_err().to_string();
        assert!(msg.contains("cuda:999"), "{msg}");
    }
}
