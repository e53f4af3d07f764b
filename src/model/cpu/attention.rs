//! Causal attention on the CPU: one head at a time, in blocks of query rows, with matrix
//! products for the four score/value contractions (FlashAttention-2's blocking, Dao 2023,
//! adapted to a CPU cache instead of GPU shared memory).
//!
//! For a block of up to [`QUERY_BLOCK`] queries ending at row `i1`, the scores against keys
//! `0..i1` (the causal limit) fit in the L2 cache (64 x 1024 floats = 256 KB at T = 1024), so
//! the softmax is exact per row with no online rescaling. Heads run in parallel (rayon), each
//! product on its own thread ([`Threads::One`]). Forward keeps only each row's log-sum-exp;
//! the backward recomputes the probabilities from it.
//!
//! q, k and v are read in place through row strides: from a `[B*T, 3D]` projection (the CPU
//! model's layout, [`forward_rows`]) or from a `[3, B, H, T, hd]` stack (the layout of the CUDA
//! kernels' op, `attention_packed.rs`, which calls [`head_forward`] and [`head_backward`]).

use rayon::prelude::*;

use crate::kernels::gemm::{matmul, MatMut, MatRef, Threads, Write};
use crate::kernels::simd::{dot, exp_fast, row_max, simd_kernel, sum_exp};

/// Query rows per block.
pub const QUERY_BLOCK: usize = 64;

/// `t` rows of `hd` floats, row `i` at `data[i * rs..]`.
#[derive(Clone, Copy, Debug)]
pub struct HeadRows<'a> {
    pub data: &'a [f32],
    pub t: usize,
    pub hd: usize,
    pub rs: usize,
}

impl<'a> HeadRows<'a> {
    fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.rs..i * self.rs + self.hd]
    }

    /// Rows `r0..r1` as a matrix.
    fn mat(&self, r0: usize, r1: usize) -> MatRef<'a> {
        MatRef::rows(&self.data[r0 * self.rs..], r1 - r0, self.hd, self.rs)
    }
}

/// One head's inputs.
#[derive(Clone, Copy, Debug)]
pub struct HeadQkv<'a> {
    pub q: HeadRows<'a>,
    pub k: HeadRows<'a>,
    pub v: HeadRows<'a>,
}

simd_kernel! {
    /// Row `x` of scores turned into probabilities in place: x <- softmax(scale * x); returns
    /// the log-sum-exp of the scaled row.
    fn softmax_in_place(x: &mut [f32], scale: f32) -> f32 {
        for v in x.iter_mut() {
            *v *= scale;
        }
        let max = row_max(x);
        let sum = sum_exp(x, max);
        let inv = 1.0 / sum;
        for v in x.iter_mut() {
            *v = exp_fast(*v - max) * inv;
        }
        max + sum.ln()
    }
}

simd_kernel! {
    /// Probabilities recomputed from raw scores and the row's log-sum-exp, in place.
    fn probs_in_place(x: &mut [f32], scale: f32, lse: f32) {
        for v in x.iter_mut() {
            *v = exp_fast(*v * scale - lse);
        }
    }
}

simd_kernel! {
    /// dS = P ∘ (dP - d) · scale, written over dP.
    fn score_grad_in_place(p: &[f32], dp: &mut [f32], d: f32, scale: f32) {
        for (g, &p) in dp.iter_mut().zip(p) {
            *g = p * (*g - d) * scale;
        }
    }
}

/// Raw scores of queries `i0..i1` against keys `0..i1` (the causal prefix), [i1 - i0, i1] in
/// `buf`.
fn block_scores<'b>(x: HeadQkv<'_>, i0: usize, i1: usize, buf: &'b mut Vec<f32>) -> &'b mut [f32] {
    let m = i1 - i0;
    buf.resize(m * i1, 0.0);
    let s = &mut buf[..m * i1];
    let (q, k) = (x.q.mat(i0, i1), x.k.mat(0, i1).t());
    matmul(
        MatMut::dense(s, m, i1),
        q,
        k,
        Write::Overwrite,
        Threads::One,
    );
    s
}

/// Forward for one head: `o` [t, hd] (dense) and `lse` [t]. `scores` is scratch.
pub fn head_forward(x: HeadQkv<'_>, o: &mut [f32], lse: &mut [f32], scores: &mut Vec<f32>) {
    let (t, hd) = (x.q.t, x.q.hd);
    let scale = 1.0 / (hd as f32).sqrt();
    for i0 in (0..t).step_by(QUERY_BLOCK) {
        let i1 = (i0 + QUERY_BLOCK).min(t);
        let (m, kend) = (i1 - i0, i1);
        let s = block_scores(x, i0, i1, scores);
        for (r, row) in s.chunks_exact_mut(kend).enumerate() {
            let valid = i0 + r + 1; // keys 0..=i
            lse[i0 + r] = softmax_in_place(&mut row[..valid], scale);
            row[valid..].fill(0.0);
        }
        let out = MatMut::dense(&mut o[i0 * hd..i1 * hd], m, hd);
        let s = MatRef::dense(&scores[..m * kend], m, kend);
        matmul(out, s, x.v.mat(0, kend), Write::Overwrite, Threads::One);
    }
}

/// Gradients of one head. `d[i]` = rowsum(dO_i ∘ O_i); `lse` from the forward; `dq`, `dk`,
/// `dv` [t, hd] dense, overwritten. `p` and `dp` are scratch.
pub fn head_backward(
    x: HeadQkv<'_>,
    dout: HeadRows<'_>,
    lse: &[f32],
    d: &[f32],
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
    p: &mut Vec<f32>,
    dp: &mut Vec<f32>,
) {
    let (t, hd) = (x.q.t, x.q.hd);
    let scale = 1.0 / (hd as f32).sqrt();
    dk.fill(0.0);
    dv.fill(0.0);
    for i0 in (0..t).step_by(QUERY_BLOCK) {
        let i1 = (i0 + QUERY_BLOCK).min(t);
        let (m, kend) = (i1 - i0, i1);
        dp.resize(m * kend, 0.0);
        let (p, dp) = (block_scores(x, i0, i1, p), &mut dp[..m * kend]);
        for (r, row) in p.chunks_exact_mut(kend).enumerate() {
            let valid = i0 + r + 1;
            probs_in_place(&mut row[..valid], scale, lse[i0 + r]);
            row[valid..].fill(0.0);
        }
        let (pm, dom) = (MatRef::dense(p, m, kend), dout.mat(i0, i1));
        // dV[0..kend] += Pᵀ · dO_blk
        let dv_blk = MatMut::dense(&mut dv[..kend * hd], kend, hd);
        matmul(dv_blk, pm.t(), dom, Write::Accumulate, Threads::One);
        // dP = dO_blk · V[0..kend]ᵀ, then dS in place.
        let dpm = MatMut::dense(dp, m, kend);
        matmul(
            dpm,
            dom,
            x.v.mat(0, kend).t(),
            Write::Overwrite,
            Threads::One,
        );
        for (r, (prow, grow)) in p
            .chunks_exact(kend)
            .zip(dp.chunks_exact_mut(kend))
            .enumerate()
        {
            score_grad_in_place(prow, grow, d[i0 + r], scale);
        }
        let ds = MatRef::dense(dp, m, kend);
        // dQ_blk = dS · K[0..kend]; dK[0..kend] += dSᵀ · Q_blk
        let dq_blk = MatMut::dense(&mut dq[i0 * hd..i1 * hd], m, hd);
        matmul(dq_blk, ds, x.k.mat(0, kend), Write::Overwrite, Threads::One);
        let dk_blk = MatMut::dense(&mut dk[..kend * hd], kend, hd);
        matmul(
            dk_blk,
            ds.t(),
            x.q.mat(i0, i1),
            Write::Accumulate,
            Threads::One,
        );
    }
}

/// (B, T, H, hd) of the model's `[B*T, 3D]` qkv projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowsDims {
    pub b: usize,
    pub t: usize,
    pub heads: usize,
    pub hd: usize,
}

impl RowsDims {
    fn d(&self) -> usize {
        self.heads * self.hd
    }

    /// Head `h` of sequence `bi` in `qkv` [B*T, 3D].
    fn head<'a>(&self, qkv: &'a [f32], bi: usize, h: usize) -> HeadQkv<'a> {
        let (d, rs) = (self.d(), 3 * self.d());
        let base = bi * self.t * rs + h * self.hd;
        let rows = |off: usize| HeadRows {
            data: &qkv[base + off..],
            t: self.t,
            hd: self.hd,
            rs,
        };
        HeadQkv {
            q: rows(0),
            k: rows(d),
            v: rows(2 * d),
        }
    }

    /// Head `h` of sequence `bi` in a [B*T, D] tensor (the output or its gradient).
    fn out_rows<'a>(&self, y: &'a [f32], bi: usize, h: usize) -> HeadRows<'a> {
        HeadRows {
            data: &y[bi * self.t * self.d() + h * self.hd..],
            t: self.t,
            hd: self.hd,
            rs: self.d(),
        }
    }
}

/// Forward on `qkv` [B*T, 3D]: `y` [B*T, D] and `lse` [B*H*T] (overwritten). `heads` is
/// scratch for the per-head outputs.
pub fn forward_rows(
    qkv: &[f32],
    dims: RowsDims,
    y: &mut [f32],
    lse: &mut [f32],
    heads: &mut Vec<f32>,
) {
    let RowsDims { t, hd, .. } = dims;
    heads.resize(y.len(), 0.0); // [B, H, T, hd]
    heads
        .par_chunks_mut(t * hd)
        .zip(lse.par_chunks_mut(t))
        .enumerate()
        .for_each_init(Vec::new, |scores, (bh, (o, lse))| {
            let x = dims.head(qkv, bh / dims.heads, bh % dims.heads);
            head_forward(x, o, lse, scores);
        });
    heads_to_rows(heads, dims, 1, y);
}

/// Gradient of [`forward_rows`]: from `y` and `dy` [B*T, D], `dqkv` [B*T, 3D] (overwritten).
/// `heads` is scratch for the per-head gradients.
pub fn backward_rows(
    (qkv, y, dy, lse): (&[f32], &[f32], &[f32], &[f32]),
    dims: RowsDims,
    dqkv: &mut [f32],
    heads: &mut Vec<f32>,
) {
    let RowsDims { t, hd, .. } = dims;
    let plane = t * hd;
    heads.resize(dqkv.len(), 0.0); // [B, H, 3, T, hd]
    heads
        .par_chunks_mut(3 * plane)
        .zip(lse.par_chunks(t))
        .enumerate()
        .for_each_init(
            || (Vec::new(), Vec::new(), Vec::new()),
            |(p, dp, d), (bh, (g, lse))| {
                let (bi, h) = (bh / dims.heads, bh % dims.heads);
                let (o, dout) = (dims.out_rows(y, bi, h), dims.out_rows(dy, bi, h));
                d.clear();
                d.extend((0..t).map(|i| dot(dout.row(i), o.row(i))));
                let (dq, dkv) = g.split_at_mut(plane);
                let (dk, dv) = dkv.split_at_mut(plane);
                let x = dims.head(qkv, bi, h);
                head_backward(x, dout, lse, d, (dq, dk, dv), p, dp);
            },
        );
    heads_to_rows(heads, dims, 3, dqkv);
}

/// `[B, H, parts, T, hd]` → `[B*T, parts*D]` (row (b, i) holds part 0 of every head, then
/// part 1, ...): the head-major results of the per-head tasks in the model's row layout.
fn heads_to_rows(src: &[f32], dims: RowsDims, parts: usize, out: &mut [f32]) {
    let RowsDims { t, heads, hd, .. } = dims;
    let width = parts * heads * hd;
    out.par_chunks_mut(width)
        .enumerate()
        .for_each(|(row, dst)| {
            let (bi, i) = (row / t, row % t);
            for part in 0..parts {
                for h in 0..heads {
                    let from = (((bi * heads + h) * parts + part) * t + i) * hd;
                    let to = (part * heads + h) * hd;
                    dst[to..to + hd].copy_from_slice(&src[from..from + hd]);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook attention in f64 for one head (dense [t, hd] inputs).
    fn reference(q: &[f32], k: &[f32], v: &[f32], t: usize, hd: usize) -> Vec<f64> {
        let scale = 1.0 / (hd as f64).sqrt();
        let mut o = vec![0f64; t * hd];
        for i in 0..t {
            let s: Vec<f64> = (0..=i)
                .map(|j| {
                    (0..hd)
                        .map(|c| q[i * hd + c] as f64 * k[j * hd + c] as f64)
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            for (j, sj) in s.iter().enumerate() {
                for c in 0..hd {
                    o[i * hd + c] += (sj - m).exp() / z * v[j * hd + c] as f64;
                }
            }
        }
        o
    }

    /// T = 150 spans three query blocks, the last one partial.
    #[test]
    fn head_forward_matches_textbook_attention() {
        let (t, hd) = (150, 12);
        let gen = |seed: usize| -> Vec<f32> {
            (0..t * hd)
                .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
                .collect()
        };
        let (q, k, v) = (gen(1), gen(2), gen(3));
        fn rows(data: &[f32], t: usize, hd: usize) -> HeadRows<'_> {
            HeadRows {
                data,
                t,
                hd,
                rs: hd,
            }
        }
        let x = HeadQkv {
            q: rows(&q, t, hd),
            k: rows(&k, t, hd),
            v: rows(&v, t, hd),
        };
        let (mut o, mut lse) = (vec![0f32; t * hd], vec![0f32; t]);
        head_forward(x, &mut o, &mut lse, &mut Vec::new());
        let want = reference(&q, &k, &v, t, hd);
        for (a, b) in o.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
