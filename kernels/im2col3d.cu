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

#include "indexing.cuh"  // global_thread_index, unflatten3d, IM2COL3D_PARAMS (N, C, D, ... dW)

template <typename T>
__device__ void im2col3d(const T* x, T* col, IM2COL3D_PARAMS)
{
    const int L = OD * OH * OW;           // output positions = columns
    const int rows = C * kD * kH * kW;    // (channel, tap) pairs = rows
    const int index = global_thread_index();
    if (index >= N * rows * L) return;

    const int l = index % L;
    const int r = (index / L) % rows;
    const int n = index / (L * rows);
    const Position3d out = unflatten3d(l, OD, OH, OW);  // out.plane is 0: l < L
    const Position3d tap = unflatten3d(r, kD, kH, kW);  // tap.plane is the channel
    const int od = out.d, oh = out.h, ow = out.w;
    const int kd = tap.d, kh = tap.h, kw = tap.w, c = tap.plane;

    const int d = od * sD - pD + kd * dD;
    const int h = oh * sH - pH + kh * dH;
    const int x_w = ow * sW - pW + kw * dW;
    T v = 0;  // padding
    if (d >= 0 && d < D && h >= 0 && h < H && x_w >= 0 && x_w < W)
        v = x[((((long long)n * C + c) * D + d) * H + h) * W + x_w];
    col[index] = v;
}

// The entry points the host launches, one per element type.
extern "C" __global__ void im2col3d_f32(const float* x, float* col, IM2COL3D_PARAMS)
{
    im2col3d(x, col, IM2COL3D_ARGS);
}

extern "C" __global__ void im2col3d_f64(const double* x, double* col, IM2COL3D_PARAMS)
{
    im2col3d(x, col, IM2COL3D_ARGS);
}
