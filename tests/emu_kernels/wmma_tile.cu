// One warp multiplies tiles with the WMMA API: c = a * b + c0 (16 x 16 outputs, K inputs).
// Valid CUDA for sm_80 (tf32, bf16); the emulator runs it through its mma.h shim.
//   a: 16 x K row-major, b: K x 16 row-major, c: 16 x 16 row-major (float, in global memory).
// The warp stages one K step of a and b in shared memory (32-byte aligned, as WMMA requires),
// converted to the input precision, then loads the fragments from there.
#include <mma.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
using namespace nvcuda;

#define TILE 16       // M = N = 16
#define TF32_K 8      // m16n16k8 for tf32
#define HALF_K 16     // m16n16k16 for __half / __nv_bfloat16
#define LANES 32      // one warp

// tf32: b is staged COLUMN-major (b^T) and c0 loaded from memory; convert = 0 skips the
// __float_to_tf32 conversion of the a fragment (the emulator must report it).
extern "C" __global__ void wmma_tf32(const float* a, const float* b, float* c, int K, int convert)
{
    __shared__ __align__(32) float sa[TILE * TF32_K];
    __shared__ __align__(32) float sbt[TILE * TF32_K];
    __shared__ __align__(32) float sc[TILE * TILE];
    const int lane = threadIdx.x;
    for (int e = lane; e < TILE * TILE; e += LANES) sc[e] = c[e];
    __syncthreads();
    wmma::fragment<wmma::accumulator, TILE, TILE, TF32_K, float> acc;
    wmma::load_matrix_sync(acc, sc, TILE, wmma::mem_row_major);
    for (int k0 = 0; k0 < K; k0 += TF32_K) {
        for (int e = lane; e < TILE * TF32_K; e += LANES) {
            const int r = e / TF32_K, k = e % TF32_K;
            sa[e] = a[r * K + k0 + k];
            sbt[e] = b[(k0 + k) * TILE + r];  // sbt[n][k] = b[k][n]
        }
        __syncthreads();
        wmma::fragment<wmma::matrix_a, TILE, TILE, TF32_K, wmma::precision::tf32, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, TILE, TILE, TF32_K, wmma::precision::tf32, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, sa, TF32_K);
        wmma::load_matrix_sync(fb, sbt, TF32_K);
        for (int i = 0; i < fa.num_elements; ++i)
            if (convert) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
        for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
        wmma::mma_sync(acc, fa, fb, acc);
        __syncthreads();
    }
    wmma::store_matrix_sync(sc, acc, TILE, wmma::mem_row_major);
    __syncthreads();
    for (int e = lane; e < TILE * TILE; e += LANES) c[e] = sc[e];
}

template <typename T> __device__ T to_input(float v);
template <> __device__ __half to_input<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __nv_bfloat16 to_input<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// bf16 / fp16 inputs, float accumulator started with fill_fragment(init); stored column-major.
template <typename T>
__device__ void wmma_16bit(const float* a, const float* b, float* c, int K, float init)
{
    __shared__ __align__(32) T sa[TILE * HALF_K];
    __shared__ __align__(32) T sb[HALF_K * TILE];
    __shared__ __align__(32) float sc[TILE * TILE];
    const int lane = threadIdx.x;
    wmma::fragment<wmma::accumulator, TILE, TILE, HALF_K, float> acc;
    wmma::fill_fragment(acc, init);
    for (int k0 = 0; k0 < K; k0 += HALF_K) {
        for (int e = lane; e < TILE * HALF_K; e += LANES) {
            const int r = e / HALF_K, k = e % HALF_K;
            sa[e] = to_input<T>(a[r * K + k0 + k]);
            sb[e] = to_input<T>(b[(k0 + e / TILE) * TILE + e % TILE]);
        }
        __syncthreads();
        wmma::fragment<wmma::matrix_a, TILE, TILE, HALF_K, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, TILE, TILE, HALF_K, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, sa, HALF_K);
        wmma::load_matrix_sync(fb, sb, TILE);
        wmma::mma_sync(acc, fa, fb, acc);
        __syncthreads();
    }
    wmma::store_matrix_sync(sc, acc, TILE, wmma::mem_col_major);  // sc[n][m]
    __syncthreads();
    for (int e = lane; e < TILE * TILE; e += LANES) c[(e % TILE) * TILE + e / TILE] = sc[e];
}

extern "C" __global__ void wmma_bf16(const float* a, const float* b, float* c, int K, float init)
{
    wmma_16bit<__nv_bfloat16>(a, b, c, K, init);
}

extern "C" __global__ void wmma_fp16(const float* a, const float* b, float* c, int K, float init)
{
    wmma_16bit<__half>(a, b, c, K, init);
}

// A bug: only the lower half of the warp fills the accumulator, so the lanes diverge at a
// warp collective (a hang or garbage on a GPU; the emulator reports it).
extern "C" __global__ void wmma_divergent(float* c)
{
    __shared__ __align__(32) float sc[TILE * TILE];
    wmma::fragment<wmma::accumulator, TILE, TILE, HALF_K, float> acc;
    if (threadIdx.x < TILE) wmma::fill_fragment(acc, 1.0f);
    wmma::store_matrix_sync(sc, acc, TILE, wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < TILE * TILE; e += blockDim.x) c[e] = sc[e];
}

// Bugs in the pointer of a collective: `offset` floats past a 32-byte aligned array (misaligned
// unless a multiple of 8), plus `odd_lanes` more floats in the odd lanes only (the lanes then
// disagree on the pointer). Stores a filled accumulator, then copies it out.
extern "C" __global__ void wmma_bad_pointer(float* c, int offset, int odd_lanes)
{
    __shared__ __align__(32) float sc[2 * TILE * TILE];
    wmma::fragment<wmma::accumulator, TILE, TILE, HALF_K, float> acc;
    wmma::fill_fragment(acc, 2.0f);
    wmma::store_matrix_sync(sc + offset + (threadIdx.x % 2) * odd_lanes, acc, TILE,
                            wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < TILE * TILE; e += blockDim.x) c[e] = sc[offset + e];
}
