// conv3d_backward_input.cu -- gradient of the convolution with respect to its input.
//
//   gx[n, c, d, h, w] = sum over the output channels k of c's group and the taps (kd, kh, kw) of
//                       gy[n, k, od, oh, ow] * w[k, c - g*Cg, kd, kh, kw]
//                       for the output positions whose window puts tap (kd, kh, kw) on (d, h, w):
//                       od*sD - pD + kd*dD == d  (and the same for h and w).
//
// ONE THREAD PER INPUT ELEMENT: the thread with global index t computes gx[t] (row-major over
// (N, C, D, H, W)).
//
// Why a gather and not a scatter: the forward pass reads each input element from several
// overlapping windows, so the direct "transpose" -- one thread per output element adding
// gy * w into every input element of its window -- has many threads writing the same gx element
// and needs atomicAdd. Atomics serialise on collisions and add in a run-dependent order, so the
// float result changes in its last bits from run to run. Here each thread OWNS one input element
// and sums over the outputs and weights that touch it: every gx element is written once, by one
// thread, in a fixed order; no atomics, deterministic. The price is the division test below
// (which taps land on this element), cheap next to the memory traffic.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

template <typename T>
__device__ void conv3d_backward_input(const T* gy, const T* w, T* gx,
                                      int N, int C, int D, int H, int W,
                                      int K, int OD, int OH, int OW,
                                      int kD, int kH, int kW,
                                      int sD, int sH, int sW,
                                      int pD, int pH, int pW,
                                      int dD, int dH, int dW,
                                      int groups)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * D * H * W) return;

    const int x_w = index % W;
    const int h = (index / W) % H;
    const int d = (index / (W * H)) % D;
    const int c = (index / (W * H * D)) % C;
    const int n = index / (W * H * D * C);

    const int Cg = C / groups, Kg = K / groups;
    const int g = c / Cg;  // the group of input channel c
    const int taps = kD * kH * kW;

    T sum = 0;
    for (int kd = 0; kd < kD; ++kd) {
        const int num_d = d + pD - kd * dD;  // = od * sD if an output window puts tap kd here
        if (num_d < 0 || num_d % sD != 0 || num_d / sD >= OD) continue;
        const int od = num_d / sD;
        for (int kh = 0; kh < kH; ++kh) {
            const int num_h = h + pH - kh * dH;
            if (num_h < 0 || num_h % sH != 0 || num_h / sH >= OH) continue;
            const int oh = num_h / sH;
            for (int kw = 0; kw < kW; ++kw) {
                const int num_w = x_w + pW - kw * dW;
                if (num_w < 0 || num_w % sW != 0 || num_w / sW >= OW) continue;
                const int ow = num_w / sW;
                const int t = (kd * kH + kh) * kW + kw;
                for (int k = g * Kg; k < (g + 1) * Kg; ++k) {
                    sum += gy[((((long long)n * K + k) * OD + od) * OH + oh) * OW + ow]
                         * w[((long long)k * Cg + (c - g * Cg)) * taps + t];
                }
            }
        }
    }
    gx[index] = sum;
}

extern "C" __global__ void conv3d_backward_input_f32(
    const float* gy, const float* w, float* gx, int N, int C, int D, int H, int W,
    int K, int OD, int OH, int OW, int kD, int kH, int kW, int sD, int sH, int sW,
    int pD, int pH, int pW, int dD, int dH, int dW, int groups)
{
    conv3d_backward_input<float>(gy, w, gx, N, C, D, H, W, K, OD, OH, OW, kD, kH, kW,
                                 sD, sH, sW, pD, pH, pW, dD, dH, dW, groups);
}

extern "C" __global__ void conv3d_backward_input_f64(
    const double* gy, const double* w, double* gx, int N, int C, int D, int H, int W,
    int K, int OD, int OH, int OW, int kD, int kH, int kW, int sD, int sH, int sW,
    int pD, int pH, int pW, int dD, int dH, int dW, int groups)
{
    conv3d_backward_input<double>(gy, w, gx, N, C, D, H, W, K, OD, OH, OW, kD, kH, kW,
                                  sD, sH, sW, pD, pH, pW, dD, dH, dW, groups);
}
