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

#include "indexing.cuh"  // global_thread_index, unflatten3d, output_of_tap, IM2COL3D_PARAMS

template <typename T>
__device__ void col2im3d(const T* col, T* gx, IM2COL3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= N * C * D * H * W) return;

    const Position3d in = unflatten3d(index, D, H, W);
    const int d = in.d, h = in.h, x_w = in.w;
    const int c = in.plane % C, n = in.plane / C;

    const int L = OD * OH * OW;
    const int taps = kD * kH * kW;
    const T* col_c = col + ((long long)n * C + c) * taps * L;  // the taps rows of channel c

    T sum = 0;
    for (int kd = 0; kd < kD; ++kd) {
        const int od = output_of_tap(d, kd, sD, pD, dD, OD);  // the output using tap kd here
        if (od < 0) continue;                                  // (if any)
        for (int kh = 0; kh < kH; ++kh) {
            const int oh = output_of_tap(h, kh, sH, pH, dH, OH);
            if (oh < 0) continue;
            for (int kw = 0; kw < kW; ++kw) {
                const int ow = output_of_tap(x_w, kw, sW, pW, dW, OW);
                if (ow < 0) continue;
                const int r = (kd * kH + kh) * kW + kw;
                sum += col_c[(long long)r * L + (od * OH + oh) * OW + ow];
            }
        }
    }
    gx[index] = sum;
}

// The entry points the host launches, one per element type.
extern "C" __global__ void col2im3d_f32(const float* col, float* gx, IM2COL3D_PARAMS)
{
    col2im3d(col, gx, IM2COL3D_ARGS);
}

extern "C" __global__ void col2im3d_f64(const double* col, double* gx, IM2COL3D_PARAMS)
{
    col2im3d(col, gx, IM2COL3D_ARGS);
}
