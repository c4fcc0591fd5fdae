// avg_pool3d_forward.cu -- 3D average pooling with PyTorch's divisor rule.
//
// ONE THREAD PER OUTPUT ELEMENT: the thread with global index t computes y[t] (row-major over
// (N*C, OD, OH, OW)), the mean of its window of x[nc] (kernel kD x kH x kW, stride, symmetric
// padding pD, pH, pW; average pooling has no dilation).
//
// The divisor, as in PyTorch's avg_pool3d (without divisor_override):
//   * the window is first clipped to the padded volume: d runs over [d0, min(d0 + kD, D + pD)),
//     with d0 = od*sD - pD (this only bites with ceil_mode, whose last window may stick out);
//   * count_include_pad != 0: divide by the size of that clipped window, padding included;
//   * count_include_pad == 0: divide by the number of real input elements in it.
// ceil_mode itself only changes the output size (OD, OH, OW), computed on the host.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

template <typename T>
__device__ void avg_pool3d_forward(const T* x, T* y,
                                   int NC, int D, int H, int W,
                                   int OD, int OH, int OW,
                                   int kD, int kH, int kW,
                                   int sD, int sH, int sW,
                                   int pD, int pH, int pW,
                                   int count_include_pad)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= NC * OD * OH * OW) return;

    const int ow = index % OW;
    const int oh = (index / OW) % OH;
    const int od = (index / (OW * OH)) % OD;
    const int nc = index / (OW * OH * OD);
    const T* plane = x + (long long)nc * D * H * W;

    // Window clipped to the padded volume, then to the real data.
    int d_start = od * sD - pD, h_start = oh * sH - pH, w_start = ow * sW - pW;
    int d_end = min(d_start + kD, D + pD), h_end = min(h_start + kH, H + pH);
    int w_end = min(w_start + kW, W + pW);
    const int padded_count = (d_end - d_start) * (h_end - h_start) * (w_end - w_start);
    d_start = max(d_start, 0); h_start = max(h_start, 0); w_start = max(w_start, 0);
    d_end = min(d_end, D); h_end = min(h_end, H); w_end = min(w_end, W);

    T sum = 0;
    for (int d = d_start; d < d_end; ++d)
        for (int h = h_start; h < h_end; ++h)
            for (int x_w = w_start; x_w < w_end; ++x_w)
                sum += plane[(d * H + h) * W + x_w];

    const int divisor = count_include_pad
        ? padded_count
        : (d_end - d_start) * (h_end - h_start) * (w_end - w_start);
    y[index] = sum / (T)divisor;
}

extern "C" __global__ void avg_pool3d_forward_f32(
    const float* x, float* y, int NC, int D, int H, int W, int OD, int OH, int OW,
    int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW,
    int count_include_pad)
{
    avg_pool3d_forward<float>(x, y, NC, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW,
                              pD, pH, pW, count_include_pad);
}

extern "C" __global__ void avg_pool3d_forward_f64(
    const double* x, double* y, int NC, int D, int H, int W, int OD, int OH, int OW,
    int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW,
    int count_include_pad)
{
    avg_pool3d_forward<double>(x, y, NC, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW,
                               pD, pH, pW, count_include_pad);
}
