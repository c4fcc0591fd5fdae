// im2col3d.cu -- unfold the input into columns, so that convolution becomes one matrix product.
//
// col has shape (N, C*kD*kH*kW, OD*OH*OW): row r = (c*kD + kd)*kH*kW + kh*kW + kw holds, for every
// output position l = (od*OH + oh)*OW + ow, the input value that kernel tap (kd, kh, kw) of
// channel c multiplies at that output position (zero where the tap falls on padding):
//
//   col[n, r, l] = x[n, c, od*sD - pD + kd*dD, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW]
//
// Then, per group g, y[n, g] = w[g] (Kg, Cg*kD*kH*kW) @ col[n, rows of group g] -- a GEMM that
// the host runs with cuBLAS through CuPy's matmul (NumPy's matmul in the emulator).
//
// ONE THREAD PER COLUMN-MATRIX ELEMENT: the thread with global index t writes col[t] (row-major
// over (N, C*kD*kH*kW, OD*OH*OW)). Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

template <typename T>
__device__ void im2col3d(const T* x, T* col,
                         int N, int C, int D, int H, int W,
                         int OD, int OH, int OW,
                         int kD, int kH, int kW,
                         int sD, int sH, int sW,
                         int pD, int pH, int pW,
                         int dD, int dH, int dW)
{
    const int L = OD * OH * OW;           // output positions = columns
    const int rows = C * kD * kH * kW;    // (channel, tap) pairs = rows
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * rows * L) return;

    const int l = index % L;
    const int r = (index / L) % rows;
    const int n = index / (L * rows);
    const int ow = l % OW, oh = (l / OW) % OH, od = l / (OW * OH);
    const int kw = r % kW, kh = (r / kW) % kH, kd = (r / (kW * kH)) % kD, c = r / (kW * kH * kD);

    const int d = od * sD - pD + kd * dD;
    const int h = oh * sH - pH + kh * dH;
    const int x_w = ow * sW - pW + kw * dW;
    T v = 0;  // padding
    if (d >= 0 && d < D && h >= 0 && h < H && x_w >= 0 && x_w < W)
        v = x[((((long long)n * C + c) * D + d) * H + h) * W + x_w];
    col[index] = v;
}

extern "C" __global__ void im2col3d_f32(const float* x, float* col,
                                        int N, int C, int D, int H, int W, int OD, int OH, int OW,
                                        int kD, int kH, int kW, int sD, int sH, int sW,
                                        int pD, int pH, int pW, int dD, int dH, int dW)
{
    im2col3d<float>(x, col, N, C, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW,
                    dD, dH, dW);
}

extern "C" __global__ void im2col3d_f64(const double* x, double* col,
                                        int N, int C, int D, int H, int W, int OD, int OH, int OW,
                                        int kD, int kH, int kW, int sD, int sH, int sW,
                                        int pD, int pH, int pW, int dD, int dH, int dW)
{
    im2col3d<double>(x, col, N, C, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW,
                     dD, dH, dW);
}
