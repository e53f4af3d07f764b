//! The tied lm_head and the per-token cross-entropy on the CPU, in vocabulary chunks.
//!
//! At V = 50257 the [N, V] logits (412 MB at N = 2048) dwarf every other tensor of a small
//! model, and each pass over them is a trip to memory. Here the logits are produced
//! [`VOCAB_CHUNK`] columns at a time, and everything that reads a chunk runs right after the
//! product that wrote it, while it is still in cache:
//!
//! - forward: logits[:, c] = h · wte[c]ᵀ, then each row's running max and sum of exponentials
//!   (the online softmax of Milakov & Gimelshein 2018, sums in f64 across chunks) → log-sum-exp
//!   and NLL;
//! - backward: dlogits[:, c] = (softmax - onehot) · dnll in place over the stored logits, then
//!   dwte[c] = dlogits[:, c]ᵀ · h and dh += dlogits[:, c] · wte[c].
//!
//! So the logits are written once and read once from memory, instead of the six passes of an
//! unchunked product, log-softmax and gradient. Without a backward (evaluation, scoring) the
//! chunks go to a small scratch buffer and nothing of size [N, V] is allocated.

use rayon::prelude::*;

use crate::kernels::gemm::{matmul, MatMut, MatRef, Threads, Write};
use crate::kernels::simd::{exp_scale_in_place, row_max, sum_exp};

/// Vocabulary columns per chunk: N x 2048 floats (16 MB at N = 2048) stay in the last-level
/// cache between the product and the pass that reads them.
pub const VOCAB_CHUNK: usize = 2048;

/// Rows per rayon task of the element-wise passes.
const ROWS_PER_TASK: usize = 16;

/// Shapes of one call: N rows of width D against a V x D table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadDims {
    pub n: usize,
    pub d: usize,
    pub v: usize,
}

/// Where the forward puts each chunk of logits.
pub enum LogitsStore<'a> {
    /// All of them, [N, V], kept for the backward.
    Keep(&'a mut [f32]),
    /// Only the current chunk, [N, VOCAB_CHUNK] scratch (forward only).
    Discard(&'a mut [f32]),
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
        let (buf, offset, ld) = match &mut store {
            LogitsStore::Keep(all) => (&mut **all, c0, v),
            LogitsStore::Discard(chunk) => (&mut **chunk, 0, VOCAB_CHUNK),
        };
        let dst = MatMut::rows(&mut buf[offset..], n, c1 - c0, ld);
        let wte_c = MatRef::dense(&wte[c0 * d..c1 * d], c1 - c0, d).t();
        matmul(
            dst,
            MatRef::dense(h, n, d),
            wte_c,
            Write::Overwrite,
            Threads::All,
        );
        let buf = &buf[offset..];
        max.par_chunks_mut(ROWS_PER_TASK)
            .zip(sum.par_chunks_mut(ROWS_PER_TASK))
            .zip(target_logit.par_chunks_mut(ROWS_PER_TASK))
            .enumerate()
            .for_each(|(task, ((max, sum), picked))| {
                for (r, ((m, s), picked)) in max.iter_mut().zip(sum).zip(picked).enumerate() {
                    let row = task * ROWS_PER_TASK + r;
                    let x = &buf[row * ld..row * ld + (c1 - c0)];
                    let chunk_max = row_max(x);
                    if chunk_max > *m {
                        *s *= ((*m - chunk_max) as f64).exp();
                        *m = chunk_max;
                    }
                    *s += sum_exp(x, *m) as f64;
                    let t = targets[row] as usize;
                    if (c0..c1).contains(&t) {
                        *picked = x[t - c0];
                    }
                }
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

/// Gradients (dh [N, D], dwte [V, D]) given the forward's stored `logits` (overwritten with
/// dL/dlogits), its `lse`, and the upstream gradient `grad_nll` [N].
pub fn backward(
    h: &[f32],
    wte: &[f32],
    targets: &[u32],
    dims: HeadDims,
    logits: &mut [f32],
    lse: &[f32],
    grad_nll: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let HeadDims { n, d, v } = dims;
    let mut dh = vec![0f32; n * d];
    let mut dwte = vec![0f32; v * d];
    for c0 in (0..v).step_by(VOCAB_CHUNK) {
        let c1 = (c0 + VOCAB_CHUNK).min(v);
        logits
            .par_chunks_mut(ROWS_PER_TASK * v)
            .enumerate()
            .for_each(|(task, rows)| {
                for (r, row) in rows.chunks_exact_mut(v).enumerate() {
                    let i = task * ROWS_PER_TASK + r;
                    let x = &mut row[c0..c1];
                    exp_scale_in_place(x, lse[i], grad_nll[i]); // softmax · dnll
                    let t = targets[i] as usize;
                    if (c0..c1).contains(&t) {
                        x[t - c0] -= grad_nll[i]; // - onehot · dnll
                    }
                }
            });
        let g = MatRef::rows(&logits[c0..], n, c1 - c0, v); // [N, c]
        let wte_c = &wte[c0 * d..c1 * d];
        let dwte_c = MatMut::dense(&mut dwte[c0 * d..c1 * d], c1 - c0, d);
        let hm = MatRef::dense(h, n, d);
        matmul(dwte_c, g.t(), hm, Write::Overwrite, Threads::All);
        let dhm = MatMut::dense(&mut dh, n, d);
        matmul(
            dhm,
            g,
            MatRef::dense(wte_c, c1 - c0, d),
            Write::Accumulate,
            Threads::All,
        );
    }
    (dh, dwte)
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
        let mut logits = vec![0f32; n * v];
        let (nll, lse) = forward(&h, &wte, &targets, dims, LogitsStore::Keep(&mut logits));
        let mut scratch = vec![0f32; n * VOCAB_CHUNK];
        let (nll2, _) = forward(&h, &wte, &targets, dims, LogitsStore::Discard(&mut scratch));
        assert_eq!(nll, nll2);
        let (dh, dwte) = backward(&h, &wte, &targets, dims, &mut logits, &lse, &grad);
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
