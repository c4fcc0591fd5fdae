// conv3d_implicit_gemm_tc.cu -- 3D convolution forward as an implicit GEMM on tensor cores (WMMA).
//
// THE GEMM. For one group g, the convolution is a matrix product
//     Y_g[k][p] = sum_r  W_g[k][r] * X_col[r][p]
//   k = output channel of the group (Kg rows),
//   r = c * taps + (kd * kH + kh) * kW + kw, an input channel and kernel tap (R = Cg * taps),
//   p = ((n * OD + od) * OH + oh) * OW + ow, an output position of the whole batch (N * OD*OH*OW).
// W_g is the weight tensor as it lies in memory (row k of W_g is w[g*Kg + k][...], contiguous).
// X_col is the im2col matrix, but it is VIRTUAL: no workspace holds it. Each stage gathers the
// 16 x 32 piece it needs straight from x into shared memory (zeros for padding), computing
//     X_col[r][p] = x[n][g*Cg + c][od*sD - pD + kd*dD][oh*sH - pH + kh*dH][ow*sW - pW + kw*dW].
//
// THE TILES. A block of TC_THREADS = 128 threads (4 warps) computes a TC_TILE_M x TC_TILE_N
// (32 x 32) tile of Y_g: output channels k0 .. k0+31 (blockIdx.y: group and channel tile) by
// positions p0 .. p0+31 (p0 = blockIdx.x * 32). Each warp owns one 16 x 16 accumulator fragment:
//
//                  positions p0 .. p0+15    positions p0+16 .. p0+31
//                +------------------------+------------------------+
//   k0 .. k0+15  | warp 0 (threads 0-31)  | warp 1 (threads 32-63) |
//                +------------------------+------------------------+
//  k0+16 .. +31  | warp 2 (threads 64-95) | warp 3 (threads 96-127)|
//                +------------------------+------------------------+
//
// The reduction over r runs in stages of TC_TILE_K = 16. Each stage:
//   1. all 128 threads gather, converted to the input precision,
//        s_a [32][16] = W_g[k0 .. k0+31][r0 .. r0+15]   thread t: row t / 4, columns 4*(t % 4) ..
//        s_b [16][32] = X_col[r0 .. r0+15][p0 .. p0+31] thread t: column t % 32, rows t / 32,
//                                                       t/32 + 4, t/32 + 8, t/32 + 12
//      (a thread's column p is fixed for the whole block, so its (n, od, oh, ow) is computed once);
//   2. __syncthreads();
//   3. each warp loads its 16-row band of s_a and 16-column band of s_b as WMMA fragments and
//      accumulates: 2 mma_sync of m16n16k8 (tf32) or 1 of m16n16k16 (bf16, fp16);
//   4. __syncthreads(), before the next stage overwrites s_a and s_b.
// Then each warp stores its accumulator into s_c [32][32] (float), and thread t writes column
// t % 32 of s_c, rows t / 32, t/32 + 4, ..., to y[n][g*Kg + k0 + row][od][oh][ow].
// WHICH OUTPUT ELEMENT EACH THREAD COMPUTES: none alone; the 32 lanes of warp w together compute
// the 16 x 16 outputs of its quadrant (the lane-to-element map inside a fragment is the
// hardware's, opaque); thread t STORES the 8 outputs of column p0 + t % 32 named above.
//
// PRECISION (the template parameter P, one entry point each):
//   *_tf32_f32  float32 in, rounded to tf32 (10-bit mantissa) by __float_to_tf32, m16n16k8;
//   *_bf16_f32  float32 in, rounded to bfloat16 (7-bit mantissa, float's range), m16n16k16;
//   *_fp16_f32  float32 in, rounded to IEEE half (10-bit mantissa, |v| <= 65504), m16n16k16.
// All accumulate in float32 and write float32. tf32 and bf16 need sm_80 (Ampere) or newer, so
// they only exist when compiling for it; fp16 WMMA runs from sm_70. There is no float64 entry:
// tensor cores have no tf32-like mode for double (only exact m8n8k4 DMMA, not used here); the
// provider runs float64 on the exact 'tiled' kernel instead.
//
// EDGES AND LIMITS. Channels past Kg, reduction rows past R and positions past N*OD*OH*OW load
// zeros and are not stored; every thread still reaches every barrier and every warp collective
// (the loops are uniform over the block). Every global read and write is bounds-checked.
// GRID-STRIDE: gridDim.y is capped at 65,535 (CUDA's limit); a block then also takes channel
// tiles blockIdx.y + gridDim.y, ... . gridDim.x (position tiles) may reach 2^31 - 1. The host
// (conv3d/cuda/launch.py) launches blocks of exactly TC_THREADS x 1 x 1 threads.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "indexing.cuh"  // CONV3D_PARAMS (N, C, D, H, W, K, OD, OH, OW, kD, ..., groups)

using namespace nvcuda;

#define TC_TILE_M 32   // output channels per block tile
#define TC_TILE_N 32   // output positions per block tile
#define TC_TILE_K 16   // reduction rows per stage
#define TC_WARPS_N 2   // warps across a tile's positions (and TC_TILE_M / WMMA_M down)
#define TC_THREADS 128 // threads per block: 4 warps, one 16 x 16 accumulator each
#define WMMA_M 16      // rows (output channels) of one accumulator fragment
#define WMMA_N 16      // columns (output positions) of one accumulator fragment
#define WARP_LANES 32  // threads per warp (warpSize, as a constant)

// The gathers' thread layout (see the header): s_a row-wise, s_b column-wise.
#define A_THREADS_PER_ROW (TC_THREADS / TC_TILE_M)       // 4 threads per row of s_a
#define A_PER_THREAD (TC_TILE_K / A_THREADS_PER_ROW)     // 4 consecutive weights each
#define ROW_STEP (TC_THREADS / TC_TILE_N)                // 4: rows between a thread's s_b rows

static_assert((TC_TILE_M / WMMA_M) * (TC_TILE_N / WMMA_N) * WARP_LANES == TC_THREADS,
              "one warp per 16 x 16 accumulator of the tile");
static_assert(TC_TILE_N / WMMA_N == TC_WARPS_N, "TC_WARPS_N warps across the positions");
static_assert(A_PER_THREAD * A_THREADS_PER_ROW == TC_TILE_K, "the s_a gather covers a row");

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define TC_HAS_SM80_TYPES 1  // tf32 and bf16 WMMA (and the emulator, which has every type)
#endif

// The input precisions: the type staged in shared memory, the WMMA fragment type, its K, and the
// rounding from float32.
struct Fp16 {
    typedef __half staged;
    typedef __half fragment_type;
    static const int wmma_k = 16;
    static __device__ __half convert(float v) { return __float2half_rn(v); }
};

#ifdef TC_HAS_SM80_TYPES
struct Bf16 {
    typedef __nv_bfloat16 staged;
    typedef __nv_bfloat16 fragment_type;
    static const int wmma_k = 16;
    static __device__ __nv_bfloat16 convert(float v) { return __float2bfloat16_rn(v); }
};

struct Tf32 {
    typedef float staged;  // a tf32 value is a float whose low 13 mantissa bits are zero
    typedef wmma::precision::tf32 fragment_type;
    static const int wmma_k = 8;
    static __device__ float convert(float v) { return wmma::__float_to_tf32(v); }
};
#endif

template <typename P>
__device__ void conv3d_implicit_gemm_tc(const float* x, const float* w, float* y, CONV3D_PARAMS)
{
    typedef typename P::staged T;
    // 32-byte aligned, as load_matrix_sync/store_matrix_sync require of every fragment pointer.
    __shared__ __align__(32) T s_a[TC_TILE_M * TC_TILE_K];      // [m][r]: weights
    __shared__ __align__(32) T s_b[TC_TILE_K * TC_TILE_N];      // [r][p]: virtual columns
    __shared__ __align__(32) float s_c[TC_TILE_M * TC_TILE_N];  // [m][p]: the block's outputs

    const int Cg = C / groups, Kg = K / groups;
    const int taps = kD * kH * kW, R = Cg * taps;
    const int spatial = OD * OH * OW;
    const int positions = N * spatial;
    const int m_tiles = (Kg + TC_TILE_M - 1) / TC_TILE_M;

    const int tid = threadIdx.x;
    const int warp = tid / WARP_LANES;
    const int warp_m = warp / TC_WARPS_N, warp_n = warp % TC_WARPS_N;

    // This thread's column of s_b and s_c: output position p, fixed for the block.
    const int col = tid % TC_TILE_N, row0 = tid / TC_TILE_N;
    const int p = blockIdx.x * TC_TILE_N + col;
    const bool real_p = p < positions;
    const int n = real_p ? p / spatial : 0, o = real_p ? p % spatial : 0;
    const int ow = o % OW, oh = o / OW % OH, od = o / (OW * OH);
    const int d0 = od * sD - pD, h0 = oh * sH - pH, w0 = ow * sW - pW;  // window corner
    // This thread's piece of s_a: row a_m, columns a_r .. a_r + A_PER_THREAD - 1.
    const int a_m = tid / A_THREADS_PER_ROW, a_r = (tid % A_THREADS_PER_ROW) * A_PER_THREAD;

    for (int mt = blockIdx.y; mt < groups * m_tiles; mt += gridDim.y) {
        const int g = mt / m_tiles, k0 = (mt % m_tiles) * TC_TILE_M;
        const float* x_g = x + ((long long)n * C + g * Cg) * D * H * W;

        wmma::fragment<wmma::accumulator, WMMA_M, WMMA_N, P::wmma_k, float> acc;
        wmma::fill_fragment(acc, 0.0f);

        for (int r0 = 0; r0 < R; r0 += TC_TILE_K) {
            // 1. Gather the stage: weights (contiguous along r) ...
            for (int j = 0; j < A_PER_THREAD; ++j) {
                const int r = r0 + a_r + j;
                float v = 0.0f;
                if (k0 + a_m < Kg && r < R) v = w[(long long)(g * Kg + k0 + a_m) * R + r];
                s_a[a_m * TC_TILE_K + a_r + j] = P::convert(v);
            }
            // ... and this thread's column of the virtual column matrix (zeros for padding).
            for (int rr = row0; rr < TC_TILE_K; rr += ROW_STEP) {
                const int r = r0 + rr;
                float v = 0.0f;
                if (real_p && r < R) {
                    const int c = r / taps, t = r % taps;
                    const int kw = t % kW, kh = t / kW % kH, kd = t / (kW * kH);
                    const int d = d0 + kd * dD, h = h0 + kh * dH, x_w = w0 + kw * dW;
                    if (d >= 0 && d < D && h >= 0 && h < H && x_w >= 0 && x_w < W)
                        v = x_g[(((long long)c * D + d) * H + h) * W + x_w];
                }
                s_b[rr * TC_TILE_N + col] = P::convert(v);
            }
            __syncthreads();  // 2. the stage is in shared memory

            // 3. This warp's quadrant: rows warp_m*16 .. of s_a, columns warp_n*16 .. of s_b.
            for (int kk = 0; kk < TC_TILE_K; kk += P::wmma_k) {
                wmma::fragment<wmma::matrix_a, WMMA_M, WMMA_N, P::wmma_k,
                               typename P::fragment_type, wmma::row_major> a_frag;
                wmma::fragment<wmma::matrix_b, WMMA_M, WMMA_N, P::wmma_k,
                               typename P::fragment_type, wmma::row_major> b_frag;
                wmma::load_matrix_sync(a_frag, s_a + warp_m * WMMA_M * TC_TILE_K + kk, TC_TILE_K);
                wmma::load_matrix_sync(b_frag, s_b + kk * TC_TILE_N + warp_n * WMMA_N, TC_TILE_N);
                wmma::mma_sync(acc, a_frag, b_frag, acc);
            }
            __syncthreads();  // 4. everyone is done with the stage before it is overwritten
        }

        // The warp's accumulator into s_c, then each thread stores its column of the tile.
        wmma::store_matrix_sync(s_c + warp_m * WMMA_M * TC_TILE_N + warp_n * WMMA_N, acc,
                                TC_TILE_N, wmma::mem_row_major);
        __syncthreads();
        for (int m = row0; m < TC_TILE_M; m += ROW_STEP) {
            if (real_p && k0 + m < Kg)
                y[((long long)n * K + g * Kg + k0 + m) * spatial + o] = s_c[m * TC_TILE_N + col];
        }
        __syncthreads();  // s_c is rewritten by the block's next channel tile
    }
}

// The entry points, one per input precision; float32 in and out. __launch_bounds__: the host
// always launches TC_THREADS threads per block.
extern "C" __global__ void __launch_bounds__(TC_THREADS)
conv3d_implicit_gemm_tc_fp16_f32(const float* x, const float* w, float* y, CONV3D_PARAMS)
{
    conv3d_implicit_gemm_tc<Fp16>(x, w, y, CONV3D_ARGS);
}

#ifdef TC_HAS_SM80_TYPES
extern "C" __global__ void __launch_bounds__(TC_THREADS)
conv3d_implicit_gemm_tc_bf16_f32(const float* x, const float* w, float* y, CONV3D_PARAMS)
{
    conv3d_implicit_gemm_tc<Bf16>(x, w, y, CONV3D_ARGS);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS)
conv3d_implicit_gemm_tc_tf32_f32(const float* x, const float* w, float* y, CONV3D_PARAMS)
{
    conv3d_implicit_gemm_tc<Tf32>(x, w, y, CONV3D_ARGS);
}
#endif
