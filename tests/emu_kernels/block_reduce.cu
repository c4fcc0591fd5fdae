// Block reductions: every block sums blockDim.x consecutive elements of x into out[blockIdx.x].
// Tree reduction in shared memory; a __syncthreads() after every step.

// Static shared memory (fixed size: blockDim.x <= 256).
extern "C" __global__ void block_sum_static(const float* x, float* out, int n)
{
    __shared__ float s[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) s[t] += s[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// Dynamic shared memory (extern __shared__, blockDim.x * sizeof(T) bytes at launch), from a
// template device function instantiated for float and double by a macro.
template <typename T>
__device__ void block_sum(const T* x, T* out, int n)
{
    extern __shared__ double shared_raw[];  // double: aligned for float and double
    T* s = reinterpret_cast<T*>(shared_raw);
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : T(0);
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) s[t] += s[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

#define DEFINE_BLOCK_SUM(T, SUFFIX) \
    extern "C" __global__ void block_sum_extern_##SUFFIX(const T* x, T* out, int n) { block_sum<T>(x, out, n); }
DEFINE_BLOCK_SUM(float, f32)
DEFINE_BLOCK_SUM(double, f64)

// The same reduction WITHOUT the barriers between steps: a data race. Each thread runs from one
// barrier to the next in one go in the emulator, so it reads partial sums nobody has written yet.
extern "C" __global__ void block_sum_missing_barrier(const float* x, float* out, int n)
{
    __shared__ float s[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) s[t] += s[t + stride];
        // missing: __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// Two extern __shared__ names in one file alias the same dynamic buffer, as on a GPU.
extern "C" __global__ void extern_alias(int* out)
{
    extern __shared__ int ints[];
    extern __shared__ unsigned char bytes[];
    if (threadIdx.x == 0) ints[0] = 0x01020304;
    __syncthreads();
    out[threadIdx.x] = bytes[threadIdx.x];
}

// __syncthreads_count/_and/_or: barriers that also reduce a predicate over the block.
extern "C" __global__ void barrier_reductions(const int* flags, int* out)
{
    const int f = flags[blockIdx.x * blockDim.x + threadIdx.x];
    const int count = __syncthreads_count(f);
    const int all = __syncthreads_and(f);
    const int any = __syncthreads_or(f);
    if (threadIdx.x == 0) {
        out[3 * blockIdx.x + 0] = count;
        out[3 * blockIdx.x + 1] = all;
        out[3 * blockIdx.x + 2] = any;
    }
}
