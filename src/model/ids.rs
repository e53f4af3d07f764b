//! Checks of the token-id tensors every model takes.

use candle_core::{DType, Tensor};

use super::ModelError;

/// (B, T) of `inputs`, after checking `targets` is u32 of the same shape.
pub fn check_targets(inputs: &Tensor, targets: &Tensor) -> Result<(usize, usize), ModelError> {
    let dims = inputs.dims2().map_err(|_| {
        ModelError::BadInput(format!("inputs must be [B, T], got {:?}", inputs.dims()))
    })?;
    if targets.dims() != inputs.dims() || targets.dtype() != DType::U32 {
        return Err(ModelError::BadInput(format!(
            "targets must be u32 {:?} like inputs, got {:?} {:?}",
            inputs.dims(),
            targets.dtype(),
            targets.dims()
        )));
    }
    Ok(dims)
}

/// Token ids `idx` [B, T] checked against an architecture: u32, non-empty, at most
/// `max_context` long. Returns (B, T).
pub fn check_ids(
    idx: &Tensor,
    max_context: Option<usize>,
    what: &str,
) -> Result<(usize, usize), ModelError> {
    let (b, t) = idx.dims2().map_err(|_| {
        ModelError::BadInput(format!("{what} must be [B, T], got {:?}", idx.dims()))
    })?;
    if idx.dtype() != DType::U32 {
        return Err(ModelError::BadInput(format!(
            "{what} must be u32, got {:?}",
            idx.dtype()
        )));
    }
    if t == 0 || b == 0 {
        return Err(ModelError::BadInput(format!("{what} is empty: [{b}, {t}]")));
    }
    match max_context {
        Some(n_positions) if t > n_positions => Err(ModelError::ContextTooLong { t, n_positions }),
        _ => Ok((b, t)),
    }
}
