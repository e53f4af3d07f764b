//! The tied lm_head and the per-token cross-entropy on the CPU, in vocabulary chunks.
//!
//! At V = 50257 the logits (412 MB at N = 2048) dwarf every other tensor of a small model, and
//! each pass over them is a trip to memory. Here every pass over them runs right after the
//! product that wrote them, while they are still in cache:
//!
//! - forward: each thread takes blocks of up to [`TOKENS_PER_TASK`] tokens and walks the
//!   vocabulary in [`VOCAB_CHUNK`] columns: logits = h_block · wte[c]ᵀ (one thread's product,
//!   2 MB, in its caches), then per token the running max m_c over the chunks so far, the exponentials
//!   e = exp(x - m_c) written over the logits, and their sum, rescaled whenever the max grows
//!   (the online softmax of Milakov & Gimelshein 2018, sums in f64) → log-sum-exp and NLL;
//! - backward: softmax = e · exp(m_c - lse), so dlogits = e · f_c - onehot · dnll with
//!   f_c = exp(m_c - lse) · dnll per token, and the per-token factor moves out of the [N, V]
//!   buffer into the products: dwte[c] += E[:, c]ᵀ · (f_c ∘ h), dh += f_c ∘ (E[:, c] · wte[c]);
//!   the onehot terms are N row updates.
//!
//! So the logits are written once and read twice (by the backward's two products), with no
//! element-wise pass over them in the backward at all. Without a backward (evaluation,
//! scoring) each thread's chunk goes to a small scratch buffer and nothing of size [N, V] is
//! allocated.

use rayon::prelude::*;

use crate::kernels::gemm::{matmul, MatMut, MatRef, Threads, Write};
use crate::kernels::simd::{add_scaled, exp_shifted_sum, row_max, sum_exp};

/// Vocabulary columns per chunk: a [`TOKENS_PER_TASK`] x 1024 block of logits is 1 MB.
pub const VOCAB_CHUNK: usize = 1024;

/// Tokens per rayon task of the forward (fewer when N is small, so both threads get work).
const TOKENS_PER_TASK: usize = 512;

/// Rows per rayon task of the backward's [N, D] passes.
const ROWS_PER_TASK: usize = 16;

/// Shapes of one call: N rows of width D against a V x D table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadDims {
    pub n: usize,
    pub d: usize,
    pub v: usize,
}

impl HeadDims {
    /// Column ranges of the vocabulary chunks.
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.v)
            .step_by(VOCAB_CHUNK)
            .map(|c0| (c0, (c0 + VOCAB_CHUNK).min(self.v)))
    }

    fn n_chunks(&self) -> usize {
        self.v.div_ceil(VOCAB_CHUNK)
    }

    /// Tokens per forward task: at most [`TOKENS_PER_TASK`], and at least two tasks per
    /// thread when N allows.
    fn tokens_per_task(&self) -> usize {
        let threads = rayon::current_num_threads().max(1);
        (self.n.div_ceil(2 * threads)).clamp(16, TOKENS_PER_TASK)
    }
}

/// Where the forward puts the logits.
pub enum LogitsStore<'a> {
    /// All of them, [N, V], as exponentials for the backward.
    Keep(&'a mut [f32]),
    /// Nowhere: each task works in its own one-chunk scratch (forward only).
    Discard,
}

/// What the backward needs besides the stored exponentials.
#[derive(Clone, Debug, Default)]
pub struct SoftmaxStats {
    /// Each token's log-sum-exp over the vocabulary, [N].
    pub lse: Vec<f32>,
    /// The shift of each chunk's stored exponentials, [N, chunks].
    pub shifts: Vec<f32>,
}

/// One token's running statistics.
#[derive(Clone, Copy, Debug)]
struct Running {
    max: f32,
    sum: f64,
    target_logit: f32,
}

/// Per-row NLL of `h` [N, D] against `wte` [V, D], and the statistics the backward needs.
/// Targets must be < V.
pub fn forward(
    h: &[f32],
    wte: &[f32],
    targets: &[u32],
    dims: HeadDims,
    store: LogitsStore<'_>,
) -> (Vec<f32>, SoftmaxStats) {
    let HeadDims { n, d, v } = dims;
    let tpt = dims.tokens_per_task();
    let chunks = dims.n_chunks();
    let mut nll = vec![0f32; n];
    let mut lse = vec![0f32; n];
    let mut shifts = vec![0f32; n * chunks];
    let outputs = nll
        .par_chunks_mut(tpt)
        .zip(lse.par_chunks_mut(tpt))
        .zip(shifts.par_chunks_mut(tpt * chunks));
    let block = |task: usize, logits: &mut [f32], ld: usize, keep: bool, out: Outputs<'_>| {
        let n0 = task * tpt;
        let rows = out.0.len();
        let x = TokenBlock {
            h: &h[n0 * d..(n0 + rows) * d],
            targets: &targets[n0..n0 + rows],
        };
        forward_block(x, wte, dims, (logits, ld, keep), out);
    };
    match store {
        LogitsStore::Keep(all) => outputs
            .zip(all[..n * v].par_chunks_mut(tpt * v))
            .enumerate()
            .for_each(|(task, (((nll, lse), sh), logits))| {
                block(task, logits, v, true, (nll, lse, sh));
            }),
        LogitsStore::Discard => outputs.enumerate().for_each_init(
            || vec![0f32; tpt * VOCAB_CHUNK],
            |scratch, (task, ((nll, lse), sh))| {
                block(task, scratch, VOCAB_CHUNK, false, (nll, lse, sh));
            },
        ),
    }
    (nll, SoftmaxStats { lse, shifts })
}

/// A block of tokens: their final hidden states and targets.
struct TokenBlock<'a> {
    h: &'a [f32],
    targets: &'a [u32],
}

/// A block's outputs: NLL, log-sum-exp, and the chunk shifts ([rows, chunks]).
type Outputs<'a> = (&'a mut [f32], &'a mut [f32], &'a mut [f32]);

/// The forward for one block of tokens, on one thread. `logits` holds the block's rows with
/// stride `ld` (all V columns when `keep`, one chunk's otherwise).
fn forward_block(
    x: TokenBlock<'_>,
    wte: &[f32],
    dims: HeadDims,
    (logits, ld, keep): (&mut [f32], usize, bool),
    (nll, lse, shifts): Outputs<'_>,
) {
    let (d, rows, chunks) = (dims.d, x.targets.len(), dims.n_chunks());
    let start = Running {
        max: f32::NEG_INFINITY,
        sum: 0.0,
        target_logit: 0.0,
    };
    let mut running = vec![start; rows];
    for (k, (c0, c1)) in dims.chunks().enumerate() {
        let col = if keep { c0 } else { 0 };
        let dst = MatMut::rows(&mut logits[col..], rows, c1 - c0, ld);
        let wte_c = MatRef::dense(&wte[c0 * d..c1 * d], c1 - c0, d).t();
        matmul(
            dst,
            MatRef::dense(x.h, rows, d),
            wte_c,
            Write::Overwrite,
            Threads::One,
        );
        for (i, r) in running.iter_mut().enumerate() {
            let row = &mut logits[i * ld + col..i * ld + col + (c1 - c0)];
            let t = x.targets[i] as usize;
            if (c0..c1).contains(&t) {
                r.target_logit = row[t - c0];
            }
            fold_chunk(row, r, keep);
            shifts[i * chunks + k] = r.max;
        }
    }
    for (i, r) in running.iter().enumerate() {
        let l = r.max as f64 + r.sum.ln();
        lse[i] = l as f32;
        nll[i] = (l - r.target_logit as f64) as f32;
    }
}

/// Folds one token's logits `x` of a chunk into its running statistics; with `keep`, replaces
/// them by exp(x - m), m the updated running max.
fn fold_chunk(x: &mut [f32], r: &mut Running, keep: bool) {
    let chunk_max = row_max(x);
    if chunk_max > r.max {
        r.sum *= ((r.max - chunk_max) as f64).exp();
        r.max = chunk_max;
    }
    r.sum += match keep {
        true => exp_shifted_sum(x, r.max),
        false => sum_exp(x, r.max),
    } as f64;
}

/// Gradients from the forward's stored exponentials `exps` ([N, V]) and `stats`, with the
/// upstream gradient `grad_nll` [N]: `dh` [N, D] overwritten, `dwte` [V, D] accumulated.
pub fn backward(
    (h, wte, targets): (&[f32], &[f32], &[u32]),
    dims: HeadDims,
    exps: &[f32],
    stats: &SoftmaxStats,
    grad_nll: &[f32],
    dh: &mut [f32],
    dwte: &mut [f32],
) {
    let HeadDims { n, d, v } = dims;
    dh.fill(0.0);
    let (mut scaled_h, mut part) = (vec![0f32; n * d], vec![0f32; n * d]);
    let mut factor = vec![0f32; n];
    let chunks = dims.n_chunks();
    for (k, (c0, c1)) in dims.chunks().enumerate() {
        for (i, f) in factor.iter_mut().enumerate() {
            let shift = stats.shifts[i * chunks + k];
            *f = ((shift - stats.lse[i]) as f64).exp() as f32 * grad_nll[i];
        }
        scale_rows(h, &factor, &mut scaled_h, d, false);
        let e = MatRef::rows(&exps[c0..], n, c1 - c0, v); // [N, c]
        let wte_c = MatRef::dense(&wte[c0 * d..c1 * d], c1 - c0, d);
        let dwte_c = MatMut::dense(&mut dwte[c0 * d..c1 * d], c1 - c0, d);
        let sh = MatRef::dense(&scaled_h, n, d);
        matmul(dwte_c, e.t(), sh, Write::Accumulate, Threads::All);
        let pm = MatMut::dense(&mut part, n, d);
        matmul(pm, e, wte_c, Write::Overwrite, Threads::All);
        scale_rows(&part, &factor, dh, d, true);
    }
    // The onehot terms: dlogits[i, t_i] -= dnll_i (sequential over i for dwte: ids repeat).
    for (i, &t) in targets.iter().enumerate() {
        let t = t as usize;
        add_scaled(
            &mut dwte[t * d..(t + 1) * d],
            &h[i * d..(i + 1) * d],
            -grad_nll[i],
        );
    }
    dh.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
        let t = targets[i] as usize;
        add_scaled(row, &wte[t * d..(t + 1) * d], -grad_nll[i]);
    });
}

/// `out[i] (=|+=) x[i] · factor[i]` for the rows of `x` [N, d].
fn scale_rows(x: &[f32], factor: &[f32], out: &mut [f32], d: usize, accumulate: bool) {
    out.par_chunks_mut(ROWS_PER_TASK * d)
        .zip(x.par_chunks(ROWS_PER_TASK * d))
        .zip(factor.par_chunks(ROWS_PER_TASK))
        .for_each(|((out, x), f)| {
            for ((o, x), &f) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(f) {
                if !accumulate {
                    o.fill(0.0);
                }
                add_scaled(o, x, f);
            }
        });
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
        let (nll, stats) = forward(&h, &wte, &targets, dims, LogitsStore::Keep(&mut logits));
        let (nll2, _) = forward(&h, &wte, &targets, dims, LogitsStore::Discard);
        assert_eq!(nll, nll2);
        let (mut dh, mut dwte) = (vec![7f32; n * d], vec![0f32; v * d]);
        let inputs = (&h[..], &wte[..], &targets[..]);
        backward(inputs, dims, &logits, &stats, &grad, &mut dh, &mut dwte);
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
