// A planted bug: y[i] = x[i + 1] reads one element past the end of x for the last thread.
// Without a sanitizer the read usually returns garbage silently; under ASan it is reported.
extern "C" __global__ void shift_left(const float* x, float* y, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i + 1];
}

// The correct version, which must run cleanly under ASan.
extern "C" __global__ void shift_left_fixed(const float* x, float* y, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = i + 1 < n ? x[i + 1] : 0.0f;
}

// A planted bug in shared memory: thread 31 writes tile[32], one past the end of the static
// __shared__ array. ASan cannot see it (shared memory is one thread-local block); UBSan's bounds
// check, built into the sanitized module, reports it.
extern "C" __global__ void shared_overrun(float* y)
{
    __shared__ float tile[32];
    tile[threadIdx.x + 1] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = tile[threadIdx.x];
}
