//! Optimisation: AdamW with exportable state, global-norm clipping, LR schedules.

mod adamw;
mod clip;
mod fused;
mod schedule;

pub use adamw::{AdamW, AdamWParams};
pub use clip::{clip_scale, global_grad_norm};
pub use schedule::{lr_at, lr_linear_decay, wsd_decay_start};

#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("optimizer state: {0}")]
    State(String),
}
