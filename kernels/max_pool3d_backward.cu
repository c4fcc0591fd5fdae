// max_pool3d_backward.cu -- gradient of max pooling: route each output's gradient to its argmax.
//
//   gx[nc, indices[nc, o]] += gy[nc, o]   for every output position o of every channel nc,
//
// where indices are the flat positions in the D*H*W plane saved by max_pool3d_forward.
// gx must be zero-filled before the launch (the host allocates it with zeros).
//
// ONE BLOCK PER CHANNEL PLANE, OWNER-COMPUTES: block nc handles plane nc; its thread j OWNS the
// input positions p with p % blockDim.x == j and is the only thread that ever writes gx[nc, p].
// The block walks the plane's outputs in chunks of blockDim.x:
//   1. thread t stages (indices, gy) of output chunk + t in shared memory; __syncthreads();
//   2. every thread scans the whole chunk IN OUTPUT ORDER and adds the gradients whose target
//      it owns; __syncthreads() before the next chunk overwrites the stage.
// Why no atomicAdd: when windows overlap (stride < kernel size) one input element can be the
// argmax of several windows. A scatter with float atomicAdd adds them in whatever order the
// threads arrive, so the last bits change from GPU run to run (the emulator, running threads in
// a fixed order, cannot show it). Here each gx element is summed by one thread in increasing
// output order: the same bits every run, and the same order as NumPy's add.at on the CPU.
// Why not a gather over windows: this backward -- like PyTorch's -- receives the window
// geometry only through the indices, so an input element cannot list the windows holding it.
// The price: each thread reads every staged pair of its plane (plane outputs x blockDim.x
// shared-memory reads per block, instead of one atomic per output).
// Shared memory (dynamic, blockDim.x * (8 + sizeof(T)) bytes): blockDim.x long long targets,
// then blockDim.x gradients. Launch: grid (N*C, 1, 1), 1-D blocks (conv3d/cuda/launch.py).

#include "indexing.cuh"  // the shared header every kernel ships with (unused names cost nothing)

template <typename T>
__device__ void max_pool3d_backward(const T* gy, const long long* indices, T* gx,
                                    int NC, int plane_size, int outputs_per_plane)
{
    extern __shared__ double shared_raw[];  // declared as double: aligned for float and double
    long long* staged_target = reinterpret_cast<long long*>(shared_raw);
    T* staged_grad = reinterpret_cast<T*>(staged_target + blockDim.x);

    const int nc = blockIdx.x;
    if (nc >= NC) return;  // the whole block leaves together: no __syncthreads() is skipped
    const long long first = (long long)nc * outputs_per_plane;
    T* plane = gx + (long long)nc * plane_size;
    const int owner = threadIdx.x;

    for (int chunk = 0; chunk < outputs_per_plane; chunk += blockDim.x) {
        const int o = chunk + threadIdx.x;
        staged_target[threadIdx.x] = o < outputs_per_plane ? indices[first + o] : -1;
        staged_grad[threadIdx.x] = o < outputs_per_plane ? gy[first + o] : T(0);
        __syncthreads();
        const int count = min((int)blockDim.x, outputs_per_plane - chunk);
        for (int i = 0; i < count; ++i) {
            const long long target = staged_target[i];
            // a window of padding only (target -1) credits no input
            if (target < 0 || target >= plane_size) continue;
            if ((int)(target % blockDim.x) == owner) plane[target] += staged_grad[i];
        }
        __syncthreads();
    }
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
