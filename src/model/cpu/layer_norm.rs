//! LayerNorm over rows (Ba et al. 2016; biased variance and eps inside the square root, as
//! PyTorch). Forward keeps each row's (mean, 1/std); the backward is llm.c's closed form,
//! dx += rstd · (g - mean(g) - x̂ · mean(g ∘ x̂)) with g = dy ∘ w, and the gain and bias
//! gradients summed over fixed row blocks then added in block order (deterministic for any
//! thread count).

use rayon::prelude::*;

use crate::kernels::simd::{add_assign, simd_kernel, LANES};

/// Rows per rayon task (and per partial sum of the gain and bias gradients).
const ROWS_PER_TASK: usize = 32;

simd_kernel! {
    /// Normalises one row into `y` and returns its (mean, 1/std).
    fn normalize_row(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], eps: f32) -> (f32, f32) {
        let d = x.len() as f32;
        let mut acc = [0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let tail: f32 = chunks.remainder().iter().sum();
        for c in chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        let mean = (acc.iter().sum::<f32>() + tail) / d;
        let mut acc = [0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
        for c in chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += (v - mean) * (v - mean);
            }
        }
        let var = (acc.iter().sum::<f32>() + tail) / d;
        let rstd = 1.0 / (var + eps).sqrt();
        for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
            *y = (x - mean) * rstd * w + b;
        }
        (mean, rstd)
    }
}

simd_kernel! {
    /// One row: adds its input gradient to `dx` and its terms to the gain and bias gradients.
    fn backward_row(
        x: &[f32],
        dy: &[f32],
        w: &[f32],
        stats: (f32, f32),
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let (mean, rstd) = stats;
        let d = x.len() as f32;
        let (mut sum_g, mut sum_gx) = ([0f32; LANES], [0f32; LANES]);
        let full = x.len() / LANES * LANES;
        for i in (0..full).step_by(LANES) {
            for l in 0..LANES {
                let xhat = (x[i + l] - mean) * rstd;
                let g = dy[i + l] * w[i + l];
                sum_g[l] += g;
                sum_gx[l] += g * xhat;
            }
        }
        let (mut tail_g, mut tail_gx) = (0f32, 0f32);
        for i in full..x.len() {
            let g = dy[i] * w[i];
            tail_g += g;
            tail_gx += g * (x[i] - mean) * rstd;
        }
        let mean_g = (sum_g.iter().sum::<f32>() + tail_g) / d;
        let mean_gx = (sum_gx.iter().sum::<f32>() + tail_gx) / d;
        for i in 0..x.len() {
            let xhat = (x[i] - mean) * rstd;
            dx[i] += (dy[i] * w[i] - mean_g - xhat * mean_gx) * rstd;
            dw[i] += dy[i] * xhat;
            db[i] += dy[i];
        }
    }
}

/// `y = LN(x) · w + b` for `x` [N, D]; `stats` [N, 2] receives each row's (mean, 1/std).
pub fn forward(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], stats: &mut [f32], eps: f32) {
    let d = w.len();
    y.par_chunks_mut(ROWS_PER_TASK * d)
        .zip(x.par_chunks(ROWS_PER_TASK * d))
        .zip(stats.par_chunks_mut(ROWS_PER_TASK * 2))
        .for_each(|((y, x), st)| {
            let rows = y.chunks_exact_mut(d).zip(x.chunks_exact(d));
            for ((y, x), st) in rows.zip(st.chunks_exact_mut(2)) {
                (st[0], st[1]) = normalize_row(x, w, b, y, eps);
            }
        });
}

/// Gradients for `dy` [N, D]: `dx += ∂/∂x`, `dw += ∂/∂w`, `db += ∂/∂b`.
pub fn backward(
    x: &[f32],
    w: &[f32],
    stats: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    (dw, db): (&mut [f32], &mut [f32]),
) {
    let d = w.len();
    let block = ROWS_PER_TASK * d;
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(block)
        .zip(x.par_chunks(block).zip(dy.par_chunks(block)))
        .zip(stats.par_chunks(2 * ROWS_PER_TASK))
        .map(|((dx, (x, dy)), st)| {
            let (mut pw, mut pb) = (vec![0f32; d], vec![0f32; d]);
            let rows = dx
                .chunks_exact_mut(d)
                .zip(x.chunks_exact(d))
                .zip(dy.chunks_exact(d));
            for (((dx, x), dy), st) in rows.zip(st.chunks_exact(2)) {
                backward_row(x, dy, w, (st[0], st[1]), dx, &mut pw, &mut pb);
            }
            (pw, pb)
        })
        .collect();
    for (pw, pb) in &partials {
        add_assign(dw, pw);
        add_assign(db, pb);
    }
}
