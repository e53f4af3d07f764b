//! Optimisation: AdamW with exportable state, global-norm clipping, LR schedules, and one
//! training step ([`train_step`]: forward, backward, clipping, the non-finite guard, update).

mod adamw;
mod clip;
mod fused;
mod schedule;
mod step;

pub use adamw::{AdamW, AdamWParams};
pub use clip::{clip_scale, global_grad_norm};
pub use schedule::{lr_at, lr_linear_decay, wsd_decay_start};
pub use step::{train_step, StepOutput, StepTimings};

#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("optimizer state: {0}")]
    State(String),
}
