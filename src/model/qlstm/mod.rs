//! Languini's quasi-LSTM (Irie et al., "The Languini Kitchen", arXiv 2309.11197): a
//! multi-head LSTM whose gates read only the input, trained block-parallel and generating
//! from its recurrent state.
//!
//! - [`cell`]: the gates and the step-by-step recurrence (reference and generation).
//! - [`scan`]: the same recurrence block-parallel (log-space forget products in a block,
//!   the state carried across blocks): the training form.

pub mod cell;
pub mod scan;
