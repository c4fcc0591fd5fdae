// conv3d_backward_weight.cu -- gradient of the convolution with respect to its weights.
//
//   gw[k, c, kd, kh, kw] = sum over n, od, oh, ow of
//                          gy[n, k, od, oh, ow] * x[n, g*Cg + c, od*sD - pD + kd*dD,
//                                                   oh*sH - pH + kh*dH, ow*sW - pW + kw*dW]
//   with g = k / Kg the group of output channel k (padding contributes zero).
//
// ONE BLOCK PER WEIGHT ELEMENT: block b computes gw[b] (row-major over (K, C/groups, kD, kH, kW)).
// Each weight sums N*OD*OH*OW products -- far more than one thread should add alone -- so the
// block's threads share the work and then combine it with a shared-memory tree reduction:
//   1. thread t adds the products number t, t + blockDim.x, t + 2*blockDim.x, ... into a register;
//   2. it stores that partial sum in shared memory; __syncthreads();
//   3. in rounds, the first half of the active threads add the second half's sums to theirs
//      (blockDim.x/2, /4, ... 1 active threads), with a __syncthreads() after each round;
//   4. thread 0 writes the block's total.
// Every thread runs every round's barrier (the "if" is inside the loop, the barrier outside it).
// blockDim.x must be a power of two; the host passes blockDim.x values of dynamic shared memory.
// Launch: grid = K*(C/groups)*kD*kH*kW blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // unflatten3d, CONV3D_PARAMS (N, C, D, H, W, K, OD, ..., groups)

template <typename T>
__device__ void conv3d_backward_weight(const T* gy, const T* x, T* gw, CONV3D_PARAMS)
{
    extern __shared__ double shared_raw[];  // declared as double: aligned for float and double
    T* partial = reinterpret_cast<T*>(shared_raw);

    const int Cg = C / groups, Kg = K / groups;
    const int weight = blockIdx.x;  // which gw element this block computes
    if (weight >= K * Cg * kD * kH * kW) return;  // uniform over the block: no barrier is split
    const Position3d tap = unflatten3d(weight, kD, kH, kW);
    const int kd = tap.d, kh = tap.h, kw = tap.w;
    const int c = tap.plane % Cg, k = tap.plane / Cg;
    const int g = k / Kg;

    // 1. Strided partial sum over the (n, od, oh, ow) products.
    const int L = OD * OH * OW;
    T sum = 0;
    for (int p = threadIdx.x; p < N * L; p += blockDim.x) {
        const Position3d out = unflatten3d(p, OD, OH, OW);
        const int od = out.d, oh = out.h, ow = out.w, n = out.plane;
        const int d = od * sD - pD + kd * dD;
        const int h = oh * sH - pH + kh * dH;
        const int x_w = ow * sW - pW + kw * dW;
        if (d < 0 || d >= D || h < 0 || h >= H || x_w < 0 || x_w >= W) continue;  // padding
        sum += gy[((long long)n * K + k) * L + p % L]
             * x[((((long long)n * C + g * Cg + c) * D + d) * H + h) * W + x_w];
    }

    // 2.-3. Tree reduction in shared memory.
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int active = blockDim.x / 2; active > 0; active /= 2) {
        if (threadIdx.x < active) partial[threadIdx.x] += partial[threadIdx.x + active];
        __syncthreads();
    }
    // 4. One writer per block.
    if (threadIdx.x == 0) gw[weight] = partial[0];
}

// The entry points the host launches, one per element type.
extern "C" __global__ void conv3d_backward_weight_f32(const float* gy, const float* x, float* gw,
                                                      CONV3D_PARAMS)
{
    conv3d_backward_weight(gy, x, gw, CONV3D_ARGS);
}

extern "C" __global__ void conv3d_backward_weight_f64(const double* gy, const double* x,
                                                      double* gw, CONV3D_PARAMS)
{
    conv3d_backward_weight(gy, x, gw, CONV3D_ARGS);
}
