//! Device selection from `run.device`. Asking for CUDA from a CPU-only binary, or on a machine
//! where the GPU cannot be opened, is an error, never a silent fall back to CPU.

use candle_core::Device;

use super::TrainError;
use crate::config::parse_device;

/// `"cpu"`, `"cuda"` (ordinal 0) or `"cuda:N"`. Opening a GPU also switches its f32 matmuls to
/// TF32 tensor cores.
pub fn select_device(spec: &str) -> Result<Device, TrainError> {
    match parse_device(spec) {
        Some(None) => Ok(Device::Cpu),
        Some(Some(ordinal)) => cuda_device(spec, ordinal),
        None => Err(TrainError::Device(format!(
            "run.device must be \"cpu\", \"cuda\" or \"cuda:N\", got {spec:?}"
        ))),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(spec: &str, ordinal: usize) -> Result<Device, TrainError> {
    let device = Device::new_cuda(ordinal).map_err(|e| {
        TrainError::Device(format!(
            "run.device = {spec:?}: cannot open CUDA device {ordinal} (is there a GPU with \
             that ordinal, and are the CUDA 13 libraries on LD_LIBRARY_PATH?): {e}"
        ))
    })?;
    // f32 matmuls (the whole model in `train.precision = "f32"`, the peak probe) on TF32 tensor
    // cores, as PyTorch's `set_float32_matmul_precision("high")`: ~8x the FP32 rate on an H100
    // for a 10-bit mantissa in the products, accumulation still in f32. A
    // process-wide switch in candle; it does not affect the CPU.
    candle_core::cuda::set_gemm_reduced_precision_f32(true);
    Ok(device)
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(spec: &str, _ordinal: usize) -> Result<Device, TrainError> {
    Err(TrainError::Device(format!(
        "run.device = {spec:?}, but this binary was built without CUDA support \
         (build it with scripts/build-cuda.sh, i.e. `cargo build --release --features cuda`; \
         see README)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_the_cpu() -> Result<(), TrainError> {
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
