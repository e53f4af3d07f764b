//! Languini's quasi-LSTM (Irie et al., "The Languini Kitchen", arXiv 2309.11197): a
//! multi-head LSTM whose gates read only the input, trained block-parallel and generating
//! from its recurrent state.
//!
//! - [`config`]: shape, presets (`qlstm-tiny` for the CPU; Languini's mini ... XL), the
//!   registry constructor, parameter and FLOP counts.
//! - [`specs`]: parameter names, shapes, init and weight-decay groups.
//! - [`cell`]: the gates and the step-by-step recurrence (reference and generation).
//! - [`scan`]: the same recurrence block-parallel (log-space forget products in a block,
//!   the state carried across blocks): the training form.
//! - [`model`]: the network, one block body for every path.
//! - [`decoder`]: O(1)-per-token generation.
//! - `plugin`: the [`Architecture`](crate::model::Architecture) and
//!   [`LanguageModel`](crate::model::LanguageModel) implementations.

pub mod cell;
pub mod config;
pub mod decoder;
pub mod model;
mod plugin;
pub mod scan;
pub mod specs;

pub use config::QlstmConfig;
pub use decoder::QlstmDecoder;
pub use model::{Mixer, Qlstm};
pub use specs::qlstm_specs;
