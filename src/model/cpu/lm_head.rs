//! The tied lm_head and the per-token cross-entropy on the CPU, in vocabulary chunks.
//!
//! At V = 50257 the logits (412 MB at N = 2048) dwarf every other tensor of a small model, and
//! each pass over them is a trip to memory. Here they are produced [`VOCAB_CHUNK`] vocabulary
//! rows at a time, stored vocabulary-major ([V, N]: a chunk is one contiguous block), and
//! everything that reads a chunk runs right after the product that wrote it, while it is still
//! in cache:
//!
//! - forward: logitsᵀ[c] = wte[c] · hᵀ, then every token's running max and sum of exponentials
//!   over the chunk (the online softmax of Milakov & Gimelshein 2018, sums in f64 across
//!   blocks), vectorised across tokens → log-sum-exp and NLL;
//! - backward: dlogitsᵀ[c] = (softmax - onehot) · dnll in place over the stored chunk, then
//!   dwte[c] = dlogitsᵀ[c] · h and dh += dlogitsᵀ[c]ᵀ · wte[c].
//!
//! So the logits are written once and read once from memory, instead of the six passes of an
//! unchunked product, log-softmax and gradient. Without a backward (evaluation, scoring) the
//! chunks go to a small scratch buffer and nothing of size [V, N] is allocated.

use rayon::prelude::*;

use crate::kernels::gemm::{matmul, MatMut, MatRef, Threads, Write};
use crate::kernels::simd::{add_exp_shifted, exp_shift_scale, max_assign};

/// Vocabulary rows per chunk: 2048 x N floats (16 MB at N = 2048) stay in the last-level cache
/// between the product and the pass that reads them.
pub const VOCAB_CHUNK: usize = 2048;

/// Tokens per rayon task of the element-wise passes (a column block of a chunk).
const TOKENS_PER_TASK: usize = 256;

/// Vocabulary rows summed in f32 before the partial sums are added in f64.
const SUM_BLOCK: usize = 256;

/// Shapes of one call: N rows of width D against a V x D table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadDims {
    pub n: usize,
    pub d: usize,
    pub v: usize,
}

/// Where the forward puts each chunk of logits.
pub enum LogitsStore<'a> {
    /// All of them, [V, N], kept for the backward.
    Keep(&'a mut [f32]),
    /// Only the current chunk, [VOCAB_CHUNK, N] scratch (forward only).
    Discard(&'a mut [f32]),
}

/// Running softmax statistics of one block of tokens.
struct TokenStats<'a> {
    max: &'a mut [f32],
    sum: &'a mut [f64],
    picked: &'a mut [f32],
}

/// Per-row NLL and log-sum-exp of `h` [N, D] against `wte` [V, D]. Targets must be < V.
pub fn forward(
    h: &[f32],
    wte: &[f32],
    targets: &[u32],
    dims: HeadDims,
    mut store: LogitsStore<'_>,
) -> (Vec<f32>, Vec<f32>) {
    let HeadDims { n, d, v } = dims;
    let mut max = vec![f32::NEG_INFINITY; n];
    let mut sum = vec![0f64; n];
    let mut target_logit = vec![0f32; n];
    for c0 in (0..v).step_by(VOCAB_CHUNK) {
        let c1 = (c0 + VOCAB_CHUNK).min(v);
        let chunk = match &mut store {
            LogitsStore::Keep(all) => &mut all[c0 * n..c1 * n],
            LogitsStore::Discard(scratch) => &mut scratch[..(c1 - c0) * n],
        };
        let wte_c = MatRef::dense(&wte[c0 * d..c1 * d], c1 - c0, d);
        let dst = MatMut::dense(chunk, c1 - c0, n);
        matmul(
            dst,
            wte_c,
            MatRef::dense(h, n, d).t(),
            Write::Overwrite,
            Threads::All,
        );
        let chunk = &*chunk;
        max.par_chunks_mut(TOKENS_PER_TASK)
            .zip(sum.par_chunks_mut(TOKENS_PER_TASK))
            .zip(target_logit.par_chunks_mut(TOKENS_PER_TASK))
            .enumerate()
            .for_each(|(task, ((max, sum), picked))| {
                let stats = TokenStats { max, sum, picked };
                let n0 = task * TOKENS_PER_TASK;
                update_stats(chunk, n, n0, c0, &targets[n0..n0 + stats.max.len()], stats);
            });
    }
    let lse: Vec<f32> = max
        .iter()
        .zip(&sum)
        .map(|(&m, &s)| (m as f64 + s.ln()) as f32)
        .collect();
    let nll = lse
        .iter()
        .zip(&target_logit)
        .map(|(&l, &x)| (l as f64 - x as f64) as f32)
        .collect();
    (nll, lse)
}

/// Folds vocabulary rows `c0..` (the chunk, [rows, n]) into the statistics of tokens
/// `n0..n0 + len`.
fn update_stats(chunk: &[f32], n: usize, n0: usize, c0: usize, targets: &[u32], s: TokenStats) {
    let len = s.max.len();
    let rows = chunk.len() / n;
    let column = |j: usize| &chunk[j * n + n0..j * n + n0 + len];
    let mut chunk_max = vec![f32::NEG_INFINITY; len];
    for j in 0..rows {
        max_assign(&mut chunk_max, column(j));
    }
    for (c, &cm) in chunk_max.iter().enumerate() {
        if cm > s.max[c] {
            s.sum[c] *= ((s.max[c] - cm) as f64).exp();
            s.max[c] = cm;
        }
    }
    let mut partial = vec![0f32; len];
    for j0 in (0..rows).step_by(SUM_BLOCK) {
        partial.fill(0.0);
        for j in j0..(j0 + SUM_BLOCK).min(rows) {
            add_exp_shifted(&mut partial, column(j), s.max);
        }
        for (total, &p) in s.sum.iter_mut().zip(&partial) {
            *total += p as f64;
        }
    }
    for (c, &t) in targets.iter().enumerate() {
        if let Some(j) = (t as usize).checked_sub(c0).filter(|&j| j < rows) {
            s.picked[c] = chunk[j * n + n0 + c];
        }
    }
}

/// Gradients given the forward's stored `logits` ([V, N], overwritten with dL/dlogitsᵀ), its
/// `lse` and the upstream gradient `grad_nll` [N]: `dh` [N, D] overwritten, `dwte` [V, D]
/// accumulated.
pub fn backward(
    (h, wte, targets): (&[f32], &[f32], &[u32]),
    dims: HeadDims,
    logits: &mut [f32],
    lse: &[f32],
    grad_nll: &[f32],
    dh: &mut [f32],
    dwte: &mut [f32],
) {
    let HeadDims { n, d, v } = dims;
    dh.fill(0.0);
    for c0 in (0..v).step_by(VOCAB_CHUNK) {
        let c1 = (c0 + VOCAB_CHUNK).min(v);
        let chunk = &mut logits[c0 * n..c1 * n];
        chunk
            .par_chunks_mut(n)
            .for_each(|row| exp_shift_scale(row, lse, grad_nll)); // softmax · dnll
        for (i, &t) in targets.iter().enumerate() {
            if (c0..c1).contains(&(t as usize)) {
                chunk[(t as usize - c0) * n + i] -= grad_nll[i]; // - onehot · dnll
            }
        }
        let g = MatRef::dense(chunk, c1 - c0, n); // [c, N]
        let wte_c = MatRef::dense(&wte[c0 * d..c1 * d], c1 - c0, d);
        let dwte_c = MatMut::dense(&mut dwte[c0 * d..c1 * d], c1 - c0, d);
        matmul(
            dwte_c,
            g,
            MatRef::dense(h, n, d),
            Write::Accumulate,
            Threads::All,
        );
        let dhm = MatMut::dense(dh, n, d);
        matmul(dhm, g.t(), wte_c, Write::Accumulate, Threads::All);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against an f64 evaluation of the same quantities, with V spanning two chunks plus a
    /// partial one and targets in each.
    #[test]
    fn forward_and_backward_match_f64() {
        let dims = HeadDims {
            n: 37,
            d: 8,
            v: 2 * VOCAB_CHUNK + 77,
        };
        let HeadDims { n, d, v } = dims;
        let h: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919) % 200) as f32 / 50.0 - 2.0)
            .collect();
        let wte: Vec<f32> = (0..v * d)
            .map(|i| ((i * 104_729) % 300) as f32 / 150.0 - 1.0)
            .collect();
        let targets: Vec<u32> = (0..n).map(|i| ((i * 1543) % v) as u32).collect();
        let grad: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 / n as f32).collect();
        let mut logits = vec![0f32; v * n];
        let (nll, lse) = forward(&h, &wte, &targets, dims, LogitsStore::Keep(&mut logits));
        let mut scratch = vec![0f32; n * VOCAB_CHUNK];
        let (nll2, _) = forward(&h, &wte, &targets, dims, LogitsStore::Discard(&mut scratch));
        assert_eq!(nll, nll2);
        let (mut dh, mut dwte) = (vec![7f32; n * d], vec![0f32; v * d]);
        let inputs = (&h[..], &wte[..], &targets[..]);
        backward(inputs, dims, &mut logits, &lse, &grad, &mut dh, &mut dwte);
        let mut dh_ref = vec![0f64; n * d];
        let mut dwte_ref = vec![0f64; v * d];
        for i in 0..n {
            let z: Vec<f64> = (0..v)
                .map(|j| {
                    (0..d)
                        .map(|k| h[i * d + k] as f64 * wte[j * d + k] as f64)
                        .sum()
                })
                .collect();
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let l = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            let t = targets[i] as usize;
            assert!(
                (nll[i] as f64 - (l - z[t])).abs() < 1e-5 * (1.0 + l.abs()),
                "row {i}"
            );
            for j in 0..v {
                let g = ((z[j] - l).exp() - (j == t) as u8 as f64) * grad[i] as f64;
                for k in 0..d {
                    dh_ref[i * d + k] += g * wte[j * d + k] as f64;
                    dwte_ref[j * d + k] += g * h[i * d + k] as f64;
                }
            }
        }
        for (got, want) in [(&dh, &dh_ref), (&dwte, &dwte_ref)] {
            let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((*a as f64 - b).abs() < 1e-5 * scale, "{a} vs {b}");
            }
        }
    }
}
