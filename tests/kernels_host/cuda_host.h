// Runs CUDA kernels on the CPU, to check the exact sources in kernels/ on a machine without a
// GPU (tests/kernels_host/main.cpp, run from tests/cuda_kernels_host.rs).
//
// Two launchers:
// - `launch`: every (block, thread) index is one call of the kernel body, in order. For kernels
//   without shared memory, barriers or warp intrinsics (attention.cu, adamw.cu).
// - `launch_threads`: every thread of a block is a std::thread, `__syncthreads` is a barrier
//   of the block and `__shfl_xor_sync` exchanges through a barrier of the warp; blocks run one
//   after another, so `__shared__` variables can be plain statics (cross_entropy.cu).
#pragma once
#include <barrier>
#include <cmath>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

// CUDA's vector type (16-byte aligned there; here only the layout matters).
struct alignas(16) float4 {
    float x, y, z, w;
};

struct HostDim3 {
    unsigned int x = 1, y = 1, z = 1;
};
static thread_local HostDim3 blockIdx, threadIdx;
static HostDim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

template <typename Kernel>
void launch(HostDim3 grid, HostDim3 block, Kernel kernel) {
    gridDim = grid;
    blockDim = block;
    for (unsigned int by = 0; by < grid.y; ++by)
        for (unsigned int bx = 0; bx < grid.x; ++bx)
            for (unsigned int tx = 0; tx < block.x; ++tx) {
                blockIdx = {bx, by, 0};
                threadIdx = {tx, 0, 0};
                kernel();
            }
}

// Synchronisation of the block being run by `launch_threads`.
struct HostBlock {
    std::barrier<> block;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    std::vector<float> lanes;  // one slot per thread for shuffles
    explicit HostBlock(unsigned int threads) : block(threads), lanes(threads) {
        for (unsigned int w = 0; w < threads / 32; ++w)
            warps.push_back(std::make_unique<std::barrier<>>(32));
    }
};
static HostBlock* host_block = nullptr;

inline void __syncthreads() { host_block->block.arrive_and_wait(); }

// The value `x` of lane (this lane ^ offset) of the calling warp; every lane must call it.
inline float __shfl_xor_sync(unsigned int, float x, int offset) {
    const unsigned int t = threadIdx.x, warp = t / 32;
    host_block->lanes[t] = x;
    host_block->warps[warp]->arrive_and_wait();
    const float other = host_block->lanes[warp * 32 + ((t % 32) ^ (unsigned int)offset)];
    host_block->warps[warp]->arrive_and_wait();  // nobody overwrites a slot still being read
    return other;
}

template <typename Kernel>
void launch_threads(HostDim3 grid, HostDim3 block, Kernel kernel) {
    gridDim = grid;
    blockDim = block;
    for (unsigned int by = 0; by < grid.y; ++by)
        for (unsigned int bx = 0; bx < grid.x; ++bx) {
            HostBlock sync(block.x);
            host_block = &sync;
            std::vector<std::thread> threads;
            for (unsigned int tx = 0; tx < block.x; ++tx)
                threads.emplace_back([=] {
                    blockIdx = {bx, by, 0};
                    threadIdx = {tx, 0, 0};
                    kernel();
                });
            for (auto& t : threads) t.join();
            host_block = nullptr;
        }
}
