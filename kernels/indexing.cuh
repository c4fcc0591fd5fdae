// indexing.cuh -- the index arithmetic the kernels in kernels/*.cu share.
//
// Every kernel file starts with #include "indexing.cuh"; the compilers find it through the include
// path that conv3d.cuda.sources.include_options() gives (--include-path=<the kernels directory>),
// for CuPy's RawModule, the CPU emulator and the NVRTC compile check alike. Device code only, no
// host headers (NVRTC has none).
#ifndef CONV3D_KERNELS_INDEXING_CUH
#define CONV3D_KERNELS_INDEXING_CUH

// ---- kernel parameters ----------------------------------------------------------------------
// The int parameters after the array pointers, in the order the host passes them
// (conv3d/cuda/launch.py). Each kernel's template and its extern "C" entry points use the same
// macro, so the order is written once. Shapes are upper case: input (N, C, D, H, W), output
// (N, K, OD, OH, OW); then the kernel size kD, kH, kW, the stride sD, sH, sW, the padding BEFORE
// the data pD, pH, pW (the padding after it only shows in OD, OH, OW), the dilation dD, dH, dW.

// Convolutions (ConvGeometry.kernel_args); groups splits C and K into groups of C/groups, K/groups.
#define CONV3D_PARAMS int N, int C, int D, int H, int W, int K, int OD, int OH, int OW, \
                      int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW, \
                      int dD, int dH, int dW, int groups
#define CONV3D_ARGS N, C, D, H, W, K, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW, \
                    dD, dH, dW, groups

// im2col3d and col2im3d (ConvGeometry.im2col_args): no K and no groups.
#define IM2COL3D_PARAMS int N, int C, int D, int H, int W, int OD, int OH, int OW, \
                        int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW, \
                        int dD, int dH, int dW
#define IM2COL3D_ARGS N, C, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW, dD, dH, dW

// Pooling (PoolGeometry.max_args / avg_args): NC = N*C planes, each pooled on its own, and
// symmetric padding. Average pooling has no dilation but a count_include_pad flag (0 or 1).
#define MAX_POOL3D_PARAMS int NC, int D, int H, int W, int OD, int OH, int OW, \
                          int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW, \
                          int dD, int dH, int dW
#define MAX_POOL3D_ARGS NC, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW, dD, dH, dW
#define AVG_POOL3D_PARAMS int NC, int D, int H, int W, int OD, int OH, int OW, \
                          int kD, int kH, int kW, int sD, int sH, int sW, int pD, int pH, int pW, \
                          int count_include_pad
#define AVG_POOL3D_ARGS NC, D, H, W, OD, OH, OW, kD, kH, kW, sD, sH, sW, pD, pH, pW, \
                        count_include_pad

// Resizing (upsample_trilinear_*, launch.resize_args): NC planes of (D, H, W) resized to
// (OD, OH, OW), each on its own.
#define RESIZE3D_PARAMS int NC, int D, int H, int W, int OD, int OH, int OW
#define RESIZE3D_ARGS NC, D, H, W, OD, OH, OW

// ---- which element a thread computes ------------------------------------------------------

// The global index of this thread in a 1-D grid of 1-D blocks: blockIdx.x * blockDim.x +
// threadIdx.x. The one-thread-per-element kernels compute the element with this flat index.
__device__ inline int global_thread_index()
{
    return blockIdx.x * blockDim.x + threadIdx.x;
}

// Where the flat index `index` lies in a row-major array of shape (planes, D, H, W), that is
//   index = ((plane * D + d) * H + h) * W + w        (w varies fastest).
// For a 5-D array (N, C, D, H, W) the plane is n*C + c: n = plane / C, c = plane % C.
struct Position3d {
    int plane, d, h, w;
};

__device__ inline Position3d unflatten3d(int index, int D, int H, int W)
{
    Position3d p;
    p.w = index % W;
    index /= W;
    p.h = index % H;
    index /= H;
    p.d = index % D;
    p.plane = index / D;
    return p;
}

// ---- convolution windows, seen from the input (gathers) -----------------------------------

// Along one axis, output position o's window puts kernel tap t on input position
// o*s - p + t*dil. Conversely: the output position whose window puts tap t on input position i,
// that is the o with o*s == i + p - t*dil, or -1 when there is none (i + p - t*dil is negative or
// not a multiple of the stride s, or o >= O). Used by the gathers (backward_input, col2im3d).
__device__ inline int output_of_tap(int i, int t, int s, int p, int dil, int O)
{
    const int num = i + p - t * dil;  // = o * s
    if (num < 0 || num % s != 0 || num / s >= O) return -1;
    return num / s;
}

// ---- average-pooling windows --------------------------------------------------------------

// Input positions [start, end) along one axis.
struct Span {
    int start, end;
};

// Along one axis of n input positions, the window of output position o (kernel k, stride s,
// padding p on both sides): [o*s - p, o*s - p + k), cut at the end of the padded extent n + p
// (only ceil_mode's last window sticks out that far). It may still start in the padding.
__device__ inline Span pool_window(int o, int k, int s, int p, int n)
{
    const int start = o * s - p;
    Span span = {start, min(start + k, n + p)};
    return span;
}

// The part of `span` that holds real data: span clipped to [0, n).
__device__ inline Span clip_to_data(Span span, int n)
{
    Span real = {max(span.start, 0), min(span.end, n)};
    return real;
}

__device__ inline int length(Span span)
{
    return span.end - span.start;
}

// The number PyTorch's avg_pool3d divides the window sum by (without divisor_override): the
// window's size, padding included when count_include_pad != 0, else its real elements only.
__device__ inline int avg_pool_divisor(Span wd, Span wh, Span ww, int D, int H, int W,
                                       int count_include_pad)
{
    if (count_include_pad) return length(wd) * length(wh) * length(ww);
    return length(clip_to_data(wd, D)) * length(clip_to_data(wh, H)) * length(clip_to_data(ww, W));
}

// ---- resizing tables (upsample_trilinear_forward / _backward) ------------------------------

// A separable resize (trilinear, or nearest as its one-tap case) gives output position o of one
// axis RESIZE_TAPS input taps: tap a reads input tap_index[o*RESIZE_TAPS + a] with weight
// tap_weight[o*RESIZE_TAPS + a]. The host builds the tables from PyTorch's index rules
// (conv3d/ops/resample.py) and stacks the three axes into one table: the rows of the depth axis
// first (OD of them), then height (OH), then width (OW). A tap of weight 0 is never read, so
// nearest copies exactly (no 0 * inf = nan from the unused tap).
#define RESIZE_TAPS 2

// The backward's out_span table holds RESIZE_SPAN_FIELDS ints per input position: the outputs
// [start, end) that may have a tap on it.
#define RESIZE_SPAN_FIELDS 2

// The row of the stacked table that holds output position o of axis 0 (depth), 1 (height) or
// 2 (width); the same stacking for the backward's per-input rows, with input sizes.
__device__ inline int resize_row(int axis, int o, int size_d, int size_h)
{
    return o + (axis > 0 ? size_d : 0) + (axis > 1 ? size_h : 0);
}

#endif  // CONV3D_KERNELS_INDEXING_CUH
