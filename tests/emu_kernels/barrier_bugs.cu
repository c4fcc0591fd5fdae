// Two classic __syncthreads() bugs. On a GPU both hang or silently corrupt shared memory; the
// emulator reports them with the kernel, block, threads and source line.

// Early return before a barrier: threads past the end return, the others wait at the barrier.
extern "C" __global__ void early_return(const float* x, float* y, int n)
{
    __shared__ float s[128];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    s[threadIdx.x] = x[i];
    __syncthreads();
    y[i] = s[blockDim.x - 1 - threadIdx.x];
}

// Divergent barrier: odd and even threads wait at two different __syncthreads().
extern "C" __global__ void divergent_barrier(float* y)
{
    __shared__ float s[128];
    const int t = threadIdx.x;
    if (t % 2 == 0) {
        s[t] = 1.0f;
        __syncthreads();
    } else {
        s[t] = 2.0f;
        __syncthreads();
    }
    y[t] = s[t ^ 1];
}
