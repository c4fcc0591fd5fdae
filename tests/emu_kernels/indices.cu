// Each thread writes its blockIdx, threadIdx, blockDim and gridDim (12 ints) at the slot of its
// global linear thread id, so the test can check the mapping for 3-D grids and blocks.
extern "C" __global__ void write_indices(int* out)
{
    const int block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const int thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    const int id = block * (blockDim.x * blockDim.y * blockDim.z) + thread;
    int* o = out + 12 * id;
    o[0] = blockIdx.x;  o[1] = blockIdx.y;  o[2] = blockIdx.z;
    o[3] = threadIdx.x; o[4] = threadIdx.y; o[5] = threadIdx.z;
    o[6] = blockDim.x;  o[7] = blockDim.y;  o[8] = blockDim.z;
    o[9] = gridDim.x;   o[10] = gridDim.y;  o[11] = gridDim.z;
}

// Shared memory that no thread wrote: even threads write their slot, every thread reads its own.
// On the emulator the odd slots hold the 0xFF poison: NaN as float, -1 as int.
extern "C" __global__ void read_unwritten_shared(float* out_f, int* out_i)
{
    __shared__ float sf[64];
    __shared__ int si[64];
    const int t = threadIdx.x;
    if (t % 2 == 0) {
        sf[t] = (float)t;
        si[t] = t;
    }
    __syncthreads();
    out_f[blockIdx.x * blockDim.x + t] = sf[t];
    out_i[blockIdx.x * blockDim.x + t] = si[t];
}

// atomicAdd on float (all threads of all blocks add into out[0]) and on int (a histogram).
extern "C" __global__ void atomic_sum_and_histogram(const float* x, const int* bins, float* total,
                                                    int* histogram, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        atomicAdd(total, x[i]);
        atomicAdd(&histogram[bins[i]], 1);
    }
}

// Every scalar type the kernels pass: the bytes must arrive unchanged.
extern "C" __global__ void echo_scalars(double* out_d, long long* out_ll, int i, float f, double d,
                                        long long ll, unsigned int u)
{
    out_d[0] = i;
    out_d[1] = f;
    out_d[2] = d;
    out_ll[0] = ll;
    out_ll[1] = u;
}

// -inf spelled without INFINITY (NVRTC has no host headers), and a few math built-ins.
extern "C" __global__ void math_builtins(const float* x, float* y)
{
    const float neg_inf = -__int_as_float(0x7f800000);
    const float v = x[threadIdx.x];
    y[4 * threadIdx.x + 0] = fmaxf(neg_inf, v);
    y[4 * threadIdx.x + 1] = rsqrtf(fabsf(v) + 1.0f);
    y[4 * threadIdx.x + 2] = __fdividef(v, 2.0f) + min(1, 2) + max(0.5f, 0.25f);
    y[4 * threadIdx.x + 3] = neg_inf;
}

// __trap() aborts the launch (on a GPU the launch fails with an "unspecified launch failure").
extern "C" __global__ void trap_on_negative(const float* x)
{
    if (x[blockIdx.x * blockDim.x + threadIdx.x] < 0.0f) __trap();
}
