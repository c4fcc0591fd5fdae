// avg_pool3d_forward.cu -- 3D average pooling with PyTorch's divisor rule.
//
// ONE THREAD PER OUTPUT ELEMENT: the thread with global index t computes y[t] (row-major over
// (N*C, OD, OH, OW)), the mean of its window of x[nc] (kernel kD x kH x kW, stride, symmetric
// padding pD, pH, pW; average pooling has no dilation).
//
// The divisor, as in PyTorch's avg_pool3d (without divisor_override; avg_pool_divisor in
// indexing.cuh, shared with avg_pool3d_backward.cu):
//   * the window is first clipped to the padded volume: d runs over [d0, min(d0 + kD, D + pD)),
//     with d0 = od*sD - pD (this only bites with ceil_mode, whose last window may stick out);
//   * count_include_pad != 0: divide by the size of that clipped window, padding included;
//   * count_include_pad == 0: divide by the number of real input elements in it.
// ceil_mode itself only changes the output size (OD, OH, OW), computed on the host.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index, unflatten3d, pool_window, avg_pool_divisor, ...

template <typename T>
__device__ void avg_pool3d_forward(const T* x, T* y, AVG_POOL3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= NC * OD * OH * OW) return;

    const Position3d out = unflatten3d(index, OD, OH, OW);
    const T* plane = x + (long long)out.plane * D * H * W;

    // The window, cut at the end of the padded volume; the sum runs over its real data only.
    const Span wd = pool_window(out.d, kD, sD, pD, D);
    const Span wh = pool_window(out.h, kH, sH, pH, H);
    const Span ww = pool_window(out.w, kW, sW, pW, W);
    const Span d_in = clip_to_data(wd, D), h_in = clip_to_data(wh, H), w_in = clip_to_data(ww, W);

    T sum = 0;
    for (int d = d_in.start; d < d_in.end; ++d)
        for (int h = h_in.start; h < h_in.end; ++h)
            for (int x_w = w_in.start; x_w < w_in.end; ++x_w)
                sum += plane[(d * H + h) * W + x_w];
    y[index] = sum / (T)avg_pool_divisor(wd, wh, ww, D, H, W, count_include_pad);
}

// The entry points the host launches, one per element type.
extern "C" __global__ void avg_pool3d_forward_f32(const float* x, float* y, AVG_POOL3D_PARAMS)
{
    avg_pool3d_forward(x, y, AVG_POOL3D_ARGS);
}

extern "C" __global__ void avg_pool3d_forward_f64(const double* x, double* y, AVG_POOL3D_PARAMS)
{
    avg_pool3d_forward(x, y, AVG_POOL3D_ARGS);
}
