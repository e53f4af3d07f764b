// Fused cross-entropy for syllabus (CUDA side of src/model/loss.rs; launched from
// src/kernels/cuda.rs). Logits are contiguous f32 [N, V], targets u32 [N].
//
// One block per row: at V = 50257 a row is 196 KiB, enough work for a block, and N (tokens in
// a micro-batch, thousands) gives every SM many blocks. The forward reads a row twice (max, then
// the exponential sum); the second read is mostly served from L2, which is why this is not an
// online (one-pass) softmax: that would need NaN- and -inf-aware rescaling for little gain.
//
// Numerics match the CPU kernels: max-subtraction, f32 exponentials and sums (the block's tree
// reduction keeps the 50257-term sum's rounding near 1e-7 relative), NaN logits give a NaN
// loss, and a target >= V gives a NaN loss instead of an out-of-bounds read.

#define WARP 32

__device__ __forceinline__ float warp_max(float x) {
    for (int offset = WARP / 2; offset > 0; offset /= 2)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

__device__ __forceinline__ float warp_sum(float x) {
    for (int offset = WARP / 2; offset > 0; offset /= 2)
        x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

// Max (IS_MAX) or sum of `x` over the block; every thread gets the result. blockDim.x must be
// a multiple of 32 (full warps for the shuffles). `scratch` holds one value per warp.
template <bool IS_MAX>
__device__ float block_reduce(float x, float* scratch) {
    const float identity = IS_MAX ? -INFINITY : 0.0f;
    const unsigned lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    x = IS_MAX ? warp_max(x) : warp_sum(x);
    if (lane == 0) scratch[warp] = x;
    __syncthreads();
    if (warp == 0) {
        x = threadIdx.x < blockDim.x / WARP ? scratch[lane] : identity;
        x = IS_MAX ? warp_max(x) : warp_sum(x);
        if (lane == 0) scratch[0] = x;
    }
    __syncthreads();
    x = scratch[0];
    __syncthreads();  // scratch is reused by the caller's next reduction
    return x;
}

// nll[n] = logsumexp(logits[n, :]) - logits[n, targets[n]]. Grid: N blocks.
extern "C" __global__ void token_nll_f32(const float* __restrict__ logits,
                                         const unsigned int* __restrict__ targets,
                                         float* __restrict__ nll, unsigned int v) {
    __shared__ float scratch[WARP];
    const float* row = logits + (size_t)blockIdx.x * v;
    float m = -INFINITY;
    for (unsigned int j = threadIdx.x; j < v; j += blockDim.x) m = fmaxf(m, row[j]);
    m = block_reduce<true>(m, scratch);
    float s = 0.0f;
    for (unsigned int j = threadIdx.x; j < v; j += blockDim.x) s += expf(row[j] - m);
    s = block_reduce<false>(s, scratch);
    if (threadIdx.x == 0) {
        const unsigned int t = targets[blockIdx.x];
        nll[blockIdx.x] = t < v ? m + logf(s) - row[t] : NAN;
    }
}

// In place: logits[n, :] <- (softmax(logits[n, :]) - onehot(targets[n])) * grad[n], the
// gradient of sum_n grad[n] * nll[n]. `stats` is [2, N]: row 0 the forward's nll, row 1 the
// upstream gradient. logsumexp is recovered as nll + logit[target] (no state kept between
// forward and backward), read by thread 0 before any thread overwrites the row. Grid: N blocks.
extern "C" __global__ void token_nll_grad_f32(float* __restrict__ logits,
                                              const unsigned int* __restrict__ targets,
                                              const float* __restrict__ stats, unsigned int n,
                                              unsigned int v) {
    __shared__ float lse;
    float* row = logits + (size_t)blockIdx.x * v;
    const unsigned int t = targets[blockIdx.x];
    if (threadIdx.x == 0) lse = t < v ? stats[blockIdx.x] + row[t] : NAN;
    __syncthreads();
    const float g = stats[n + blockIdx.x];
    const float shift = lse;
    for (unsigned int j = threadIdx.x; j < v; j += blockDim.x)
        row[j] = expf(row[j] - shift) * g - (j == t ? g : 0.0f);
}
