// conv3d_backward_weight.cu -- gradient of the convolution with respect to its weights.
//
//   gw[k, c, kd, kh, kw] = sum over the products p = (n, od, oh, ow) of
//                          gy[n, k, od, oh, ow] * x[n, g*Cg + c, od*sD - pD + kd*dD,
//                                                   oh*sH - pH + kh*dH, ow*sW - pW + kw*dW]
//   with g = k / Kg the group of output channel k (padding contributes zero).
//
// A REDUCTION IN TWO PASSES. Every weight sums the same N*OD*OH*OW products, so the work is cut
// both ways: along the weights into TILES of blockDim.x consecutive weights (row-major over
// (K, C/groups, kD, kH, kW)), and along the products into SLICES of per_slice consecutive
// products (row-major over (N, OD, OH, OW)).
//
// Pass 1, conv3d_backward_weight: THREAD t OF BLOCK (bx, s) computes the partial sum of weight
// bx*blockDim.x + t over the products of slice s, and writes it to partial[s][weight]. The block
// walks its slice in stages of `stage` products:
//   1. its threads stage, in shared memory, each product's window corner (n, od*sD - pD,
//      oh*sH - pH, ow*sW - pW) -- the only integer divisions, once per product and block -- and
//      gy[n, k, od, oh, ow] for the k_span output channels k_first .. that the tile touches;
//      __syncthreads();
//   2. every thread adds, in product order, gy (from shared memory, shared by every weight of
//      the same output channel) times its tap of x (global memory: neighbouring threads hold
//      neighbouring taps, so their loads coalesce); __syncthreads() before the next stage.
// Pass 2, conv3d_backward_weight_reduce: THREAD b adds partial[0][b], partial[1][b], ... in
// slice order and writes gw[b]. With one slice the host lets pass 1 write gw itself.
//
// Deterministic: each sum runs in a fixed order (products in order inside a slice, slices in
// order), and no two threads ever write one address -- no atomics, the same bits every run.
// The slicing depends only on the shapes (conv3d/cuda/launch.py), never on the GPU's scheduling.
// Dynamic shared memory: k_span*stage values of T, then 4*stage ints.
// Launch: pass 1 grid (weight tiles, slices, 1), block (WEIGHT_GRAD_THREADS, 1, 1); pass 2 a
// 1-D grid with one thread per weight (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index, unflatten3d, CONV3D_PARAMS (N, C, ..., groups)

#define WEIGHT_GRAD_THREADS 128  // threads per block of pass 1 = weights per tile
#define REDUCE_THREADS 256       // threads per block of pass 2

template <typename T>
__device__ void conv3d_backward_weight(const T* gy, const T* x, T* partial, CONV3D_PARAMS,
                                       int per_slice, int stage, int k_span)
{
    extern __shared__ double shared_raw[];  // declared as double: aligned for float and double
    T* s_gy = reinterpret_cast<T*>(shared_raw);           // [k_span][stage]
    int* s_n = reinterpret_cast<int*>(s_gy + k_span * stage);  // [stage] each
    int* s_d = s_n + stage;
    int* s_h = s_d + stage;
    int* s_w = s_h + stage;

    const int Cg = C / groups, Kg = K / groups;
    const int taps = kD * kH * kW;
    const int per_k = Cg * taps;            // weights per output channel
    const int weights = K * per_k;
    const int L = OD * OH * OW;
    const int products = N * L;

    // This thread's weight, unflattened once (threads past the end compute a clamped copy and
    // never store it, but still stage and reach every barrier).
    const int tile0 = blockIdx.x * blockDim.x;
    const int weight = tile0 + threadIdx.x;
    const bool active = weight < weights;
    const int mine = active ? weight : weights - 1;
    const int k = mine / per_k, c = mine % per_k / taps, t = mine % taps;
    const int kd = t / (kH * kW), kh = t / kW % kH, kw = t % kW;
    const int k_first = tile0 / per_k;       // the tile's first output channel
    const int g = k / Kg;
    const long long sample_stride = (long long)C * D * H * W;
    const T* x_c = x + (long long)(g * Cg + c) * D * H * W;  // + n * sample_stride per product
    const T* s_gy_k = s_gy + (k - k_first) * stage;          // gy of this weight's channel
    const int dd = kd * dD, dh = kh * dH, dw = kw * dW;      // the tap's offset in the window

    const int p_begin = blockIdx.y * per_slice;
    const int p_end = min(p_begin + per_slice, products);
    T sum = 0;
    for (int p0 = p_begin; p0 < p_end; p0 += stage) {
        const int count = min(stage, p_end - p0);
        // 1. Stage the window corners and gy of products p0 .. p0 + count - 1.
        for (int i = threadIdx.x; i < count; i += blockDim.x) {
            const Position3d out = unflatten3d(p0 + i, OD, OH, OW);  // out.plane is n
            s_n[i] = out.plane;
            s_d[i] = out.d * sD - pD;
            s_h[i] = out.h * sH - pH;
            s_w[i] = out.w * sW - pW;
            const int l = p0 + i - out.plane * L;
            for (int j = 0; j < k_span; ++j)
                s_gy[j * stage + i] = k_first + j < K
                    ? gy[((long long)out.plane * K + k_first + j) * L + l] : T(0);
        }
        __syncthreads();
        // 2. Accumulate in product order.
        if (active) {
            for (int i = 0; i < count; ++i) {
                const int d = s_d[i] + dd, h = s_h[i] + dh, x_w = s_w[i] + dw;
                if (d < 0 || d >= D || h < 0 || h >= H || x_w < 0 || x_w >= W) continue;  // padding
                sum += s_gy_k[i] * x_c[s_n[i] * sample_stride + (d * H + h) * W + x_w];
            }
        }
        __syncthreads();  // everyone is done reading before the next stage overwrites it
    }
    if (active) partial[(long long)blockIdx.y * weights + weight] = sum;
}

template <typename T>
__device__ void conv3d_backward_weight_reduce(const T* partial, T* gw, int weights, int slices)
{
    const int weight = global_thread_index();
    if (weight >= weights) return;
    T sum = 0;
    for (int s = 0; s < slices; ++s) sum += partial[(long long)s * weights + weight];
    gw[weight] = sum;
}

// The entry points the host launches, one per element type and pass.
extern "C" __global__ void __launch_bounds__(WEIGHT_GRAD_THREADS)
conv3d_backward_weight_f32(const float* gy, const float* x, float* partial, CONV3D_PARAMS,
                           int per_slice, int stage, int k_span)
{
    conv3d_backward_weight(gy, x, partial, CONV3D_ARGS, per_slice, stage, k_span);
}

extern "C" __global__ void __launch_bounds__(WEIGHT_GRAD_THREADS)
conv3d_backward_weight_f64(const double* gy, const double* x, double* partial, CONV3D_PARAMS,
                           int per_slice, int stage, int k_span)
{
    conv3d_backward_weight(gy, x, partial, CONV3D_ARGS, per_slice, stage, k_span);
}

extern "C" __global__ void __launch_bounds__(REDUCE_THREADS)
conv3d_backward_weight_reduce_f32(const float* partial, float* gw, int weights, int slices)
{
    conv3d_backward_weight_reduce(partial, gw, weights, slices);
}

extern "C" __global__ void __launch_bounds__(REDUCE_THREADS)
conv3d_backward_weight_reduce_f64(const double* partial, double* gw, int weights, int slices)
{
    conv3d_backward_weight_reduce(partial, gw, weights, slices);
}
