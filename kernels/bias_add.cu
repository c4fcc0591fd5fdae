// bias_add.cu -- add a per-channel bias to a convolution's output, in place.
//
//   y[n, k, od, oh, ow] += b[k]
//
// ONE THREAD PER ELEMENT of y: the thread with global index t updates y[t] (row-major over
// (N, K, spatial)), where spatial = OD*OH*OW, so its channel is k = (t / spatial) % K.
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index

template <typename T>
__device__ void bias_add(T* y, const T* b, int N, int K, int spatial)
{
    const int index = global_thread_index();
    if (index >= N * K * spatial) return;
    y[index] += b[(index / spatial) % K];
}

extern "C" __global__ void bias_add_f32(float* y, const float* b, int N, int K, int spatial)
{
    bias_add<float>(y, b, N, K, spatial);
}

extern "C" __global__ void bias_add_f64(double* y, const double* b, int N, int K, int spatial)
{
    bias_add<double>(y, b, N, K, spatial);
}
