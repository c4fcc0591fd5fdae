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

#include "indexing.cuh"  // global_thread_index, unflatten3d, output_of_tap, CONV3D_PARAMS

template <typename T>
__device__ void conv3d_backward_input(const T* gy, const T* w, T* gx, CONV3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= N * C * D * H * W) return;

    const Position3d in = unflatten3d(index, D, H, W);
    const int d = in.d, h = in.h, x_w = in.w;
    const int c = in.plane % C, n = in.plane / C;

    const int Cg = C / groups, Kg = K / groups;
    const int g = c / Cg;  // the group of input channel c
    const int taps = kD * kH * kW;

    T sum = 0;
    for (int kd = 0; kd < kD; ++kd) {
        const int od = output_of_tap(d, kd, sD, pD, dD, OD);  // the window putting tap kd on d
        if (od < 0) continue;                                  // (if any)
        for (int kh = 0; kh < kH; ++kh) {
            const int oh = output_of_tap(h, kh, sH, pH, dH, OH);
            if (oh < 0) continue;
            for (int kw = 0; kw < kW; ++kw) {
                const int ow = output_of_tap(x_w, kw, sW, pW, dW, OW);
                if (ow < 0) continue;
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

// The entry points the host launches, one per element type.
extern "C" __global__ void conv3d_backward_input_f32(const float* gy, const float* w, float* gx,
                                                     CONV3D_PARAMS)
{
    conv3d_backward_input(gy, w, gx, CONV3D_ARGS);
}

extern "C" __global__ void conv3d_backward_input_f64(const double* gy, const double* w,
                                                     double* gx, CONV3D_PARAMS)
{
    conv3d_backward_input(gy, w, gx, CONV3D_ARGS);
}
