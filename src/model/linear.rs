//! Linear layer in Hugging Face's `Conv1D` convention (weight [in, out], y = x · W + b),
//! optionally followed by GELU (the MLP's first layer).
//!
//! On the CPU in f32 with `perf.kernels = "fused"` it is one op with its own backward: the
//! product accumulates onto the bias rows (no separate broadcast pass), GELU runs vectorised
//! over all cores on the product while it is hot, and the backward is the three products
//! (dx = dy · Wᵀ, dW = xᵀ · dy, db = column sums of dy) read in place through strides. The
//! composed path (candle's matmul, broadcast add and gelu, each a separate pass through
//! autograd) is the reference, and the path on other devices and in bf16.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{ModelError, Precision};
use crate::kernels::gemm::{matmul, MatMut, MatRef, Threads, Write};
use crate::kernels::simd::{add_assign, gelu_backward, gelu_forward};
use crate::kernels::{contiguous_f32, CpuF32, Kernels};

/// What follows the affine map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    /// GELU, tanh approximation (GPT-2's `gelu_new`).
    Gelu,
}

#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor, // [in, out]
    bias: Tensor,   // [out]
}

/// Rows per task of the element-wise passes and of the bias-gradient partial sums: fixed, so
/// the summation order (and the result) does not depend on how rayon schedules the tasks.
const ROWS_PER_TASK: usize = 32;

impl Linear {
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self { weight, bias }
    }

    /// `act(x · W + b)` for `x` [N, in] f32 → [N, out] f32.
    pub fn forward(
        &self,
        x: &Tensor,
        act: Activation,
        p: Precision,
        kernels: Kernels,
    ) -> Result<Tensor, ModelError> {
        if kernels == Kernels::Fused && p == Precision::F32 && x.device().is_cpu() {
            let op = LinearOp {
                act,
                pre_activation: Mutex::new(None),
            };
            return Ok(x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?);
        }
        let y = p.matmul(x, &self.weight)?.broadcast_add(&self.bias)?; // [N, out]
        Ok(match act {
            Activation::Identity => y,
            Activation::Gelu => y.gelu()?, // tanh approximation, as GPT-2
        })
    }
}

/// The fused CPU op; with GELU it keeps the pre-activation product for the backward.
struct LinearOp {
    act: Activation,
    pre_activation: Mutex<Option<Vec<f32>>>,
}

/// (N, in, out) of a call, checked against every operand.
fn dims(lx: &Layout, lw: &Layout, lb: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (n, d_in) = lx.shape().dims2()?;
    let (w_in, d_out) = lw.shape().dims2()?;
    if w_in != d_in || lb.shape().dims() != [d_out] {
        candle_core::bail!(
            "linear: x {:?}, weight {:?}, bias {:?} do not chain",
            lx.shape(),
            lw.shape(),
            lb.shape()
        )
    }
    Ok((n, d_in, d_out))
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "linear"
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
        let (n, d_in, d_out) = dims(lx, lw, lb)?;
        let x = contiguous_f32(sx, lx, "linear: x")?;
        let w = contiguous_f32(sw, lw, "linear: weight")?;
        let b = contiguous_f32(sb, lb, "linear: bias")?;
        let mut u = b.repeat(n); // every row starts as the bias
        let (xm, wm) = (MatRef::dense(x, n, d_in), MatRef::dense(w, d_in, d_out));
        let um = MatMut::dense(&mut u, n, d_out);
        matmul(um, xm, wm, Write::Accumulate, Threads::All);
        let y = match self.act {
            Activation::Identity => u,
            Activation::Gelu => {
                let mut y = vec![0f32; u.len()];
                let chunk = ROWS_PER_TASK * d_out;
                y.par_chunks_mut(chunk)
                    .zip(u.par_chunks(chunk))
                    .for_each(|(y, u)| gelu_forward(u, y));
                *self.lock()? = Some(u);
                y
            }
        };
        Ok((CpuStorage::F32(y), Shape::from((n, d_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, d_in) = x.dims2()?;
        let d_out = w.dim(1)?;
        let mut du = CpuF32::of(&dy.contiguous()?, "linear: output gradient")?
            .as_slice()
            .to_vec(); // [N, out]: dL/dy, then dL/du
        if self.act == Activation::Gelu {
            let u = self
                .lock()?
                .take()
                .ok_or_else(|| candle_core::Error::msg("linear: backward already ran"))?;
            let chunk = ROWS_PER_TASK * d_out;
            du.par_chunks_mut(chunk)
                .zip(u.par_chunks(chunk))
                .for_each(|(g, u)| gelu_backward(u, g));
        }
        let (xs, ws) = (
            CpuF32::of(x, "linear: x")?,
            CpuF32::of(w, "linear: weight")?,
        );
        let dum = MatRef::dense(&du, n, d_out);
        let mut dx = vec![0f32; n * d_in];
        let wt = MatRef::dense(ws.as_slice(), d_in, d_out).t();
        matmul(
            MatMut::dense(&mut dx, n, d_in),
            dum,
            wt,
            Write::Overwrite,
            Threads::All,
        );
        let mut dw = vec![0f32; d_in * d_out];
        let xt = MatRef::dense(xs.as_slice(), n, d_in).t();
        matmul(
            MatMut::dense(&mut dw, d_in, d_out),
            xt,
            dum,
            Write::Overwrite,
            Threads::All,
        );
        let db = column_sums(&du, d_out);
        let cpu = &Device::Cpu;
        Ok((
            Some(Tensor::from_vec(dx, (n, d_in), cpu)?),
            Some(Tensor::from_vec(dw, (d_in, d_out), cpu)?),
            Some(Tensor::from_vec(db, d_out, cpu)?),
        ))
    }
}

impl LinearOp {
    fn lock(&self) -> candle_core::Result<std::sync::MutexGuard<'_, Option<Vec<f32>>>> {
        self.pre_activation
            .lock()
            .map_err(|_| candle_core::Error::msg("linear: poisoned lock"))
    }
}

/// Column sums of a row-major [N, cols] matrix: partial sums over fixed blocks of rows in
/// parallel, then added in block order (deterministic for any thread count).
pub(crate) fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = m
        .par_chunks(ROWS_PER_TASK * cols)
        .map(|block| {
            let mut acc = vec![0f32; cols];
            for row in block.chunks_exact(cols) {
                add_assign(&mut acc, row);
            }
            acc
        })
        .collect();
    let mut total = vec![0f32; cols];
    for p in &partials {
        add_assign(&mut total, p);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    use crate::rng::Rng;

    /// Fused vs composed: output and all three gradients, with and without GELU.
    #[test]
    fn fused_matches_composed_in_value_and_gradient() -> Result<(), ModelError> {
        let (n, d_in, d_out) = (70, 24, 40); // 70 rows: three row blocks, the last partial
        let mut rng = Rng::new(5);
        let mut draw = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.normal() as f32).collect() };
        let dev = Device::Cpu;
        let x = Var::from_vec(draw(n * d_in), (n, d_in), &dev)?;
        let w = Var::from_vec(draw(d_in * d_out), (d_in, d_out), &dev)?;
        let b = Var::from_vec(draw(d_out), d_out, &dev)?;
        let weights = Tensor::from_vec(draw(n * d_out), (n, d_out), &dev)?;
        let lin = Linear::new(w.as_tensor().clone(), b.as_tensor().clone());
        for act in [Activation::Identity, Activation::Gelu] {
            let mut runs = Vec::new();
            for kernels in [Kernels::Fused, Kernels::Composed] {
                let y = lin.forward(x.as_tensor(), act, Precision::F32, kernels)?;
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
                    assert!((a - c).abs() <= 2e-5 * scale, "{act:?} {what}: {a} vs {c}");
                }
            }
        }
        Ok(())
    }
}
