// avg_pool3d_backward.cu -- gradient of average pooling, as a gather (no atomics).
//
//   gx[nc, d, h, w] = sum over the output windows (od, oh, ow) that contain (d, h, w) of
//                     gy[nc, od, oh, ow] / divisor(od, oh, ow)
//
// with the divisor of avg_pool3d_forward.cu (PyTorch's rule, count_include_pad, ceil_mode).
//
// ONE THREAD PER INPUT ELEMENT: the thread with global index t computes gx[t] (row-major over
// (N*C, D, H, W)). Window od covers d when od*sD - pD <= d < od*sD - pD + kD, i.e. for
//   ceil((d + pD - kD + 1) / sD) <= od <= floor((d + pD) / sD),   clipped to [0, OD).
// Each gx element is written once by its own thread (no atomics, fixed summation order); the
// scatter alternative (one thread per output adding into its window) would collide wherever
// windows overlap (stride < kernel size) and need atomicAdd.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

// The number of values window (od, oh, ow) is divided by (see avg_pool3d_forward.cu).
__device__ int avg_pool3d_divisor(int od, int oh, int ow, int D, int H, int W,
                                  int kD, int kH, int kW, int sD, int sH, int sW,
                                  int pD, int pH, int pW, int count_include_pad)
{
    int d_start = od * sD - pD, h_start = oh * sH - pH, w_start = ow * sW - pW;
    int d_end = min(d_start + kD, D + pD), h_end = min(h_start + kH, H + pH);
    int w_end = min(w_start + kW, W + pW);
    if (count_include_pad) return (d_end - d_start) * (h_end - h_start) * (w_end - w_start);
    d_start = max(d_start, 0); h_start = max(h_start, 0); w_start = max(w_start, 0);
    d_end = min(d_end, D); h_end = min(h_end, H); w_end = min(w_end, W);
    return (d_end - d_start) * (h_end - h_start) * (w_end - w_start);
}

// First output window along one axis that contains input position i (the ceil above, clipped at 0).
__device__ int first_window(int i, int k, int s, int p)
{
    const int num = i + p - k + 1;
    return num <= 0 ? 0 : (num + s - 1) / s;
}

template <typename T>
__device__ void avg_pool3d_backward(const T* gy, T* gx,
                                    int NC, int D, int H, int W,
                                    int OD, int OH, int OW,
                                    int kD, int kH, int kW,
                                    int sD, int sH, int sW,
                                    int pD, int pH, int pW,
                                    int count_include_pad)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= NC * D * H * W) return;

    const int x_w = index % W;
    const int h = (index / W) % H;
    const int d = (index / (W * H)) % D;
    const int nc = index / (W * H * D);
    const T* gy_plane = gy + (long long)nc * OD * OH * OW;

    const int od_last = min((d + pD) / sD, OD - 1);
    const int oh_last = min((h + pH) / sH, OH - 1);
    const int ow_last = min((x_w + pW) / sW, OW - 1);
    T sum = 0;
    for (int od = first_window(d, kD, sD, pD); od <= od_last; ++od)
        for (int oh = first_window(h, kH, sH, pH); oh <= oh_last; ++oh)
            for (int ow = first_window(x_w, kW, sW, pW); ow <= ow_last; ++ow) {
                const int divisor = avg_pool3d_divisor(od, oh, ow, D, H, W, kD, kH, kW,
                                                       sD, sH, sW, pD, pH, pW, count_include_pad);
                sum += gy_plane[(od * OH + oh) * OW + ow] / (T)divisor;
            }
    gx[index] = sum;
}

extern "C" __global__ void avg_pool3d_backward_f32(
    const float* gy, float* gx, int NC, int D, int H, int W, int OD, int OH, int OW,
    int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW,
    int count_include_pad)
{
    avg_pool3d_backward<float>(gy, gx, NC, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW,
                               pD, pH, pW, count_include_pad);
}

extern "C" __global__ void avg_pool3d_backward_f64(
    const double* gy, double* gx, int NC, int D, int H, int W, int OD, int OH, int OW,
    int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW,
    int count_include_pad)
{
    avg_pool3d_backward<double>(gy, gx, NC, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW,
                                pD, pH, pW, count_include_pad);
}
