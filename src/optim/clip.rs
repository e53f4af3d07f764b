//! Global gradient-norm clipping.

use std::collections::BTreeMap;

use candle_core::Tensor;
use rayon::prelude::*;

use super::OptimError;
use crate::kernels::simd::sum_squares;
use crate::kernels::CpuF32;

/// L2 norm over all gradients, summed in name order (a `BTreeMap`) in f64 so the result does
/// not depend on iteration order. CPU tensors are summed from their slices; on a GPU the
/// per-tensor sums stay on the device and only the total is read back: one host
/// synchronisation per call, not one per tensor.
pub fn global_grad_norm(grads: &BTreeMap<String, Tensor>) -> Result<f64, OptimError> {
    let mut host = 0.0f64;
    let mut device: Option<Tensor> = None;
    for g in grads.values() {
        match CpuF32::of(g, "gradient") {
            Ok(data) => host += sum_squares_f64(data.as_slice()),
            Err(_) => {
                let sq = g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?; // [] on its device
                device = Some(match device {
                    Some(total) => (total + sq)?,
                    None => sq,
                });
            }
        }
    }
    if let Some(total) = device {
        host += total.to_scalar::<f64>()?;
    }
    Ok(host.sqrt())
}

/// Elements per partial sum: summed in f32 lanes, partials added in f64 in order (the same
/// result for any thread count).
const SUM_CHUNK: usize = 1 << 14;

/// Σ x² of a CPU slice, in parallel, without a temporary.
fn sum_squares_f64(x: &[f32]) -> f64 {
    let partials: Vec<f32> = x.par_chunks(SUM_CHUNK).map(sum_squares).collect();
    partials.iter().map(|&p| p as f64).sum()
}

/// Factor that scales gradients to norm `max_norm` when they exceed it; 1 when clipping is
/// off (`max_norm == 0`) or not needed.
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn norm_and_scale() {
        let mut g = BTreeMap::new();
        g.insert("a".into(), Tensor::new(&[3f32], &Device::Cpu).unwrap());
        g.insert("b".into(), Tensor::new(&[[4f32]], &Device::Cpu).unwrap());
        let n = global_grad_norm(&g).unwrap();
        assert!((n - 5.0).abs() < 1e-9);
        assert!((clip_scale(n, 1.0) - 0.2).abs() < 1e-6);
        assert_eq!(clip_scale(n, 10.0), 1.0);
        assert_eq!(clip_scale(n, 0.0), 1.0);
    }
}
