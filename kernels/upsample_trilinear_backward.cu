// upsample_trilinear_backward.cu -- gradient of the trilinear (or nearest) resize, as a gather.
//
//   gx[nc, d, h, w] = sum over the output voxels (od, oh, ow) of
//                     vD(od, d) * vH(oh, h) * vW(ow, w) * gy[nc, od, oh, ow]
//
// where vD(od, d) = sum of wD[od][a] over the taps a with iD[od][a] == d: the weight output od
// gives input d in the forward (upsample_trilinear_forward.cu; same tables), so this is the
// forward's transpose. Only the outputs in out_span (one row per input position, stacked like the
// tap tables: first D depth rows, then H, then W) can have a tap on input d: span [start, end).
//
// ONE THREAD PER INPUT ELEMENT: the thread with global index t computes gx[t] (row-major over
// (N*C, D, H, W)) and loops over the outputs of its three spans. Why a gather and not a scatter:
// when upsampling, several outputs read each input, so one thread per output adding into its
// 8 inputs would collide and need atomicAdd, whose order (and so the float result's last bits)
// changes from run to run. Here every gx element is written once, by its own thread, summing in
// a fixed order: no atomics, the same bits every run.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index, unflatten3d, resize_row, RESIZE_TAPS, ...

// The weight that output row `row` (its RESIZE_TAPS taps) gives input position i: 0 if none.
template <typename T>
__device__ T tap_weight_on(const int* tap_index, const T* tap_weight, int row, int i)
{
    T weight = 0;
    for (int a = 0; a < RESIZE_TAPS; ++a)
        if (tap_index[row * RESIZE_TAPS + a] == i) weight += tap_weight[row * RESIZE_TAPS + a];
    return weight;
}

template <typename T>
__device__ void upsample_trilinear_backward(const T* gy, T* gx, const int* tap_index,
                                            const T* tap_weight, const int* out_span,
                                            RESIZE3D_PARAMS)
{
    const int index = global_thread_index();
    if (index >= NC * D * H * W) return;

    const Position3d in = unflatten3d(index, D, H, W);
    const int span_d = resize_row(0, in.d, D, H) * RESIZE_SPAN_FIELDS;  // (start, end)
    const int span_h = resize_row(1, in.h, D, H) * RESIZE_SPAN_FIELDS;
    const int span_w = resize_row(2, in.w, D, H) * RESIZE_SPAN_FIELDS;
    const T* gy_plane = gy + (long long)in.plane * OD * OH * OW;

    // the spans are clipped to the output: a bad table cannot read outside gy
    const int od_end = min(out_span[span_d + 1], OD), oh_end = min(out_span[span_h + 1], OH);
    const int ow_end = min(out_span[span_w + 1], OW);
    T sum = 0;
    for (int od = max(out_span[span_d], 0); od < od_end; ++od) {
        const T weight_d = tap_weight_on(tap_index, tap_weight, resize_row(0, od, OD, OH), in.d);
        if (weight_d == 0) continue;
        for (int oh = max(out_span[span_h], 0); oh < oh_end; ++oh) {
            const T weight_h = tap_weight_on(tap_index, tap_weight, resize_row(1, oh, OD, OH),
                                             in.h);
            if (weight_h == 0) continue;
            for (int ow = max(out_span[span_w], 0); ow < ow_end; ++ow) {
                const T weight_w = tap_weight_on(tap_index, tap_weight,
                                                 resize_row(2, ow, OD, OH), in.w);
                if (weight_w == 0) continue;
                sum += weight_d * weight_h * weight_w * gy_plane[(od * OH + oh) * OW + ow];
            }
        }
    }
    gx[index] = sum;
}

// The entry points the host launches, one per element type.
extern "C" __global__ void upsample_trilinear_backward_f32(const float* gy, float* gx,
                                                           const int* tap_index,
                                                           const float* tap_weight,
                                                           const int* out_span, RESIZE3D_PARAMS)
{
    upsample_trilinear_backward(gy, gx, tap_index, tap_weight, out_span, RESIZE3D_ARGS);
}

extern "C" __global__ void upsample_trilinear_backward_f64(const double* gy, double* gx,
                                                           const int* tap_index,
                                                           const double* tap_weight,
                                                           const int* out_span, RESIZE3D_PARAMS)
{
    upsample_trilinear_backward(gy, gx, tap_index, tap_weight, out_span, RESIZE3D_ARGS);
}
