//! `syllabus check-grads`: is training on this device and precision computing the right thing?
//!
//! One forward + backward of the configured model on `run.device` in `train.precision`, from
//! the seeded init and a seeded random batch, compared with the same pass on the CPU in f32
//! through candle's composed ops (the reference the model tests check against finite
//! differences, independent of our fused kernels). Every parameter must get a
//! finite, non-zero gradient whose relative L2 error against the reference is within the
//! tolerance, and the loss must agree too. This is the GPU's gradient-flow test: a kernel or op
//! that drops or garbles a gradient on CUDA only shows up here.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::PerfError;
use crate::config::Config;
use crate::device::{select_device, use_tf32_matmuls};
use crate::kernels::Kernels;
use crate::model::{BuildOptions, ModelError, Params, Precision, Timing};
use crate::rng::Rng;

/// Relative tolerances of the comparison with the CPU f32 reference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    /// Per gradient tensor: ||g - g_ref|| / ||g_ref||.
    pub grad: f64,
    /// |loss - loss_ref| / |loss_ref|.
    pub loss: f64,
}

impl Tolerance {
    /// Defaults for `precision`. bf16 rounds every matmul operand to an 8-bit mantissa (2^-9
    /// relative); measured on the CPU (docs/perf/gpu.md) that moves a small GPT's gradients by
    /// a few 1e-3 relative per tensor and its loss by ~1e-4, so bf16 gets ~10x headroom. f32
    /// on a GPU differs from the CPU by TF32 products (10-bit mantissa) and summation order.
    pub fn default_for(precision: Precision) -> Tolerance {
        match precision {
            Precision::F32 => Tolerance {
                grad: 1e-2,
                loss: 1e-3,
            },
            Precision::Bf16 => Tolerance {
                grad: 5e-2,
                loss: 5e-3,
            },
        }
    }

    /// These tolerances with the given ones replacing them where present.
    pub fn overridden(self, grad: Option<f64>, loss: Option<f64>) -> Tolerance {
        Tolerance {
            grad: grad.unwrap_or(self.grad),
            loss: loss.unwrap_or(self.loss),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ParamGradCheck {
    pub name: String,
    /// L2 norm of the gradient on the checked device.
    pub norm: f64,
    /// L2 norm of the CPU f32 reference gradient.
    pub reference_norm: f64,
    /// ||g - g_ref|| / ||g_ref||.
    pub rel_err: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GradCheckReport {
    pub device: String,
    pub precision: String,
    /// `perf.kernels` of the checked pass (the reference always uses candle's composed ops).
    pub kernels: String,
    pub batch_size: usize,
    pub context: usize,
    pub tolerance: Tolerance,
    pub loss: f64,
    pub reference_loss: f64,
    pub params: Vec<ParamGradCheck>,
    /// Every failed check, one line each; empty when the device passes.
    pub problems: Vec<String>,
}

impl GradCheckReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Largest per-tensor relative error.
    pub fn max_rel_err(&self) -> f64 {
        self.params.iter().map(|p| p.rel_err).fold(0.0, f64::max)
    }
}

/// Runs the check for `config` (model shape, `run.device`, `train.precision`,
/// `train.batch_size`, context, seed). `tolerance` defaults to [`Tolerance::default_for`].
pub fn check_grads(
    config: &Config,
    tolerance: Option<Tolerance>,
) -> Result<GradCheckReport, PerfError> {
    let device = select_device(&config.run.device)?;
    use_tf32_matmuls(&device); // the precision training runs in
    let precision = config.train.precision;
    let tol = tolerance.unwrap_or_else(|| Tolerance::default_for(precision));
    let arch = config.arch();
    let (b, t) = (config.train.batch_size, config.context());
    let mut rng = Rng::new(config.run.seed);
    let specs = arch.param_specs();
    let reference = Params::init(&specs, &mut rng, &Device::Cpu)?;
    // Same values on the checked device (from_tensors copies).
    let checked = Params::from_tensors(&specs, reference.to_tensors(), &device)?;
    let ids: Vec<u32> = (0..b * (t + 1))
        .map(|_| rng.below(arch.vocab_size() as u64) as u32)
        .collect();
    let block = Tensor::from_vec(ids, (b, t + 1), &Device::Cpu)?; // [B, T+1]

    // The reference is candle's composed ops, so it is independent of our kernels.
    let (ref_loss, ref_grads) = loss_and_grads(
        &reference,
        (Precision::F32, Kernels::Composed),
        &block,
        config,
    )?;
    let kernels = config.perf.kernels;
    let (loss, grads) = loss_and_grads(&checked, (precision, kernels), &block, config)?;

    let mut problems = Vec::new();
    let loss_err = (loss - ref_loss).abs() / ref_loss.abs();
    if loss_err.is_nan() || loss_err > tol.loss {
        problems.push(format!(
            "loss {loss} vs CPU f32 {ref_loss}: relative error {loss_err:.3e} > {:.1e}",
            tol.loss
        ));
    }
    let mut params = Vec::new();
    for ((name, g), (_, g_ref)) in grads.into_iter().zip(ref_grads) {
        let Some(g) = g else {
            problems.push(format!("{name}: no gradient"));
            continue;
        };
        let g_ref = g_ref.ok_or_else(|| ModelError::NoGradient(format!("{name} (CPU f32)")))?;
        let row = compare(&name, &g, &g_ref)?;
        if !row.norm.is_finite() {
            problems.push(format!("{name}: non-finite gradient"));
        } else if row.norm == 0.0 {
            problems.push(format!("{name}: all-zero gradient"));
        } else if row.rel_err.is_nan() || row.rel_err > tol.grad {
            problems.push(format!(
                "{name}: gradient relative error {:.3e} > {:.1e}",
                row.rel_err, tol.grad
            ));
        }
        params.push(row);
    }
    Ok(GradCheckReport {
        device: format!("{:?}", device.location()),
        precision: precision.to_string(),
        kernels: kernels.to_string(),
        batch_size: b,
        context: t,
        tolerance: tol,
        loss,
        reference_loss: ref_loss,
        params,
        problems,
    })
}

type NamedGrads = Vec<(String, Option<Tensor>)>;

/// Mean loss of `block` ([B, T+1] token ids) and each parameter's gradient (sorted by name),
/// moved to the CPU as f32, from the training path the model takes with these settings
/// ([`LanguageModel::loss_and_grads`]: e.g. GPT-2's CPU passes, or candle's autograd).
fn loss_and_grads(
    params: &Params,
    (precision, kernels): (Precision, Kernels),
    block: &Tensor,
    config: &Config,
) -> Result<(f64, NamedGrads), PerfError> {
    let device = params.device();
    let t = config.context();
    let block = block.to_device(&device)?;
    let x = block.narrow(1, 0, t)?.contiguous()?; // [B, T]
    let y = block.narrow(1, 1, t)?.contiguous()?; // [B, T]
    let opts = BuildOptions::training().with(precision, kernels);
    let gpt = config.arch().build(params, opts)?;
    let pass = gpt.loss_and_grads(&[(x, y)], Timing::Queued)?;
    let per_seq = &pass.per_sequence;
    let loss = per_seq.iter().map(|&l| l as f64).sum::<f64>() / per_seq.len() as f64;
    let mut grads = pass.grads;
    let named = params
        .iter()
        .map(|(name, _)| {
            let g = grads
                .remove(name)
                .map(|g| g.to_device(&Device::Cpu)?.to_dtype(DType::F32))
                .transpose()?;
            Ok((name.clone(), g))
        })
        .collect::<Result<_, PerfError>>()?;
    Ok((loss, named))
}

fn compare(name: &str, g: &Tensor, g_ref: &Tensor) -> Result<ParamGradCheck, PerfError> {
    let norm = |t: &Tensor| -> Result<f64, PerfError> {
        Ok(t.to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .sqrt()?
            .to_scalar::<f64>()?)
    };
    let reference_norm = norm(g_ref)?;
    let diff = norm(&(g - g_ref)?)?;
    Ok(ParamGradCheck {
        name: name.to_string(),
        norm: norm(g)?,
        reference_norm,
        rel_err: diff / reference_norm.max(f64::MIN_POSITIVE),
    })
}
