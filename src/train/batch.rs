//! Turning block ids into input/target tensors.

use candle_core::{Device, Tensor};

use crate::data::Blocks;

/// Inputs `[B, T]` and next-token targets `[B, T]` (u32) for the given blocks; a block holds
/// T + 1 tokens, so inputs are tokens 0..T and targets 1..=T.
pub fn load_batch(
    blocks: &Blocks,
    ids: &[usize],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let block_len = blocks.block_len();
    let t = block_len - 1;
    let mut buf = vec![0u32; block_len];
    let mut inputs = Vec::with_capacity(ids.len() * t);
    let mut targets = Vec::with_capacity(ids.len() * t);
    for &id in ids {
        blocks.read(id, &mut buf);
        inputs.extend_from_slice(&buf[..t]);
        targets.extend_from_slice(&buf[1..]);
    }
    let x = Tensor::from_vec(inputs, (ids.len(), t), device)?; // [B, T]
    let y = Tensor::from_vec(targets, (ids.len(), t), device)?; // [B, T]
    Ok((x, y))
}
