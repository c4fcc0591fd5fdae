// Kernels that crash the process; the tests run them in a subprocess.

// 256 KiB of local variables per thread: more than the default 64 KiB fiber stack.
extern "C" __global__ void big_locals(float* y, int n)
{
    volatile float scratch[65536];
    for (int i = 0; i < n; ++i) scratch[i] = (float)i;
    y[threadIdx.x] = scratch[n - 1];
}

// Writes through a wild pointer (an address no allocation owns).
extern "C" __global__ void wild_pointer(float* y, long long address)
{
    float* p = reinterpret_cast<float*>(address);
    p[threadIdx.x] = y[threadIdx.x];
}
