//! Launches of our CUDA kernels (`kernels/*.cu`, PTX embedded at build time) on candle's CUDA
//! storage and stream, so they are ordered with candle's own ops. Each launcher checks the
//! layout facts its kernel relies on (contiguous buffers, lengths) before launching; the
//! argument types pushed here must match the kernels' C signatures exactly.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{bail, CudaStorage, Layout, Result};

use super::AttentionDims;

const ADAMW_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/adamw.ptx"));
const ATTENTION_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/attention.ptx"));
const CROSS_ENTROPY_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/cross_entropy.ptx"));

/// Threads per block of the row kernels (one block per row; a multiple of 32).
const ROW_THREADS: u32 = 512;
/// Threads per block of the element-wise kernels.
const ELEMENTWISE_THREADS: u32 = 256;
/// Enough blocks to fill an H100 (132 SMs x 8 resident blocks of 256); the kernels loop.
const ELEMENTWISE_MAX_BLOCKS: u32 = 1056;

/// (start, end) of a contiguous layout, in elements.
fn span(layout: &Layout, what: &str) -> Result<(usize, usize)> {
    match layout.contiguous_offsets() {
        Some(span) => Ok(span),
        None => bail!("{what} must be contiguous"),
    }
}

fn rows_config(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (ROW_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn elementwise_config(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(ELEMENTWISE_THREADS as usize) as u32;
    LaunchConfig {
        grid_dim: (blocks.clamp(1, ELEMENTWISE_MAX_BLOCKS), 1, 1),
        block_dim: (ELEMENTWISE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Logits [N, V] f32 and targets [N] u32 → per-row NLL [N] f32 (`token_nll_f32`).
pub fn token_nll(
    logits: &CudaStorage,
    logits_layout: &Layout,
    targets: &CudaStorage,
    targets_layout: &Layout,
) -> Result<CudaStorage> {
    let (n, v) = logits_layout.shape().dims2()?;
    let (a0, a1) = span(logits_layout, "token-nll: logits")?;
    let (b0, b1) = span(targets_layout, "token-nll: targets")?;
    if b1 - b0 != n {
        bail!("token-nll: {} targets for {n} rows", b1 - b0)
    }
    let dev = logits.device().clone();
    let out = dev.alloc_zeros::<f32>(n)?;
    if n > 0 {
        let func = dev.get_or_load_custom_func(
            "token_nll_f32",
            "syllabus_cross_entropy",
            CROSS_ENTROPY_PTX,
        )?;
        let logits = logits.as_cuda_slice::<f32>()?.slice(a0..a1);
        let targets = targets.as_cuda_slice::<u32>()?.slice(b0..b1);
        let v = v as u32;
        let mut launch = func.builder();
        launch.arg(&logits).arg(&targets).arg(&out).arg(&v);
        // SAFETY: argument types match `token_nll_f32`; every index is bounded by n and v.
        unsafe { launch.launch(rows_config(n)) }.w()?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// In place on logits [N, V]: the softmax gradient scaled by the upstream gradient, with
/// `stats` [2, N] = (forward NLL, upstream gradient) (`token_nll_grad_f32`).
pub fn token_nll_grad(
    logits: &mut CudaStorage,
    logits_layout: &Layout,
    targets: &CudaStorage,
    targets_layout: &Layout,
    stats: &CudaStorage,
    stats_layout: &Layout,
) -> Result<()> {
    let (n, v) = logits_layout.shape().dims2()?;
    let (a0, a1) = span(logits_layout, "token-nll-grad: logits")?;
    let (b0, b1) = span(targets_layout, "token-nll-grad: targets")?;
    let (c0, c1) = span(stats_layout, "token-nll-grad: stats")?;
    if b1 - b0 != n || c1 - c0 != 2 * n {
        bail!(
            "token-nll-grad: {n} rows but {} targets and {} stats",
            b1 - b0,
            c1 - c0
        )
    }
    if n == 0 {
        return Ok(());
    }
    let dev = logits.device().clone();
    let func = dev.get_or_load_custom_func(
        "token_nll_grad_f32",
        "syllabus_cross_entropy",
        CROSS_ENTROPY_PTX,
    )?;
    let targets = targets.as_cuda_slice::<u32>()?.slice(b0..b1);
    let stats = stats.as_cuda_slice::<f32>()?.slice(c0..c1);
    let mut rows = logits.as_cuda_slice_mut::<f32>()?.slice_mut(a0..a1);
    let (n32, v32) = (n as u32, v as u32);
    let mut launch = func.builder();
    launch
        .arg(&mut rows)
        .arg(&targets)
        .arg(&stats)
        .arg(&n32)
        .arg(&v32);
    // SAFETY: argument types match `token_nll_grad_f32`; every index is bounded by n and v.
    unsafe { launch.launch(rows_config(n)) }.w()?;
    Ok(())
}

/// In place on the moments `mv` [2, n] from the gradient `g` [n] (`adamw_moments_f32`).
pub fn adamw_moments(
    mv: &mut CudaStorage,
    mv_layout: &Layout,
    g: &CudaStorage,
    g_layout: &Layout,
    (beta1, beta2, grad_scale): (f32, f32, f32),
) -> Result<()> {
    let (a0, a1) = span(mv_layout, "adamw: moments")?;
    let (b0, b1) = span(g_layout, "adamw: gradient")?;
    let n = b1 - b0;
    if a1 - a0 != 2 * n {
        bail!("adamw: {} moment values for {n} gradient values", a1 - a0)
    }
    let dev = mv.device().clone();
    let func = dev.get_or_load_custom_func("adamw_moments_f32", "syllabus_adamw", ADAMW_PTX)?;
    let g = g.as_cuda_slice::<f32>()?.slice(b0..b1);
    let mut mv = mv.as_cuda_slice_mut::<f32>()?.slice_mut(a0..a1);
    let n64 = n as u64;
    let mut launch = func.builder();
    launch.arg(&mut mv).arg(&g).arg(&n64);
    launch.arg(&beta1).arg(&beta2).arg(&grad_scale);
    // SAFETY: argument types match `adamw_moments_f32`; indices are bounded by n.
    unsafe { launch.launch(elementwise_config(n)) }.w()?;
    Ok(())
}

/// In place on the parameter `p` [n] from the moments `mv` [2, n] (`adamw_apply_f32`).
/// `coefficients` = (lr, decay, 1 / bc1, 1 / bc2, eps).
pub fn adamw_apply(
    p: &mut CudaStorage,
    p_layout: &Layout,
    mv: &CudaStorage,
    mv_layout: &Layout,
    coefficients: [f32; 5],
) -> Result<()> {
    let (a0, a1) = span(p_layout, "adamw: parameter")?;
    let (b0, b1) = span(mv_layout, "adamw: moments")?;
    let n = a1 - a0;
    if b1 - b0 != 2 * n {
        bail!("adamw: {} moment values for {n} parameter values", b1 - b0)
    }
    let dev = p.device().clone();
    let func = dev.get_or_load_custom_func("adamw_apply_f32", "syllabus_adamw", ADAMW_PTX)?;
    let mv = mv.as_cuda_slice::<f32>()?.slice(b0..b1);
    let mut p = p.as_cuda_slice_mut::<f32>()?.slice_mut(a0..a1);
    let n64 = n as u64;
    let [lr, decay, inv_bc1, inv_bc2, eps] = coefficients;
    let mut launch = func.builder();
    launch.arg(&mut p).arg(&mv).arg(&n64);
    launch
        .arg(&lr)
        .arg(&decay)
        .arg(&inv_bc1)
        .arg(&inv_bc2)
        .arg(&eps);
    // SAFETY: argument types match `adamw_apply_f32`; indices are bounded by n.
    unsafe { launch.launch(elementwise_config(n)) }.w()?;
    Ok(())
}

/// Threads per block of the attention kernels (one thread per row).
const ATTENTION_THREADS: u32 = 64;

fn attention_config(dims: AttentionDims) -> LaunchConfig {
    LaunchConfig {
        // The kernels read the number of heads (B·H) from gridDim.y.
        grid_dim: (
            dims.t.div_ceil(ATTENTION_THREADS as usize) as u32,
            dims.heads as u32,
            1,
        ),
        block_dim: (ATTENTION_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The head dimension the kernels are compiled for, after checking the grid fits.
fn attention_head_dim(dims: AttentionDims) -> Result<usize> {
    if dims.heads > 65_535 {
        bail!(
            "fused attention: {} heads (batch x n_head) exceed CUDA's grid limit of 65535",
            dims.heads
        )
    }
    match dims.hd {
        32 | 64 => Ok(dims.hd),
        hd => bail!("fused attention: no CUDA kernel for head_dim {hd} (32 or 64)"),
    }
}

/// The kernels read q, k, v rows as float4: the buffer must start 16-byte aligned (CUDA
/// allocations are 256-byte aligned, so an offset that is a multiple of 4 floats suffices).
fn aligned_qkv_span(layout: &Layout) -> Result<(usize, usize)> {
    let (a0, a1) = span(layout, "fused attention: qkv")?;
    if a0 % 4 != 0 {
        bail!("fused attention: qkv starts at element {a0}, not a multiple of 4 (16 bytes)")
    }
    Ok((a0, a1))
}

/// qkv [3, BH, T, hd] → [BH, T, hd + 1] (output rows and their log-sum-exp).
pub fn attention_forward(
    qkv: &CudaStorage,
    qkv_layout: &Layout,
    dims: AttentionDims,
) -> Result<CudaStorage> {
    let hd = attention_head_dim(dims)?;
    let (a0, a1) = aligned_qkv_span(qkv_layout)?;
    let dev = qkv.device().clone();
    let out = dev.alloc_zeros::<f32>(dims.heads * dims.t * (hd + 1))?;
    let name = format!("attention_forward_{hd}");
    let func = dev.get_or_load_custom_func(&name, "syllabus_attention", ATTENTION_PTX)?;
    let qkv = qkv.as_cuda_slice::<f32>()?.slice(a0..a1);
    let (t, scale) = (dims.t as u32, dims.scale());
    let mut launch = func.builder();
    launch.arg(&qkv).arg(&out).arg(&t).arg(&scale);
    // SAFETY: argument types match `attention_forward_<hd>`; rows are bounded by t, heads by
    // gridDim.y, and the buffers hold 3·BH·T·hd and BH·T·(hd + 1) floats.
    unsafe { launch.launch(attention_config(dims)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// (qkv [3, BH, T, hd], out [BH, T, hd + 1], [dO | D] [BH, T, hd + 1]) → dqkv [3, BH, T, hd].
pub fn attention_backward(
    qkv: &CudaStorage,
    qkv_layout: &Layout,
    out: &CudaStorage,
    out_layout: &Layout,
    dod: &CudaStorage,
    dod_layout: &Layout,
    dims: AttentionDims,
) -> Result<CudaStorage> {
    let hd = attention_head_dim(dims)?;
    let (a0, a1) = aligned_qkv_span(qkv_layout)?;
    let (b0, b1) = span(out_layout, "fused attention: output")?;
    let (c0, c1) = span(dod_layout, "fused attention: output gradient")?;
    let rows = dims.heads * dims.t * (hd + 1);
    if b1 - b0 != rows || c1 - c0 != rows {
        bail!("fused attention backward: buffers do not match {dims:?}")
    }
    let dev = qkv.device().clone();
    let grad = dev.alloc_zeros::<f32>(a1 - a0)?;
    let qkv = qkv.as_cuda_slice::<f32>()?.slice(a0..a1);
    let out = out.as_cuda_slice::<f32>()?.slice(b0..b1);
    let dod = dod.as_cuda_slice::<f32>()?.slice(c0..c1);
    let (t, scale) = (dims.t as u32, dims.scale());
    for part in ["dq", "dk", "dv"] {
        let name = format!("attention_backward_{part}_{hd}");
        let func = dev.get_or_load_custom_func(&name, "syllabus_attention", ATTENTION_PTX)?;
        let mut launch = func.builder();
        launch
            .arg(&qkv)
            .arg(&out)
            .arg(&dod)
            .arg(&grad)
            .arg(&t)
            .arg(&scale);
        // SAFETY: as in `attention_forward`; each kernel writes its own plane of `grad`.
        unsafe { launch.launch(attention_config(dims)) }.w()?;
    }
    Ok(CudaStorage::wrap_cuda_slice(grad, dev))
}
