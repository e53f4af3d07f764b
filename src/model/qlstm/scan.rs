//! The quasi-LSTM recurrence c_t = f_t ⊙ c_{t−1} + u_t computed block-parallel, as Languini
//! trains it (arXiv 2309.11197, `projects/lstm`): the sequence is cut into blocks of L steps,
//! everything inside a block is one batch of tensor ops, and only the state at each block's
//! end is carried sequentially to the next block.
//!
//! Within a block, with S_t = Σ_{r≤t} log f_r (cumulative over the block, inclusive) and c_0
//! the state carried in from the previous block:
//!
//! ```text
//! c_t = Σ_{s≤t} (Π_{s<r≤t} f_r) u_s + (Π_{r≤t} f_r) c_0
//!     = Σ_{s≤t} exp(S_t − S_s) u_s  + exp(S_t) c_0
//! ```
//!
//! The L x L lower-triangular matrix M[t, s] = exp(S_t − S_s) (s ≤ t, 0 above the diagonal)
//! is built in log space: S_t − S_s ≤ 0 on and below the diagonal, so exp never overflows, and
//! the upper triangle (where S_t − S_s > 0 could overflow) is set to −inf before the exp, not
//! multiplied by zero after it. The exp's backward there is grad · 0 = 0, so no NaN reaches
//! the gradient. Languini takes products of gates through cumsums of logs for the same reason
//! (a cumprod has a fragile backward).
//!
//! Every block's matrix is applied to its updates at once (an element-wise product and a sum
//! over s, per channel: the matrix differs per channel, so it is not a shared matmul); then a
//! loop over blocks adds exp(S_t) c_0. A sequence whose length T is not a multiple of L gets
//! its last block padded with f = 1, u = 0 after the end, which cannot change the earlier
//! (causal) positions; the padding is cut off again.
//!
//! Memory: the matrix is [B, T/L, D, L, L], i.e. L·D floats per token per layer.

use candle_core::{DType, Device, Tensor};

use crate::model::ModelError;

/// Cell states c [B, T, D] from `log_f` and `u` [B, T, D] (f32), c_0 = 0, computed in blocks
/// of `block_length` steps. Equal to [`recurrent`](super::cell::recurrent) up to rounding.
pub fn block_parallel(
    log_f: &Tensor,
    u: &Tensor,
    block_length: usize,
) -> Result<Tensor, ModelError> {
    let (b, t, d) = log_f.dims3()?;
    if u.dims() != log_f.dims() || block_length == 0 {
        return Err(ModelError::BadInput(format!(
            "block_parallel: log_f {:?}, u {:?}, block_length {block_length}",
            log_f.dims(),
            u.dims()
        )));
    }
    let l = block_length.min(t);
    let n_blocks = t.div_ceil(l);
    let log_f = to_blocks(log_f, n_blocks, l)?; // [B, nb, D, L]
    let u = to_blocks(u, n_blocks, l)?; // [B, nb, D, L]
    let cum = cumsum_last(&log_f)?; // S [B, nb, D, L]
    let intra = within_blocks(&cum, &u)?; // [B, nb, D, L], c_0 = 0 in every block
    let c = carry(&intra, &cum.exp()?)?; // [B, nb, D, L]
    let c = c.permute((0, 1, 3, 2))?.reshape((b, n_blocks * l, d))?; // [B, nb*L, D]
    Ok(c.narrow(1, 0, t)?) // [B, T, D]
}

/// [B, T, D] → [B, nb, D, L] (time last, so the block sums are last-dim reductions), the
/// tail padded with zeros (log f = 0 is f = 1; u = 0) up to nb·L steps.
fn to_blocks(x: &Tensor, n_blocks: usize, l: usize) -> Result<Tensor, ModelError> {
    let (b, t, d) = x.dims3()?;
    let pad = n_blocks * l - t;
    let x = match pad {
        0 => x.clone(),
        _ => Tensor::cat(&[x, &Tensor::zeros((b, pad, d), x.dtype(), x.device())?], 1)?,
    };
    Ok(x.reshape((b, n_blocks, l, d))?
        .permute((0, 1, 3, 2))?
        .contiguous()?)
}

/// Inclusive cumulative sum over the last dim as one 2-D matmul with an upper-triangular
/// matrix of ones (exact sums of at most L terms; f32 whatever the matmul precision, since
/// these are the state's decay exponents).
fn cumsum_last(x: &Tensor) -> Result<Tensor, ModelError> {
    let dims = x.dims().to_vec();
    let l = dims[dims.len() - 1];
    let rows = x.elem_count() / l;
    let ones_upper = Tensor::triu2(l, DType::F32, x.device())?; // [L, L], 1 where s ≤ t
    Ok(x.reshape((rows, l))?
        .matmul(&ones_upper)?
        .reshape(dims.as_slice())?)
}

/// Σ_{s≤t} exp(S_t − S_s) u_s for every block and channel: `cum` (S) and `u` [.., L] →
/// [.., L].
fn within_blocks(cum: &Tensor, u: &Tensor) -> Result<Tensor, ModelError> {
    let l = cum.dim(candle_core::D::Minus1)?;
    let diff = cum.unsqueeze(4)?.broadcast_sub(&cum.unsqueeze(3)?)?; // [.., L(t), L(s)]
    let masked = diff.broadcast_add(&causal_log_mask(l, cum.device())?)?; // −inf above diag
    let m = masked.exp()?; // M[t, s] = Π_{s<r≤t} f_r, 0 for s > t
    Ok(m.broadcast_mul(&u.unsqueeze(3)?)?.sum(4)?) // [.., L(t)]
}

/// [L, L]: 0 where s ≤ t (row t, column s), −inf where s > t.
fn causal_log_mask(l: usize, device: &Device) -> Result<Tensor, ModelError> {
    let data: Vec<f32> = (0..l * l)
        .map(|k| match k % l <= k / l {
            true => 0.0,
            false => f32::NEG_INFINITY,
        })
        .collect();
    Ok(Tensor::from_vec(data, (l, l), device)?)
}

/// Adds each block's carried-in state: c = intra + exp(S) ⊙ c_0, c_0 the previous block's
/// last state (0 for the first). The only sequential part: one step per block.
fn carry(intra: &Tensor, decay: &Tensor) -> Result<Tensor, ModelError> {
    let (n_blocks, l) = (intra.dim(1)?, intra.dim(3)?);
    let mut blocks: Vec<Tensor> = Vec::with_capacity(n_blocks);
    for k in 0..n_blocks {
        let own = intra.narrow(1, k, 1)?; // [B, 1, D, L]
        let c = match blocks.last() {
            None => own,
            Some(prev) => {
                let c0 = prev.narrow(3, l - 1, 1)?; // [B, 1, D, 1]
                (own + decay.narrow(1, k, 1)?.broadcast_mul(&c0)?)?
            }
        };
        blocks.push(c);
    }
    Ok(Tensor::cat(&blocks, 1)?) // [B, nb, D, L]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::qlstm::cell::recurrent;
    use crate::rng::Rng;

    fn draw(rng: &mut Rng, n: usize, scale: f64, shift: f64) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.normal() * scale + shift) as f32)
            .collect()
    }

    /// Gates drawn directly (some forget gates near 0 and 1) against the recurrence.
    #[test]
    fn matches_the_recurrence_for_any_block_length() -> Result<(), ModelError> {
        let (b, t, d) = (2, 11, 5);
        let mut rng = Rng::new(3);
        let log_f = Tensor::from_vec(
            draw(&mut rng, b * t * d, 1.5, -1.0),
            (b, t, d),
            &Device::Cpu,
        )?
        .minimum(0f32)?;
        let u = Tensor::from_vec(draw(&mut rng, b * t * d, 1.0, 0.0), (b, t, d), &Device::Cpu)?;
        let want = recurrent(&log_f, &u)?.flatten_all()?.to_vec1::<f32>()?;
        for l in [1, 2, 4, 11, 40] {
            let got = block_parallel(&log_f, &u, l)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "L={l}: {g} vs {w}");
            }
        }
        Ok(())
    }
}
