//! LayerNorm over the last dimension with a learned gain and bias (Ba et al. 2016).
//!
//! Two implementations with real backward passes. candle-nn's `LayerNorm` (and
//! `ops::layer_norm`) run a fused kernel with no backward: gradients stop there without an
//! error, so neither is used.
//!
//! - Fused (CPU, `perf.kernels = "fused"`): one pass per row forward (statistics, then the
//!   normalised, scaled row), one op in the autograd graph; the backward is llm.c's closed form
//!   (dx = rstd · (dŷ - mean(dŷ) - x̂ · mean(dŷ ∘ x̂)), dŷ = dy ∘ w) with the gain and bias
//!   gradients summed over fixed row blocks, rows spread over all cores.
//! - Composed: differentiable candle ops, the reference path and the path on other devices.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use super::ModelError;
use crate::kernels::simd::{add_assign, simd_kernel, LANES};
use crate::kernels::{contiguous_f32, CpuF32, Kernels};

/// GPT-2's epsilon (`layer_norm_epsilon` in Hugging Face's `GPT2Config`).
pub const LN_EPS: f64 = 1e-5;

/// Rows per rayon task (and per partial sum of the gain and bias gradients).
const ROWS_PER_TASK: usize = 32;

#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor, // [D]
    bias: Tensor,   // [D]
    eps: f64,
}

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self {
            weight,
            bias,
            eps: LN_EPS,
        }
    }

    /// `(x - mean) / sqrt(var + eps) * weight + bias`, statistics over the last dim (biased
    /// variance, as PyTorch). `x` [N, D] f32 (any leading shape on the composed path).
    pub fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor, ModelError> {
        if kernels == Kernels::Fused && x.device().is_cpu() && x.rank() == 2 {
            let op = LayerNormOp {
                eps: self.eps as f32,
                stats: Mutex::new(None),
            };
            return Ok(x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?);
        }
        self.forward_composed(x)
    }

    fn forward_composed(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mean = x.mean_keepdim(D::Minus1)?; // [.., 1]
        let centered = x.broadcast_sub(&mean)?; // [.., D]
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?; // [.., 1]
        let inv_std = (var + self.eps)?.sqrt()?.recip()?; // [.., 1]
        let normed = centered.broadcast_mul(&inv_std)?; // [.., D]
        let out = normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?; // [.., D]
        Ok(out)
    }
}

/// The fused CPU op; keeps each row's (mean, 1/std) for the backward.
struct LayerNormOp {
    eps: f32,
    stats: Mutex<Option<Vec<f32>>>,
}

impl LayerNormOp {
    fn lock(&self) -> candle_core::Result<std::sync::MutexGuard<'_, Option<Vec<f32>>>> {
        self.stats
            .lock()
            .map_err(|_| candle_core::Error::msg("layer norm: poisoned lock"))
    }
}

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
    /// One row's input gradient into `dx`; adds the row's terms to the gain and bias gradients.
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
        let n = x.len() / LANES * LANES;
        for i in (0..n).step_by(LANES) {
            for l in 0..LANES {
                let xhat = (x[i + l] - mean) * rstd;
                let g = dy[i + l] * w[i + l];
                sum_g[l] += g;
                sum_gx[l] += g * xhat;
            }
        }
        let (mut tail_g, mut tail_gx) = (0f32, 0f32);
        for i in n..x.len() {
            let g = dy[i] * w[i];
            tail_g += g;
            tail_gx += g * (x[i] - mean) * rstd;
        }
        let mean_g = (sum_g.iter().sum::<f32>() + tail_g) / d;
        let mean_gx = (sum_gx.iter().sum::<f32>() + tail_gx) / d;
        for i in 0..x.len() {
            let xhat = (x[i] - mean) * rstd;
            dx[i] = (dy[i] * w[i] - mean_g - xhat * mean_gx) * rstd;
            dw[i] += dy[i] * xhat;
            db[i] += dy[i];
        }
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, d) = lx.shape().dims2()?;
        if lw.shape().dims() != [d] || lb.shape().dims() != [d] {
            candle_core::bail!("layer norm: x {:?} with gain {:?}", lx.shape(), lw.shape())
        }
        let x = contiguous_f32(sx, lx, "layer norm: x")?;
        let w = contiguous_f32(sw, lw, "layer norm: weight")?;
        let b = contiguous_f32(sb, lb, "layer norm: bias")?;
        let mut y = vec![0f32; n * d];
        let mut stats = vec![0f32; 2 * n];
        y.par_chunks_mut(ROWS_PER_TASK * d)
            .zip(x.par_chunks(ROWS_PER_TASK * d))
            .zip(stats.par_chunks_mut(ROWS_PER_TASK * 2))
            .for_each(|((y, x), st)| {
                for ((y, x), st) in y
                    .chunks_exact_mut(d)
                    .zip(x.chunks_exact(d))
                    .zip(st.chunks_exact_mut(2))
                {
                    (st[0], st[1]) = normalize_row(x, w, b, y, self.eps);
                }
            });
        *self.lock()? = Some(stats);
        Ok((CpuStorage::F32(y), Shape::from((n, d))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, d) = x.dims2()?;
        let stats = self
            .lock()?
            .take()
            .ok_or_else(|| candle_core::Error::msg("layer norm: backward already ran"))?;
        let dy = dy.contiguous()?;
        let (xs, ws, dys) = (
            CpuF32::of(x, "layer norm: x")?,
            CpuF32::of(w, "layer norm: weight")?,
            CpuF32::of(&dy, "layer norm: output gradient")?,
        );
        let (x, w, dy) = (xs.as_slice(), ws.as_slice(), dys.as_slice());
        let mut dx = vec![0f32; n * d];
        let block = ROWS_PER_TASK * d;
        // Per row block: (dw, db) partial sums, added in block order below.
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(block)
            .zip(x.par_chunks(block).zip(dy.par_chunks(block)))
            .zip(stats.par_chunks(2 * ROWS_PER_TASK))
            .map(|((dx, (x, dy)), st)| {
                let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
                let rows = dx
                    .chunks_exact_mut(d)
                    .zip(x.chunks_exact(d))
                    .zip(dy.chunks_exact(d));
                for (((dx, x), dy), st) in rows.zip(st.chunks_exact(2)) {
                    backward_row(x, dy, w, (st[0], st[1]), dx, &mut dw, &mut db);
                }
                (dw, db)
            })
            .collect();
        let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
        for (pw, pb) in &partials {
            add_assign(&mut dw, pw);
            add_assign(&mut db, pb);
        }
        let cpu = &Device::Cpu;
        Ok((
            Some(Tensor::from_vec(dx, (n, d), cpu)?),
            Some(Tensor::from_vec(dw, d, cpu)?),
            Some(Tensor::from_vec(db, d, cpu)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    use crate::rng::Rng;

    #[test]
    fn matches_reference_and_passes_gradients() -> Result<(), ModelError> {
        let dev = Device::Cpu;
        let x = Var::from_vec(vec![1f32, 2., 4., -1., 0., 3.], (2, 3), &dev)?;
        let w = Var::from_vec(vec![1f32, 2., 0.5], 3, &dev)?;
        let b = Var::from_vec(vec![0f32, 1., -1.], 3, &dev)?;
        let ln = LayerNorm::new(w.as_tensor().clone(), b.as_tensor().clone());
        for kernels in [Kernels::Fused, Kernels::Composed] {
            let y = ln.forward(x.as_tensor(), kernels)?;
            let got = y.to_vec2::<f32>()?;
            // Row 0: mean 7/3, biased var 14/9.
            let (m, s) = (7.0f64 / 3.0, (14.0f64 / 9.0 + 1e-5).sqrt());
            let want0 = [
                (1.0 - m) / s,
                2.0 * (2.0 - m) / s + 1.0,
                0.5 * (4.0 - m) / s - 1.0,
            ];
            for (g, w) in got[0].iter().zip(want0) {
                assert!((*g as f64 - w).abs() < 1e-5, "{kernels}: {g} vs {w}");
            }
            let grads = y.sqr()?.sum_all()?.backward()?;
            for v in [&x, &w, &b] {
                let g = grads
                    .get(v.as_tensor())
                    .expect("every input gets a gradient");
                assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
            }
        }
        Ok(())
    }

    /// 70 rows of 40: three row blocks (the last partial) and a lane tail in every row.
    #[test]
    fn fused_matches_composed_in_value_and_gradient() -> Result<(), ModelError> {
        let (n, d) = (70, 40);
        let mut rng = Rng::new(9);
        let mut draw = |len: usize, s: f64| -> Vec<f32> {
            (0..len).map(|_| (rng.normal() * s) as f32).collect()
        };
        let dev = Device::Cpu;
        let x = Var::from_vec(draw(n * d, 3.0), (n, d), &dev)?;
        let w = Var::from_vec(draw(d, 1.0), d, &dev)?;
        let b = Var::from_vec(draw(d, 1.0), d, &dev)?;
        let weights = Tensor::from_vec(draw(n * d, 1.0), (n, d), &dev)?;
        let ln = LayerNorm::new(w.as_tensor().clone(), b.as_tensor().clone());
        let mut runs = Vec::new();
        for kernels in [Kernels::Fused, Kernels::Composed] {
            let y = ln.forward(x.as_tensor(), kernels)?;
            let grads = (&y * &weights)?.sum_all()?.backward()?;
            let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
            for v in [&x, &w, &b] {
                let g = grads
                    .get(v.as_tensor())
                    .ok_or(ModelError::BadInput("no grad".into()))?;
                out.push(g.flatten_all()?.to_vec1::<f32>()?);
            }
            runs.push(out);
        }
        for (k, what) in ["y", "dx", "dw", "db"].iter().enumerate() {
            let scale = runs[1][k].iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, c) in runs[0][k].iter().zip(&runs[1][k]) {
                assert!((a - c).abs() <= 1e-5 * scale, "{what}: {a} vs {c}");
            }
        }
        Ok(())
    }
}
