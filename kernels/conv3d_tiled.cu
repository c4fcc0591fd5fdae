// conv3d_tiled.cu -- 3D convolution forward with shared-memory tiles of the input and weights.
//
// Same result as conv3d_direct.cu, organised for speed. A block computes a TILE of outputs:
//   * a TD x TH x TW box of output positions (TW = blockDim.x, TH = blockDim.y, TD = blockDim.z),
//   * for TILED_OUT_CHANNELS consecutive output channels of one group,
//   * for one sample n.
// THREAD MAPPING: thread (tx, ty, tz) of block (bx, by, bz) computes
//   y[n][g*Kg + k0 + j][td0 + tz][th0 + ty][tw0 + tx]   for j = 0 .. TILED_OUT_CHANNELS-1,
// where n = bz, (g, k0) come from by (group, first output channel of the chunk) and
// (td0, th0, tw0) is the corner of spatial tile bx. It keeps the TILED_OUT_CHANNELS sums in
// registers, so every input value read from shared memory is used TILED_OUT_CHANNELS times.
//
// The input channels of the group are processed in stages of c_tile channels. Each stage
//   1. loads, cooperatively, the input box the tile's windows cover (the tile plus its halo:
//      (TD-1)*sD + (kD-1)*dD + 1 planes, and so on) for c_tile channels, with zeros for padding,
//      and the TILED_OUT_CHANNELS x c_tile x kD x kH x kW weights, into shared memory;
//   2. __syncthreads(), so every load has landed before anyone reads;
//   3. accumulates from shared memory only;
//   4. __syncthreads() again, so nobody overwrites the tiles while a slower thread still reads.
// Partial edge tiles: threads whose output position lies outside (OD, OH, OW) still help load
// and still reach every barrier (no early return before __syncthreads); they just do not store.
// Channel counts that are not multiples of c_tile or TILED_OUT_CHANNELS load zeros for the
// missing channels. The host (conv3d/cuda/launch.py) picks the block shape and c_tile so that the
// dynamic shared memory, c_tile*box + TILED_OUT_CHANNELS*c_tile*kD*kH*kW values, fits.

#include "indexing.cuh"  // CONV3D_PARAMS (N, C, D, H, W, K, OD, OH, OW, kD, ..., groups)

#define TILED_OUT_CHANNELS 8  // output channels per block = accumulators per thread

template <typename T>
__device__ void conv3d_tiled(const T* x, const T* w, T* y, CONV3D_PARAMS, int c_tile)
{
    // Dynamic shared memory, declared as double so that it is aligned for both float and double.
    extern __shared__ double shared_raw[];

    const int TW = blockDim.x, TH = blockDim.y, TD = blockDim.z;
    const int Cg = C / groups, Kg = K / groups;

    // Which tile: blockIdx.x -> spatial tile, blockIdx.y -> (group, output-channel chunk),
    // blockIdx.z -> sample n.
    const int tiles_w = (OW + TW - 1) / TW, tiles_h = (OH + TH - 1) / TH;
    const int tw0 = (blockIdx.x % tiles_w) * TW;
    const int th0 = (blockIdx.x / tiles_w % tiles_h) * TH;
    const int td0 = (blockIdx.x / (tiles_w * tiles_h)) * TD;
    const int k_chunks = (Kg + TILED_OUT_CHANNELS - 1) / TILED_OUT_CHANNELS;
    const int g = blockIdx.y / k_chunks;
    const int k0 = (blockIdx.y % k_chunks) * TILED_OUT_CHANNELS;
    const int n = blockIdx.z;
    // Uniform over the block (and never true with the host's grid), so it skips no barrier.
    if (n >= N) return;

    // The input box (tile + halo) one stage loads, per channel.
    const int BD = (TD - 1) * sD + (kD - 1) * dD + 1;
    const int BH = (TH - 1) * sH + (kH - 1) * dH + 1;
    const int BW = (TW - 1) * sW + (kW - 1) * dW + 1;
    const int box = BD * BH * BW;
    const int taps = kD * kH * kW;
    T* s_x = reinterpret_cast<T*>(shared_raw);  // [c_tile][BD][BH][BW]
    T* s_w = s_x + c_tile * box;                 // [TILED_OUT_CHANNELS][c_tile][kD][kH][kW]

    // Input coordinates of the box's corner (may be negative: padding).
    const int d0 = td0 * sD - pD, h0 = th0 * sH - pH, w0 = tw0 * sW - pW;
    const int tid = (threadIdx.z * TH + threadIdx.y) * TW + threadIdx.x;
    const int nthreads = TW * TH * TD;

    T acc[TILED_OUT_CHANNELS];
    for (int j = 0; j < TILED_OUT_CHANNELS; ++j) acc[j] = 0;

    for (int c0 = 0; c0 < Cg; c0 += c_tile) {
        // 1. Load the input box for channels c0 .. c0+c_tile-1 of group g (zeros outside).
        for (int i = tid; i < c_tile * box; i += nthreads) {
            const int cc = i / box, r = i % box;
            const int c = c0 + cc;
            const int d = d0 + r / (BH * BW), h = h0 + r / BW % BH, x_w = w0 + r % BW;
            T v = 0;
            if (c < Cg && d >= 0 && d < D && h >= 0 && h < H && x_w >= 0 && x_w < W)
                v = x[((((long long)n * C + g * Cg + c) * D + d) * H + h) * W + x_w];
            s_x[i] = v;
        }
        // ... and the weights of the chunk's output channels for those input channels.
        for (int i = tid; i < TILED_OUT_CHANNELS * c_tile * taps; i += nthreads) {
            const int j = i / (c_tile * taps), cc = i / taps % c_tile, t = i % taps;
            const int k = k0 + j, c = c0 + cc;
            T v = 0;
            if (k < Kg && c < Cg) v = w[((long long)(g * Kg + k) * Cg + c) * taps + t];
            s_w[i] = v;
        }
        __syncthreads();  // 2. all loads done

        // 3. Accumulate. This thread's window starts at (tz*sD, ty*sH, tx*sW) inside the box.
        for (int cc = 0; cc < c_tile; ++cc) {
            const T* s_xc = s_x + cc * box;
            for (int kd = 0; kd < kD; ++kd) {
                for (int kh = 0; kh < kH; ++kh) {
                    for (int kw = 0; kw < kW; ++kw) {
                        const int bd = threadIdx.z * sD + kd * dD;
                        const int bh = threadIdx.y * sH + kh * dH;
                        const int bw = threadIdx.x * sW + kw * dW;
                        const T v = s_xc[(bd * BH + bh) * BW + bw];
                        const int t = (kd * kH + kh) * kW + kw;
                        for (int j = 0; j < TILED_OUT_CHANNELS; ++j)
                            acc[j] += v * s_w[(j * c_tile + cc) * taps + t];
                    }
                }
            }
        }
        __syncthreads();  // 4. everyone is done reading before the next stage overwrites the tiles
    }

    const int od = td0 + threadIdx.z, oh = th0 + threadIdx.y, ow = tw0 + threadIdx.x;
    if (od >= OD || oh >= OH || ow >= OW) return;  // partial edge tile: nothing to store
    for (int j = 0; j < TILED_OUT_CHANNELS && k0 + j < Kg; ++j) {
        const int k = g * Kg + k0 + j;
        y[((((long long)n * K + k) * OD + od) * OH + oh) * OW + ow] = acc[j];
    }
}

// The entry points the host launches, one per element type.
extern "C" __global__ void conv3d_tiled_f32(const float* x, const float* w, float* y,
                                            CONV3D_PARAMS, int c_tile)
{
    conv3d_tiled(x, w, y, CONV3D_ARGS, c_tile);
}

extern "C" __global__ void conv3d_tiled_f64(const double* x, const double* w, double* y,
                                            CONV3D_PARAMS, int c_tile)
{
    conv3d_tiled(x, w, y, CONV3D_ARGS, c_tile);
}
