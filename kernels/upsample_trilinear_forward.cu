// upsample_trilinear_forward.cu -- resize a volume by trilinear (or nearest) interpolation.
//
//   y[nc, od, oh, ow] = sum over the taps a, b, e < RESIZE_TAPS of
//                       wD[od][a] * wH[oh][b] * wW[ow][e] * x[nc, iD[od][a], iH[oh][b], iW[ow][e]]
//
// Trilinear interpolation is separable: each output position of an axis mixes (at most) two
// neighbouring input positions, with weights (1 - l, l), and a voxel's weight is the product of
// its three axes' weights. Nearest is the same sum with one tap of weight 1 per axis. The tables
// (iD, wD), (iH, wH), (iW, wW) come from the host, built from PyTorch's index rules
// (conv3d/ops/resample.py), stacked in one table per kind (resize_row in indexing.cuh), so both
// modes and align_corners share this kernel and the index rules live in one place.
//
// ONE THREAD PER OUTPUT ELEMENT: the thread with global index t computes y[t] (row-major over
// (N*C, OD, OH, OW)); it reads at most 8 input voxels of its own plane and writes one value.
// Consecutive threads compute consecutive ow, whose taps are neighbouring input voxels.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index, unflatten3d, resize_row, RESIZE_TAPS, ...

template <typename T>
__device__ void upsample_trilinear_forward(const T* x, T* y, const int* tap_index,
                                           const T* tap_weight, RESIZE3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= NC * OD * OH * OW) return;

    const Position3d out = unflatten3d(index, OD, OH, OW);
    const int row_d = resize_row(0, out.d, OD, OH) * RESIZE_TAPS;
    const int row_h = resize_row(1, out.h, OD, OH) * RESIZE_TAPS;
    const int row_w = resize_row(2, out.w, OD, OH) * RESIZE_TAPS;
    const T* x_plane = x + (long long)out.plane * D * H * W;

    T sum = 0;
    for (int a = 0; a < RESIZE_TAPS; ++a) {
        const T weight_d = tap_weight[row_d + a];
        const int d = tap_index[row_d + a];
        if (weight_d == 0 || d < 0 || d >= D) continue;  // an unused tap (or a bad table)
        for (int b = 0; b < RESIZE_TAPS; ++b) {
            const T weight_h = tap_weight[row_h + b];
            const int h = tap_index[row_h + b];
            if (weight_h == 0 || h < 0 || h >= H) continue;
            for (int e = 0; e < RESIZE_TAPS; ++e) {
                const T weight_w = tap_weight[row_w + e];
                const int x_w = tap_index[row_w + e];
                if (weight_w == 0 || x_w < 0 || x_w >= W) continue;
                sum += weight_d * weight_h * weight_w * x_plane[(d * H + h) * W + x_w];
            }
        }
    }
    y[index] = sum;
}

// The entry points the host launches, one per element type.
extern "C" __global__ void upsample_trilinear_forward_f32(const float* x, float* y,
                                                          const int* tap_index,
                                                          const float* tap_weight,
                                                          RESIZE3D_PARAMS)
{
    upsample_trilinear_forward(x, y, tap_index, tap_weight, RESIZE3D_ARGS);
}

extern "C" __global__ void upsample_trilinear_forward_f64(const double* x, double* y,
                                                          const int* tap_index,
                                                          const double* tap_weight,
                                                          RESIZE3D_PARAMS)
{
    upsample_trilinear_forward(x, y, tap_index, tap_weight, RESIZE3D_ARGS);
}
