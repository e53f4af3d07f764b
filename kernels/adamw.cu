// Fused AdamW for syllabus (CUDA side of src/optim/fused.rs; launched from src/kernels/cuda.rs).
//
// Two element-wise passes per parameter tensor instead of candle's ~15 composed ops, each of
// which allocates a full-size temporary: (1) the moments, (2) the parameter update. They are
// two kernels because candle's in-place ops mutate one tensor each: the moments `mv` ([2, n]:
// m then v) in the first, the parameter in the second. Grid-stride loops over n elements.

// m <- beta1 m + (1 - beta1) g', v <- beta2 v + (1 - beta2) g'^2, with g' = grad_scale * g
// (global-norm clipping folded in).
extern "C" __global__ void adamw_moments_f32(float* __restrict__ mv, const float* __restrict__ g,
                                             unsigned long long n, float beta1, float beta2,
                                             float grad_scale) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float gi = g[i] * grad_scale;
        mv[i] = beta1 * mv[i] + (1.0f - beta1) * gi;
        mv[n + i] = beta2 * mv[n + i] + (1.0f - beta2) * gi * gi;
    }
}

// p <- decay p - lr m_hat / (sqrt(v_hat) + eps), m_hat = m / bc1, v_hat = v / bc2; decay is
// 1 - lr * weight_decay for decayed tensors and 1 for the no-decay group.
extern "C" __global__ void adamw_apply_f32(float* __restrict__ p, const float* __restrict__ mv,
                                           unsigned long long n, float lr, float decay,
                                           float inv_bc1, float inv_bc2, float eps) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float m_hat = mv[i] * inv_bc1;
        const float v_hat = mv[n + i] * inv_bc2;
        p[i] = decay * p[i] - lr * m_hat / (sqrtf(v_hat) + eps);
    }
}
