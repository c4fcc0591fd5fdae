// conv3d_tiled.cu -- 3D convolution forward with shared-memory tiles of the input and weights.
//
// Same result as conv3d_direct.cu, organised for speed. A block computes a TILE of outputs:
//   * a TD x TH x TW box of output positions (TW = blockDim.x, TH = blockDim.y, TD = blockDim.z),
//   * for TILED_OUT_CHANNELS consecutive output channels of one group,
//   * for one sample n.
// THREAD MAPPING: thread (tx, ty, tz) of block (bx, by, bz) computes
//   y[n][g*Kg + k0 + j][td0 + tz][th0 + ty][tw0 + tx]   for j = 0 .. TILED_OUT_CHANNELS-1,
// where (td0, th0, tw0) is the corner of spatial tile bx, (g, k0) come from by (group, first
// output channel of the chunk) and n = bz. GRID-STRIDE: CUDA caps gridDim.y and gridDim.z at
// 65,535, so the block then takes chunk by + gridDim.y, by + 2*gridDim.y, ... and sample
// bz + gridDim.z, ... until all groups x chunks and all N samples are done (the loops are
// uniform over the block, so every thread reaches every barrier).
// It keeps the TILED_OUT_CHANNELS sums in registers, so every input value read from shared
// memory is used TILED_OUT_CHANNELS times.
//
// The input channels of the group are processed in stages of c_tile channels. Each stage
//   1. loads, cooperatively, the TILED_OUT_CHANNELS x c_tile x kD x kH x kW weights and the
//      input box the tile's windows cover (the tile plus its halo: (TD-1)*sD + (kD-1)*dD + 1
//      planes, and so on) for c_tile channels, with zeros for padding, into shared memory;
//   2. __syncthreads(), so every load has landed before anyone reads;
//   3. accumulates from shared memory only;
//   4. __syncthreads() again, so nobody overwrites the tiles while a slower thread still reads.
// Shared-memory layout, chosen for the inner loop:
//   s_w [c_tile][kD*kH*kW][TILED_OUT_CHANNELS]  first, so each (channel, tap) row of
//       TILED_OUT_CHANNELS weights is contiguous and 16-byte aligned: the inner loop reads it as
//       16-byte vectors (two float4 or four double2: 2 or 4 loads for 8 weights, not 8);
//   s_x [c_tile][BD][BH][BW]                   the input box, read once per tap.
// The loaders walk the box with the block's own 3-D thread index (strides TW, TH, TD) and the
// weights with (j, tap) = (e % 8, e / 8) -- shifts, not divisions; everything else that depends
// only on the launch (tile corner, box size, the thread's window start) is computed once.
// Partial edge tiles: threads whose output position lies outside (OD, OH, OW) still help load
// and still reach every barrier (no early return before __syncthreads); they just do not store.
// Channel counts that are not multiples of c_tile or TILED_OUT_CHANNELS load zeros for the
// missing channels. The host (conv3d/cuda/launch.py) picks the block shape and c_tile so that the
// dynamic shared memory, TILED_OUT_CHANNELS*c_tile*kD*kH*kW + c_tile*box values, fits.

#include "indexing.cuh"  // CONV3D_PARAMS (N, C, D, H, W, K, OD, OH, OW, kD, ..., groups)

#define TILED_OUT_CHANNELS 8  // output channels per block = accumulators per thread (8: 2 float4)
#define TILED_MAX_THREADS 256  // the largest block launch.py uses (TILED_MAX_BLOCK = 8x8x4)

// acc[j] += v * row[j] for the TILED_OUT_CHANNELS weights of one (channel, tap), read as 16-byte
// vectors (row is 16-byte aligned: s_w starts the dynamic shared memory, rows are 32 or 64 B).
__device__ inline void multiply_add_row(float* acc, float v, const float* row)
{
    const float4* row4 = reinterpret_cast<const float4*>(row);
    for (int q = 0; q < TILED_OUT_CHANNELS / 4; ++q) {
        const float4 w4 = row4[q];
        acc[4 * q + 0] += v * w4.x;
        acc[4 * q + 1] += v * w4.y;
        acc[4 * q + 2] += v * w4.z;
        acc[4 * q + 3] += v * w4.w;
    }
}

__device__ inline void multiply_add_row(double* acc, double v, const double* row)
{
    const double2* row2 = reinterpret_cast<const double2*>(row);
    for (int q = 0; q < TILED_OUT_CHANNELS / 2; ++q) {
        const double2 w2 = row2[q];
        acc[2 * q + 0] += v * w2.x;
        acc[2 * q + 1] += v * w2.y;
    }
}

template <typename T>
__device__ void conv3d_tiled(const T* x, const T* w, T* y, CONV3D_PARAMS, int c_tile)
{
    // Dynamic shared memory, 16-byte aligned for the vector loads of multiply_add_row.
    extern __shared__ __align__(16) double shared_raw[];

    const int TW = blockDim.x, TH = blockDim.y, TD = blockDim.z;
    const int Cg = C / groups, Kg = K / groups;

    // Which spatial tile: blockIdx.x (once per block).
    const int tiles_w = (OW + TW - 1) / TW, tiles_h = (OH + TH - 1) / TH;
    const int tw0 = (blockIdx.x % tiles_w) * TW;
    const int th0 = (blockIdx.x / tiles_w % tiles_h) * TH;
    const int td0 = (blockIdx.x / (tiles_w * tiles_h)) * TD;
    const int k_chunks = (Kg + TILED_OUT_CHANNELS - 1) / TILED_OUT_CHANNELS;

    // The input box (tile + halo) one stage loads, per channel.
    const int BD = (TD - 1) * sD + (kD - 1) * dD + 1;
    const int BH = (TH - 1) * sH + (kH - 1) * dH + 1;
    const int BW = (TW - 1) * sW + (kW - 1) * dW + 1;
    const int box = BD * BH * BW;
    const int taps = kD * kH * kW;
    T* s_w = reinterpret_cast<T*>(shared_raw);               // [c_tile][taps][OUT_CHANNELS]
    T* s_x = s_w + c_tile * taps * TILED_OUT_CHANNELS;        // [c_tile][BD][BH][BW]

    // Input coordinates of the box's corner (may be negative: padding), and where this thread's
    // window starts inside the box.
    const int d0 = td0 * sD - pD, h0 = th0 * sH - pH, w0 = tw0 * sW - pW;
    const int window = (threadIdx.z * sD * BH + threadIdx.y * sH) * BW + threadIdx.x * sW;
    const int tid = (threadIdx.z * TH + threadIdx.y) * TW + threadIdx.x;
    const int nthreads = TW * TH * TD;
    const int od = td0 + threadIdx.z, oh = th0 + threadIdx.y, ow = tw0 + threadIdx.x;
    const bool stores = od < OD && oh < OH && ow < OW;  // false in a partial edge tile

    for (int n = blockIdx.z; n < N; n += gridDim.z) {
        for (int chunk = blockIdx.y; chunk < groups * k_chunks; chunk += gridDim.y) {
            const int g = chunk / k_chunks;
            const int k0 = (chunk % k_chunks) * TILED_OUT_CHANNELS;
            const T* x_g = x + ((long long)n * C + g * Cg) * D * H * W;

            T acc[TILED_OUT_CHANNELS];
            for (int j = 0; j < TILED_OUT_CHANNELS; ++j) acc[j] = 0;

            for (int c0 = 0; c0 < Cg; c0 += c_tile) {
                // 1. The weights of the chunk's output channels for channels c0 .. c0+c_tile-1,
                //    as rows of TILED_OUT_CHANNELS (zeros past Kg or Cg).
                for (int cc = 0; cc < c_tile; ++cc) {
                    const int c = c0 + cc;
                    for (int e = tid; e < taps * TILED_OUT_CHANNELS; e += nthreads) {
                        const int j = e % TILED_OUT_CHANNELS, t = e / TILED_OUT_CHANNELS;
                        T v = 0;
                        if (k0 + j < Kg && c < Cg)
                            v = w[((long long)(g * Kg + k0 + j) * Cg + c) * taps + t];
                        s_w[cc * taps * TILED_OUT_CHANNELS + e] = v;
                    }
                }
                // ... and the input box of those channels (zeros outside the volume).
                for (int cc = 0; cc < c_tile; ++cc) {
                    const bool real = c0 + cc < Cg;
                    const T* x_c = x_g + (long long)(real ? c0 + cc : 0) * D * H * W;
                    T* s_xc = s_x + cc * box;
                    for (int bd = threadIdx.z; bd < BD; bd += TD) {
                        const int d = d0 + bd;
                        const bool in_d = real && d >= 0 && d < D;
                        for (int bh = threadIdx.y; bh < BH; bh += TH) {
                            const int h = h0 + bh;
                            const bool in_dh = in_d && h >= 0 && h < H;
                            for (int bw = threadIdx.x; bw < BW; bw += TW) {
                                const int x_w = w0 + bw;
                                T v = 0;
                                if (in_dh && x_w >= 0 && x_w < W) v = x_c[(d * H + h) * W + x_w];
                                s_xc[(bd * BH + bh) * BW + bw] = v;
                            }
                        }
                    }
                }
                __syncthreads();  // 2. all loads done

                // 3. Accumulate from shared memory.
                for (int cc = 0; cc < c_tile; ++cc) {
                    const T* s_xc = s_x + cc * box + window;
                    const T* s_wc = s_w + cc * taps * TILED_OUT_CHANNELS;
                    int t = 0;
                    for (int kd = 0; kd < kD; ++kd)
                        for (int kh = 0; kh < kH; ++kh)
                            for (int kw = 0; kw < kW; ++kw, ++t)
                                multiply_add_row(acc, s_xc[(kd * dD * BH + kh * dH) * BW + kw * dW],
                                                 s_wc + t * TILED_OUT_CHANNELS);
                }
                __syncthreads();  // 4. everyone is done reading before the next stage overwrites
            }

            if (stores) {
                for (int j = 0; j < TILED_OUT_CHANNELS && k0 + j < Kg; ++j) {
                    const int k = g * Kg + k0 + j;
                    y[((((long long)n * K + k) * OD + od) * OH + oh) * OW + ow] = acc[j];
                }
            }
        }
    }
}

// The entry points the host launches, one per element type. __launch_bounds__ promises ptxas that
// no block has more than TILED_MAX_THREADS threads, so it budgets registers for that block size
// and a launch can never fail with "too many resources requested".
extern "C" __global__ void __launch_bounds__(TILED_MAX_THREADS)
conv3d_tiled_f32(const float* x, const float* w, float* y, CONV3D_PARAMS, int c_tile)
{
    conv3d_tiled(x, w, y, CONV3D_ARGS, c_tile);
}

extern "C" __global__ void __launch_bounds__(TILED_MAX_THREADS)
conv3d_tiled_f64(const double* x, const double* w, double* y, CONV3D_PARAMS, int c_tile)
{
    conv3d_tiled(x, w, y, CONV3D_ARGS, c_tile);
}
