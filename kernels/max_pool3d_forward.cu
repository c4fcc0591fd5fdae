// max_pool3d_forward.cu -- 3D max pooling with the argmax of every window (PyTorch's indices).
//
// ONE THREAD PER OUTPUT ELEMENT: the thread with global index t computes y[t] and indices[t]
// (row-major over (N*C, OD, OH, OW)): the maximum of the window
//   x[nc, od*sD - pD + kd*dD, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW],  kd < kD, kh < kH, kw < kW,
// and where it was, as the flat index d*H*W + h*W + w into the UNPADDED D x H x W plane of
// channel nc -- exactly what torch.nn.functional.max_pool3d(..., return_indices=True) returns.
// Padding counts as -infinity (it never wins). The scan order is (kd, kh, kw); a later value
// replaces the current best only if it is strictly greater, so on ties the FIRST maximum wins.
// NaN propagates as in PyTorch: "v != v" (true only for NaN) also replaces the best, so a window
// holding a NaN outputs NaN, with the index of its last NaN.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index, unflatten3d, MAX_POOL3D_PARAMS (NC, D, ... dW)

// -infinity without <math.h>'s INFINITY, which NVRTC does not have: the IEEE-754 bit pattern.
template <typename T> __device__ T negative_infinity();
template <> __device__ float negative_infinity<float>() { return -__int_as_float(0x7f800000); }
template <> __device__ double negative_infinity<double>()
{
    return -__longlong_as_double(0x7ff0000000000000LL);
}

template <typename T>
__device__ void max_pool3d_forward(const T* x, T* y, long long* indices, MAX_POOL3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= NC * OD * OH * OW) return;

    const Position3d out = unflatten3d(index, OD, OH, OW);
    const int od = out.d, oh = out.h, ow = out.w, nc = out.plane;
    const T* plane = x + (long long)nc * D * H * W;

    const int d0 = od * sD - pD, h0 = oh * sH - pH, w0 = ow * sW - pW;
    T best = negative_infinity<T>();
    // -1 until the first in-range element. It stays -1 (with y = -inf) only for a dilated window
    // that holds nothing but padding; conv3d.ops rejects such settings before any launch.
    long long best_index = -1;
    for (int kd = 0; kd < kD; ++kd) {
        const int d = d0 + kd * dD;
        if (d < 0 || d >= D) continue;
        for (int kh = 0; kh < kH; ++kh) {
            const int h = h0 + kh * dH;
            if (h < 0 || h >= H) continue;
            for (int kw = 0; kw < kW; ++kw) {
                const int x_w = w0 + kw * dW;
                if (x_w < 0 || x_w >= W) continue;
                const int flat = (d * H + h) * W + x_w;
                const T v = plane[flat];
                if (best_index < 0 || v > best || v != v) {  // v != v: v is NaN
                    best = v;
                    best_index = flat;
                }
            }
        }
    }
    y[index] = best;
    indices[index] = best_index;
}

// The entry points the host launches, one per element type.
extern "C" __global__ void max_pool3d_forward_f32(const float* x, float* y, long long* indices,
                                                  MAX_POOL3D_PARAMS)
{
    max_pool3d_forward(x, y, indices, MAX_POOL3D_ARGS);
}

extern "C" __global__ void max_pool3d_forward_f64(const double* x, double* y, long long* indices,
                                                  MAX_POOL3D_PARAMS)
{
    max_pool3d_forward(x, y, indices, MAX_POOL3D_ARGS);
}
