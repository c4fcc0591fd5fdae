// conv3d_direct.cu -- 3D convolution forward, the simplest kernel in the repository.
//
// ONE THREAD PER OUTPUT ELEMENT. The thread with global index t = blockIdx.x * blockDim.x +
// threadIdx.x computes y[n][k][od][oh][ow], the element whose row-major flat index in
// y (N, K, OD, OH, OW) is t. It reads x and w straight from global memory:
//
//   y[n,k,od,oh,ow] = sum over c < C/groups, kd < kD, kh < kH, kw < kW of
//                     x[n, g*Cg + c, od*sD - pD + kd*dD, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW]
//                   * w[k, c, kd, kh, kw]
//
// with Cg = C/groups and g = k / (K/groups) the group of output channel k. Like PyTorch this is a
// cross-correlation (the kernel is not flipped). An input coordinate outside the volume is
// padding and contributes zero. pD, pH, pW are the padding *before* the data; the padding after
// it only shows in the output size (OD, OH, OW), computed on the host, so asymmetric 'same'
// padding needs nothing special here.
//
// Launch (conv3d/cuda/launch.py): a 1-D grid of 1-D blocks with at least N*K*OD*OH*OW threads;
// the spare threads of the last block return at once.

#include "indexing.cuh"  // global_thread_index, unflatten3d, CONV3D_PARAMS (N, C, D, ... groups)

template <typename T>
__device__ void conv3d_direct(const T* x, const T* w, T* y, CONV3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= N * K * OD * OH * OW) return;

    // Unflatten the output index (row-major: ow varies fastest).
    const Position3d out = unflatten3d(index, OD, OH, OW);
    const int od = out.d, oh = out.h, ow = out.w;
    const int k = out.plane % K, n = out.plane / K;

    const int Cg = C / groups;       // input channels per group
    const int g = k / (K / groups);  // the group this output channel belongs to

    T sum = 0;
    for (int c = 0; c < Cg; ++c) {
        const T* x_plane = x + ((long long)n * C + g * Cg + c) * D * H * W;
        const T* w_taps = w + ((long long)k * Cg + c) * kD * kH * kW;
        for (int kd = 0; kd < kD; ++kd) {
            const int d = od * sD - pD + kd * dD;
            if (d < 0 || d >= D) continue;  // padding
            for (int kh = 0; kh < kH; ++kh) {
                const int h = oh * sH - pH + kh * dH;
                if (h < 0 || h >= H) continue;
                for (int kw = 0; kw < kW; ++kw) {
                    const int x_w = ow * sW - pW + kw * dW;
                    if (x_w < 0 || x_w >= W) continue;
                    sum += x_plane[(d * H + h) * W + x_w] * w_taps[(kd * kH + kh) * kW + kw];
                }
            }
        }
    }
    y[index] = sum;
}

// The entry points the host launches, one per element type.
extern "C" __global__ void conv3d_direct_f32(const float* x, const float* w, float* y,
                                             CONV3D_PARAMS)
{
    conv3d_direct(x, w, y, CONV3D_ARGS);
}

extern "C" __global__ void conv3d_direct_f64(const double* x, const double* w, double* y,
                                             CONV3D_PARAMS)
{
    conv3d_direct(x, w, y, CONV3D_ARGS);
}
