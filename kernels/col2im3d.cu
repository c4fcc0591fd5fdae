// col2im3d.cu -- fold columns back into a volume: the adjoint (transpose) of im2col3d.
//
// Given gcol with im2col3d's layout (N, C*kD*kH*kW, OD*OH*OW), compute
//
//   gx[n, c, d, h, w] = sum of gcol[n, (c, kd, kh, kw), (od, oh, ow)] over all taps and output
//                       positions with od*sD - pD + kd*dD == d, oh*sH - pH + kh*dH == h, ...
//
// This is the input gradient of the GEMM convolution path (gcol = w^T @ gy).
//
// ONE THREAD PER INPUT ELEMENT: the thread with global index t computes gx[t] (row-major over
// (N, C, D, H, W)). It GATHERS: for each tap kd it solves od*sD = d + pD - kd*dD for od, keeping
// the tap only when the division is exact and 0 <= od < OD (same for h and w). The scatter
// alternative (one thread per column element adding into gx) needs atomicAdd, because windows
// overlap whenever stride < dilated kernel size; atomics serialise on collisions and make the
// float summation order, and so the rounding, vary from run to run. Gathering writes every gx
// element exactly once, with no atomics and a fixed summation order.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

template <typename T>
__device__ void col2im3d(const T* col, T* gx,
                         int N, int C, int D, int H, int W,
                         int OD, int OH, int OW,
                         int kD, int kH, int kW,
                         int sD, int sH, int sW,
                         int pD, int pH, int pW,
                         int dD, int dH, int dW)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * D * H * W) return;

    const int x_w = index % W;
    const int h = (index / W) % H;
    const int d = (index / (W * H)) % D;
    const int c = (index / (W * H * D)) % C;
    const int n = index / (W * H * D * C);

    const int L = OD * OH * OW;
    const int taps = kD * kH * kW;
    const T* col_c = col + ((long long)n * C + c) * taps * L;  // the taps rows of channel c

    T sum = 0;
    for (int kd = 0; kd < kD; ++kd) {
        const int num_d = d + pD - kd * dD;  // = od * sD for the output that uses this tap here
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
                const int r = (kd * kH + kh) * kW + kw;
                sum += col_c[(long long)r * L + (od * OH + oh) * OW + ow];
            }
        }
    }
    gx[index] = sum;
}

extern "C" __global__ void col2im3d_f32(const float* col, float* gx,
                                        int N, int C, int D, int H, int W, int OD, int OH, int OW,
                                        int kD, int kH, int kW, int sD, int sH, int sW,
                                        int pD, int pH, int pW, int dD, int dH, int dW)
{
    col2im3d<float>(col, gx, N, C, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW,
                    dD, dH, dW);
}

extern "C" __global__ void col2im3d_f64(const double* col, double* gx,
                                        int N, int C, int D, int H, int W, int OD, int OH, int OW,
                                        int kD, int kH, int kW, int sD, int sH, int sW,
                                        int pD, int pH, int pW, int dD, int dH, int dW)
{
    col2im3d<double>(col, gx, N, C, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW,
                     dD, dH, dW);
}
