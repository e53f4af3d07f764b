//! `syllabus bench`: training-step throughput on random tokens (the Languini protocol: data
//! loading excluded), after warm-up, with the step split into forward, backward and optimizer.

use candle_core::Tensor;
use serde::Serialize;

use super::PerfError;
use crate::config::Config;
use crate::device::{device_name, matmul_peak_flops_for, select_device, use_tf32_matmuls};
use crate::model::{BuildOptions, LanguageModel, Params, Timing};
use crate::optim::{train_step, AdamW, AdamWParams};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    pub warmup_steps: usize,
    pub timed_steps: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub device: String,
    /// `train.precision`: "f32" or "bf16".
    pub precision: String,
    /// `perf.kernels`: "fused" or "composed".
    pub kernels: String,
    pub threads: usize,
    /// The architecture and its resolved shape.
    pub arch: String,
    pub shape: toml::Table,
    pub vocab_size: usize,
    pub params: usize,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub context: usize,
    pub timed_steps: usize,
    /// Medians over the timed steps, milliseconds.
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
    pub step_ms: f64,
    /// Mean over the timed steps, milliseconds (Languini's reference throughput uses the mean).
    pub step_ms_mean: f64,
    /// Median forward-only pass over the step's sequences (no backward graph), milliseconds:
    /// the rate extra scoring work is charged at.
    pub forward_only_ms: f64,
    /// Training tokens per second from the median step.
    pub tokens_per_s: f64,
    pub flops_per_token: f64,
    pub peak_flops: f64,
    pub mfu: f64,
}

pub fn bench(config: &Config, opts: BenchOptions) -> Result<BenchReport, PerfError> {
    let device = select_device(&config.run.device)?;
    use_tf32_matmuls(&device); // as training does
    let arch = config.arch();
    let ctx = config.context();
    let (micro, accum) = (config.train.batch_size, config.train.grad_accum);
    let mut rng = Rng::new(config.run.seed);
    let params = Params::init(&arch.param_specs(), &mut rng, &device)?;
    let precision = config.train.precision;
    let kernels = config.perf.kernels;
    let gpt = arch.build(&params, BuildOptions::training().with(precision, kernels))?;
    let adamw = AdamWParams::from_config(&config.optim);
    let mut opt = AdamW::new(&params, adamw, kernels)?;
    let vocab = arch.vocab_size() as u64;
    let mut random_batch = || -> candle_core::Result<(Tensor, Tensor)> {
        let ids: Vec<u32> = (0..micro * (ctx + 1))
            .map(|_| rng.below(vocab) as u32)
            .collect();
        let t = Tensor::from_vec(ids, (micro, ctx + 1), &device)?;
        Ok((
            t.narrow(1, 0, ctx)?.contiguous()?,
            t.narrow(1, 1, ctx)?.contiguous()?,
        ))
    };
    // One fixed set of batches: generating tokens is not part of a training step.
    let batches = (0..accum)
        .map(|_| random_batch())
        .collect::<Result<Vec<_>, _>>()?;
    let mut fwd = Vec::new();
    let mut bwd = Vec::new();
    let mut optim = Vec::new();
    let mut total = Vec::new();
    for i in 0..opts.warmup_steps + opts.timed_steps {
        let t0 = std::time::Instant::now();
        let hp = (config.optim.lr, config.optim.grad_clip);
        // Phase times wait for the device: on CUDA the host runs ahead of the GPU, and an
        // unsynchronised timestamp books one phase's work to the next.
        let out = train_step(
            gpt.as_ref(),
            &params,
            &mut opt,
            &batches,
            hp,
            Timing::Synchronized,
        )?;
        device.synchronize()?;
        if i >= opts.warmup_steps {
            fwd.push(out.timings.forward_ms);
            bwd.push(out.timings.backward_ms);
            optim.push(out.timings.optimizer_ms);
            total.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let step_ms_mean = total.iter().sum::<f64>() / total.len().max(1) as f64;
    // The scorer a policy's extra forward passes run on: the inference twin of the model.
    let scorer = arch.build(&params, BuildOptions::inference().with(precision, kernels))?;
    let forward_only_ms = time_forward_only(scorer.as_ref(), &batches, &device, opts)?;
    let step_ms = median(&mut total);
    let tokens_per_s = (micro * accum * ctx) as f64 / (step_ms / 1e3);
    let flops_per_token = arch.flops_per_token(ctx);
    let peak_flops = matmul_peak_flops_for(&device, precision)?;
    Ok(BenchReport {
        device: device_name(&device),
        precision: precision.to_string(),
        kernels: kernels.to_string(),
        threads: candle_core::utils::get_num_threads(),
        arch: arch.name().to_string(),
        shape: arch.resolved(),
        vocab_size: arch.vocab_size(),
        params: arch.num_params(),
        batch_size: micro,
        grad_accum: accum,
        context: ctx,
        timed_steps: opts.timed_steps,
        forward_ms: median(&mut fwd),
        backward_ms: median(&mut bwd),
        optimizer_ms: median(&mut optim),
        step_ms,
        step_ms_mean,
        forward_only_ms,
        tokens_per_s,
        flops_per_token,
        peak_flops,
        mfu: flops_per_token * tokens_per_s / peak_flops,
    })
}

/// Median time of a forward-only pass over all of `batches` on `gpt` (an inference model).
fn time_forward_only(
    gpt: &dyn LanguageModel,
    batches: &[(Tensor, Tensor)],
    device: &candle_core::Device,
    opts: BenchOptions,
) -> Result<f64, PerfError> {
    let mut times = Vec::new();
    for i in 0..opts.warmup_steps.min(2) + opts.timed_steps {
        let t0 = std::time::Instant::now();
        for (x, y) in batches {
            gpt.per_sequence_loss(x, y)?;
        }
        device.synchronize()?;
        if i >= opts.warmup_steps.min(2) {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(median(&mut times))
}

fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
