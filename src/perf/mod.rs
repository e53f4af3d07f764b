//! Measuring the step: `syllabus bench` (throughput, phase times, MFU) and
//! `syllabus check-grads`, the device/precision gradient check that goes with it on a GPU.

mod bench;
mod grad_check;

pub use bench::{bench, BenchOptions, BenchReport};
pub use grad_check::{check_grads, GradCheckReport, ParamGradCheck, Tolerance};

/// What can stop a measurement.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Optim(#[from] crate::optim::OptimError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
