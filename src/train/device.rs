//! Device selection from `run.device`. Asking for CUDA from a CPU-only binary is an error,
//! never a silent fall back to CPU.

use candle_core::Device;

use super::TrainError;
use crate::config::parse_device;

pub fn select_device(spec: &str) -> Result<Device, TrainError> {
    match parse_device(spec) {
        Some(None) => Ok(Device::Cpu),
        Some(Some(ordinal)) => cuda_device(spec, ordinal),
        None => Err(TrainError::Device(format!(
            "run.device must be \"cpu\" or \"cuda:N\", got {spec:?}"
        ))),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(spec: &str, ordinal: usize) -> Result<Device, TrainError> {
    Device::new_cuda(ordinal)
        .map_err(|e| TrainError::Device(format!("run.device = {spec:?}: cannot open GPU: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(spec: &str, _ordinal: usize) -> Result<Device, TrainError> {
    Err(TrainError::Device(format!(
        "run.device = {spec:?}, but this binary was built without CUDA support \
         (rebuild with `cargo build --release --features cuda`, see README)"
    )))
}
