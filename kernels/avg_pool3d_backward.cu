// avg_pool3d_backward.cu -- gradient of average pooling, as a gather (no atomics).
//
//   gx[nc, d, h, w] = sum over the output windows (od, oh, ow) that contain (d, h, w) of
//                     gy[nc, od, oh, ow] / divisor(od, oh, ow)
//
// with the divisor of avg_pool3d_forward.cu (PyTorch's rule, count_include_pad, ceil_mode;
// avg_pool_divisor in indexing.cuh).
//
// ONE THREAD PER INPUT ELEMENT: the thread with global index t computes gx[t] (row-major over
// (N*C, D, H, W)). Window od covers d when od*sD - pD <= d < od*sD - pD + kD, i.e. for
//   ceil((d + pD - kD + 1) / sD) <= od <= floor((d + pD) / sD),   clipped to [0, OD).
// Each gx element is written once by its own thread (no atomics, fixed summation order); the
// scatter alternative (one thread per output adding into its window) would collide wherever
// windows overlap (stride < kernel size) and need atomicAdd.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index, unflatten3d, pool_window, avg_pool_divisor, ...

// First output window along one axis that contains input position i (the ceil above, clipped at 0).
__device__ int first_window(int i, int k, int s, int p)
{
    const int num = i + p - k + 1;
    return num <= 0 ? 0 : (num + s - 1) / s;
}

template <typename T>
__device__ void avg_pool3d_backward(const T* gy, T* gx, AVG_POOL3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= NC * D * H * W) return;

    const Position3d in = unflatten3d(index, D, H, W);
    const int d = in.d, h = in.h, x_w = in.w;
    const T* gy_plane = gy + (long long)in.plane * OD * OH * OW;

    const int od_last = min((d + pD) / sD, OD - 1);
    const int oh_last = min((h + pH) / sH, OH - 1);
    const int ow_last = min((x_w + pW) / sW, OW - 1);
    T sum = 0;
    for (int od = first_window(d, kD, sD, pD); od <= od_last; ++od)
        for (int oh = first_window(h, kH, sH, pH); oh <= oh_last; ++oh)
            for (int ow = first_window(x_w, kW, sW, pW); ow <= ow_last; ++ow) {
                const int divisor = avg_pool_divisor(
                    pool_window(od, kD, sD, pD, D), pool_window(oh, kH, sH, pH, H),
                    pool_window(ow, kW, sW, pW, W), D, H, W, count_include_pad);
                sum += gy_plane[(od * OH + oh) * OW + ow] / (T)divisor;
            }
    gx[index] = sum;
}

// The entry points the host launches, one per element type.
extern "C" __global__ void avg_pool3d_backward_f32(const float* gy, float* gx, AVG_POOL3D_PARAMS)
{
    avg_pool3d_backward(gy, gx, AVG_POOL3D_ARGS);
}

extern "C" __global__ void avg_pool3d_backward_f64(const double* gy, double* gx,
                                                   AVG_POOL3D_PARAMS)
{
    avg_pool3d_backward(gy, gx, AVG_POOL3D_ARGS);
}
