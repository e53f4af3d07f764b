// Fused causal self-attention, forward and backward, for syllabus (CUDA side of
// src/model/attention.rs; launched from src/kernels/cuda.rs).
//
// FlashAttention's algorithm (Dao et al. 2022; Dao 2023): the forward streams over keys with an
// online softmax and keeps only the output and each row's log-sum-exp; the backward recomputes
// the probabilities from q, k and the log-sum-exp. No [B, H, T, T] tensor is ever stored, so
// memory per layer is O(T) instead of O(T^2).
//
// This is the simple form: one thread per query row (forward, dq) or key row (dk, dv), the
// row's vectors in registers, the other side's rows read from global memory. The threads of a
// warp walk the same key (or query) rows in lockstep, so those reads are broadcasts served by
// L1, not per-thread traffic. The arithmetic is f32 FMA on the CUDA cores, not tensor cores:
// measured speed is in docs/perf/gpu.md. No shared memory, no barriers, no warp shuffles: each
// thread is independent, which is also what lets tests/kernels_host run this exact source on
// the CPU (one loop iteration per thread) against a reference.
//
// Buffers (contiguous f32):
//   qkv   [3, BH, T, HD]: q, k, v planes (BH = batch x heads);
//   out   [BH, T, HD + 1]: the output row, then its log-sum-exp (natural log);
//   dod   [BH, T, HD + 1]: the output gradient row, then D = rowsum(dO * O);
//   dqkv  [3, BH, T, HD]: the gradients of q, k and v.
// Grid: (ceil(T / blockDim.x), BH); thread x of block (bx, bh) takes row bx * blockDim.x + x.
// `scale` is the softmax temperature 1 / sqrt(HD).

// Rows of q, k and v are read as float4: one 16-byte load feeds four FMAs (scalar loads made
// the loops load-bound: one load instruction per FMA). The launcher checks the alignment.

// a . row, `a` in registers, `row` a 16-byte aligned row of qkv. Four partial sums: four
// independent FMA chains instead of one HD-long dependent chain.
template <int HD>
__device__ __forceinline__ float dot_row(const float* a, const float* __restrict__ row) {
    const float4* r = reinterpret_cast<const float4*>(row);
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma unroll
    for (int d = 0; d < HD / 4; ++d) {
        const float4 x = r[d];
        s0 += a[4 * d] * x.x;
        s1 += a[4 * d + 1] * x.y;
        s2 += a[4 * d + 2] * x.z;
        s3 += a[4 * d + 3] * x.w;
    }
    return (s0 + s1) + (s2 + s3);
}

// acc += w * row, `row` a 16-byte aligned row of qkv.
template <int HD>
__device__ __forceinline__ void axpy_row(float* acc, float w, const float* __restrict__ row) {
    const float4* r = reinterpret_cast<const float4*>(row);
#pragma unroll
    for (int d = 0; d < HD / 4; ++d) {
        const float4 x = r[d];
        acc[4 * d] += w * x.x;
        acc[4 * d + 1] += w * x.y;
        acc[4 * d + 2] += w * x.z;
        acc[4 * d + 3] += w * x.w;
    }
}

// a . b with no alignment assumed (rows of stride HD + 1).
template <int HD>
__device__ __forceinline__ float dot_plain(const float* a, const float* b) {
    float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
    for (int d = 0; d < HD; d += 2) {
        s0 += a[d] * b[d];
        s1 += a[d + 1] * b[d + 1];
    }
    return s0 + s1;
}

template <int HD>
__device__ void attention_forward(const float* __restrict__ qkv, float* __restrict__ out,
                                  unsigned int t_len, float scale) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= t_len) return;
    const size_t plane = (size_t)gridDim.y * t_len * HD;
    const size_t head = (size_t)blockIdx.y * t_len;
    const float* k = qkv + plane + head * HD;
    const float* v = qkv + 2 * plane + head * HD;
    float q[HD], acc[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) {
        q[d] = qkv[(head + i) * HD + d] * scale;
        acc[d] = 0.0f;
    }
    // Online softmax: m is the running max score, l the running sum of exp(score - m).
    float m = -INFINITY, l = 0.0f;
    for (unsigned int j = 0; j <= i; ++j) {
        const float s = dot_row<HD>(q, k + (size_t)j * HD);
        if (s > m) {
            const float c = expf(m - s);  // 0 on the first key (m = -inf)
            l *= c;
#pragma unroll
            for (int d = 0; d < HD; ++d) acc[d] *= c;
            m = s;
        }
        const float p = expf(s - m);  // NaN scores propagate to l and the output
        l += p;
        axpy_row<HD>(acc, p, v + (size_t)j * HD);
    }
    float* o = out + (head + i) * (HD + 1);
    const float inv_l = 1.0f / l;
#pragma unroll
    for (int d = 0; d < HD; ++d) o[d] = acc[d] * inv_l;
    o[HD] = m + logf(l);
}

// dq_i = scale * sum_{j <= i} p_ij (dp_ij - D_i) k_j, with p_ij = exp(scale q_i.k_j - lse_i)
// and dp_ij = dO_i.v_j.
template <int HD>
__device__ void attention_backward_dq(const float* __restrict__ qkv,
                                      const float* __restrict__ out,
                                      const float* __restrict__ dod, float* __restrict__ dqkv,
                                      unsigned int t_len, float scale) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= t_len) return;
    const size_t plane = (size_t)gridDim.y * t_len * HD;
    const size_t head = (size_t)blockIdx.y * t_len;
    const float* k = qkv + plane + head * HD;
    const float* v = qkv + 2 * plane + head * HD;
    float q[HD], dout[HD], dq[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) {
        q[d] = qkv[(head + i) * HD + d] * scale;
        dout[d] = dod[(head + i) * (HD + 1) + d];
        dq[d] = 0.0f;
    }
    const float lse = out[(head + i) * (HD + 1) + HD];
    const float big_d = dod[(head + i) * (HD + 1) + HD];
    for (unsigned int j = 0; j <= i; ++j) {
        const float* kj = k + (size_t)j * HD;
        const float p = expf(dot_row<HD>(q, kj) - lse);
        const float ds = p * (dot_row<HD>(dout, v + (size_t)j * HD) - big_d);
        axpy_row<HD>(dq, ds, kj);
    }
    float* dqi = dqkv + (head + i) * HD;
#pragma unroll
    for (int d = 0; d < HD; ++d) dqi[d] = dq[d] * scale;
}

// Key-row gradients: dk_j = scale * sum_{i >= j} p_ij (dp_ij - D_i) q_i, or (GRAD_V)
// dv_j = sum_{i >= j} p_ij dO_i. Two instantiations rather than one kernel for both: k_j, v_j,
// dk_j and dv_j together would be four HD-float rows of registers, and spill.
template <int HD, bool GRAD_V>
__device__ void attention_backward_key_rows(const float* __restrict__ qkv,
                                            const float* __restrict__ out,
                                            const float* __restrict__ dod,
                                            float* __restrict__ dqkv, unsigned int t_len,
                                            float scale) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= t_len) return;
    const size_t plane = (size_t)gridDim.y * t_len * HD;
    const size_t head = (size_t)blockIdx.y * t_len;
    const float* q = qkv + head * HD;
    float kj[HD], vj[HD], acc[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) {
        kj[d] = qkv[plane + (head + j) * HD + d] * scale;
        if constexpr (!GRAD_V) vj[d] = qkv[2 * plane + (head + j) * HD + d];
        acc[d] = 0.0f;
    }
    for (unsigned int i = j; i < t_len; ++i) {
        // dO rows have stride HD + 1 (not 16-byte aligned): scalar loads there.
        const float* qi = q + (size_t)i * HD;
        const float* drow = dod + (head + i) * (HD + 1);
        const float p = expf(dot_row<HD>(kj, qi) - out[(head + i) * (HD + 1) + HD]);
        if constexpr (GRAD_V) {
#pragma unroll
            for (int d = 0; d < HD; ++d) acc[d] += p * drow[d];
        } else {
            const float ds = p * (dot_plain<HD>(drow, vj) - drow[HD]);
            axpy_row<HD>(acc, ds, qi);
        }
    }
    float* dst = dqkv + (GRAD_V ? 2 : 1) * plane + (head + j) * HD;
    const float factor = GRAD_V ? 1.0f : scale;
#pragma unroll
    for (int d = 0; d < HD; ++d) dst[d] = acc[d] * factor;
}

// C entry points, one per head dimension (the registers hold HD-float rows, so HD is a
// compile-time constant): 64 for every GPT-2 size, 32 for the tiny preset. Wider heads would
// spill registers in this one-thread-per-row form (ptxas: 1.1 KB of spills per thread at 128),
// so other head dimensions use the composed attention.
#define ATTENTION_ENTRY_POINTS(HD)                                                            \
    extern "C" __global__ void attention_forward_##HD(const float* __restrict__ qkv,         \
                                                      float* __restrict__ out,               \
                                                      unsigned int t_len, float scale) {     \
        attention_forward<HD>(qkv, out, t_len, scale);                                       \
    }                                                                                        \
    extern "C" __global__ void attention_backward_dq_##HD(                                   \
        const float* __restrict__ qkv, const float* __restrict__ out,                        \
        const float* __restrict__ dod, float* __restrict__ dqkv, unsigned int t_len,         \
        float scale) {                                                                       \
        attention_backward_dq<HD>(qkv, out, dod, dqkv, t_len, scale);                        \
    }                                                                                        \
    extern "C" __global__ void attention_backward_dk_##HD(                                   \
        const float* __restrict__ qkv, const float* __restrict__ out,                        \
        const float* __restrict__ dod, float* __restrict__ dqkv, unsigned int t_len,         \
        float scale) {                                                                       \
        attention_backward_key_rows<HD, false>(qkv, out, dod, dqkv, t_len, scale);           \
    }                                                                                        \
    extern "C" __global__ void attention_backward_dv_##HD(                                   \
        const float* __restrict__ qkv, const float* __restrict__ out,                        \
        const float* __restrict__ dod, float* __restrict__ dqkv, unsigned int t_len,         \
        float scale) {                                                                       \
        attention_backward_key_rows<HD, true>(qkv, out, dod, dqkv, t_len, scale);            \
    }

ATTENTION_ENTRY_POINTS(32)
ATTENTION_ENTRY_POINTS(64)
