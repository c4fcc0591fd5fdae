// max_pool3d_backward.cu -- gradient of max pooling: route each output's gradient to its argmax.
//
//   gx[nc, indices[nc, o]] += gy[nc, o]   for every output position o of every channel nc,
//
// where indices are the flat positions in the D*H*W plane saved by max_pool3d_forward.
// gx must be zero-filled before the launch (the host allocates it with zeros).
//
// ONE THREAD PER OUTPUT ELEMENT: the thread with global index t sends gy[t] (row-major over
// (N*C, OD, OH, OW)) to gx.
//
// Why a scatter with atomicAdd and not a gather: when windows overlap (stride < kernel size) one
// input element can be the argmax of several windows, so several threads may add into the same
// gx element at once; atomicAdd makes each read-modify-write indivisible. A gather (one thread per
// input element, scanning the windows that could contain it and testing indices == mine) would
// avoid atomics, but it needs the window geometry (kernel, stride, padding, dilation), which this
// backward -- like PyTorch's -- receives only through the indices. Atomics to different addresses
// do not wait for each other; they serialise only where overlapping windows share an argmax.
// The price: there, the order of the float additions, and so the last bits, can differ between
// GPU runs (the emulator runs threads in a fixed order and is deterministic).
// Launch: 1-D grid of 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // global_thread_index

template <typename T>
__device__ void max_pool3d_backward(const T* gy, const long long* indices, T* gx,
                                    int NC, int plane_size, int outputs_per_plane)
{
    const int index = global_thread_index();
    if (index >= NC * outputs_per_plane) return;

    const int nc = index / outputs_per_plane;
    const long long target = indices[index];
    if (target < 0 || target >= plane_size) return;  // a window of padding only: no input to credit
    atomicAdd(&gx[(long long)nc * plane_size + target], gy[index]);
}

extern "C" __global__ void max_pool3d_backward_f32(const float* gy, const long long* indices,
                                                   float* gx, int NC, int plane_size,
                                                   int outputs_per_plane)
{
    max_pool3d_backward<float>(gy, indices, gx, NC, plane_size, outputs_per_plane);
}

extern "C" __global__ void max_pool3d_backward_f64(const double* gy, const long long* indices,
                                                   double* gx, int NC, int plane_size,
                                                   int outputs_per_plane)
{
    max_pool3d_backward<double>(gy, indices, gx, NC, plane_size, outputs_per_plane);
}
