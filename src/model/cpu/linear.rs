//! Linear layers in Hugging Face's `Conv1D` convention (weight [in, out], y = x · W + b),
//! with the bias, and optionally the residual stream, written into the output rows before the
//! product accumulates onto them: no separate bias or residual pass.

use rayon::prelude::*;

use crate::kernels::gemm::{matmul, MatMut, MatRef, Threads, Write};
use crate::kernels::simd::add_assign;

/// Rows per rayon task of the row-wise passes and of the bias-gradient partial sums (fixed,
/// so the summation order does not depend on scheduling).
const ROWS_PER_TASK: usize = 32;

/// Shape of one layer applied to N rows.
#[derive(Clone, Copy, Debug)]
pub struct LinearDims {
    pub n: usize,
    pub d_in: usize,
    pub d_out: usize,
}

/// `y = resid + x · W + b` (`resid` optional), overwriting `y` [N, out].
pub fn forward(
    x: &[f32],
    (w, b): (&[f32], &[f32]),
    resid: Option<&[f32]>,
    y: &mut [f32],
    dims: LinearDims,
) {
    let LinearDims { n, d_in, d_out } = dims;
    let chunk = ROWS_PER_TASK * d_out;
    match resid {
        Some(r) => y
            .par_chunks_mut(chunk)
            .zip(r.par_chunks(chunk))
            .for_each(|(y, r)| {
                for (y, r) in y.chunks_exact_mut(d_out).zip(r.chunks_exact(d_out)) {
                    y.copy_from_slice(r);
                    add_assign(y, b);
                }
            }),
        None => y.par_chunks_mut(chunk).for_each(|y| {
            for y in y.chunks_exact_mut(d_out) {
                y.copy_from_slice(b);
            }
        }),
    }
    let (xm, wm) = (MatRef::dense(x, n, d_in), MatRef::dense(w, d_in, d_out));
    matmul(
        MatMut::dense(y, n, d_out),
        xm,
        wm,
        Write::Accumulate,
        Threads::All,
    );
}

/// Gradients for `dy` [N, out]: `dx = dy · Wᵀ` (overwritten), `dw += xᵀ · dy`,
/// `db += column sums of dy`.
pub fn backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    (dw, db): (&mut [f32], &mut [f32]),
    dims: LinearDims,
) {
    let LinearDims { n, d_in, d_out } = dims;
    let dym = MatRef::dense(dy, n, d_out);
    let wt = MatRef::dense(w, d_in, d_out).t();
    matmul(
        MatMut::dense(dx, n, d_in),
        dym,
        wt,
        Write::Overwrite,
        Threads::All,
    );
    let xt = MatRef::dense(x, n, d_in).t();
    matmul(
        MatMut::dense(dw, d_in, d_out),
        xt,
        dym,
        Write::Accumulate,
        Threads::All,
    );
    add_column_sums(dy, db);
}

/// `acc += column sums` of the row-major matrix `m` [N, acc.len()]: partial sums over fixed
/// blocks of rows in parallel, then added in block order.
pub fn add_column_sums(m: &[f32], acc: &mut [f32]) {
    let cols = acc.len();
    let partials: Vec<Vec<f32>> = m
        .par_chunks(ROWS_PER_TASK * cols)
        .map(|block| {
            let mut part = vec![0f32; cols];
            for row in block.chunks_exact(cols) {
                add_assign(&mut part, row);
            }
            part
        })
        .collect();
    for p in &partials {
        add_assign(acc, p);
    }
}
