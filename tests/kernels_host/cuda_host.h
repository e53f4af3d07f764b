// Runs CUDA kernels written without shared memory, barriers or warp intrinsics on the CPU:
// every (block, thread) index is one call of the kernel body, in order. Used by
// tests/kernels_host/main.cpp (run from tests/cuda_kernels_host.rs) to check the exact
// sources in kernels/ on a machine without a GPU. Kernels that synchronise threads
// (kernels/cross_entropy.cu) cannot run this way.
#pragma once
#include <cmath>
#include <cstddef>

// CUDA's vector type (16-byte aligned there; here only the layout matters).
struct alignas(16) float4 {
    float x, y, z, w;
};

struct HostDim3 {
    unsigned int x = 1, y = 1, z = 1;
};
static HostDim3 blockIdx, threadIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict

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
