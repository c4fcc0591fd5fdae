// cuda_emu.h -- maps the CUDA built-ins onto the CPU, so that g++ compiles an UNMODIFIED .cu file.
//
// The emulator (conv3d.cuda.emulator) compiles a kernel file with
//     g++ -O2 -std=c++17 -fPIC -shared -include cuda_emu.h kernels/foo.cu runtime.cpp
// and launches it with the same grid and block as a GPU would. How each built-in is emulated:
//
//   __global__, __device__, __host__   nothing: on the CPU every function is a host function.
//   threadIdx, blockIdx, blockDim,     read-only views of globals that the runtime (runtime.cpp)
//   gridDim                            sets before it resumes a thread.
//   __syncthreads()                    a call into the runtime: the thread (a *fiber*, see
//                                      runtime.cpp) parks itself and the runtime resumes the
//                                      next thread of the block. When every thread of the block
//                                      is parked at the same barrier, they all go on.
//   __shared__                         thread_local. All threads of a block are fibers on ONE OS
//                                      thread and blocks run one after another, so "one copy per
//                                      OS thread" is exactly "one copy per block". The runtime
//                                      fills it with 0xFF bytes (NaN for floats) before each block.
//   extern __shared__ T name[]         the same, aliased by the generated glue to one buffer of
//                                      EMU_MAX_DYN_SHARED bytes (dynamic shared memory).
//   atomicAdd and friends              plain read-modify-write: fibers switch only at barriers and
//                                      nothing else runs during a launch, so nothing can interleave.
//   warp intrinsics (__shfl_*_sync,    refused at COMPILE time with a static_assert: fibers run one
//   __ballot_sync, warpSize, ...)      at a time, so there are no warps executing in lockstep.
//   nvcuda::wmma (#include <mma.h>)    the shim include/mma.h: each fragment operation is a WARP
//                                      COLLECTIVE (emu::warp_collective below): every lane of the
//                                      warp parks, then the operation runs once for the warp.
//
// Nothing here is CUDA's own code; it is a small, readable stand-in for the subset of CUDA C that
// the kernels in kernels/ use.
#pragma once

// Every standard header the emulator uses comes first, before any CUDA macro exists: libstdc++
// itself spells attributes such as __attribute__((__noinline__)) that the macros below redefine.
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// ---------------------------------------------------------------------------------------------
// Qualifiers and attributes
// ---------------------------------------------------------------------------------------------
#ifdef EMU_SCAN
// The Python side preprocesses the source once with -DEMU_SCAN to find the kernels (and the
// extern __shared__ arrays) after macro expansion; these markers survive preprocessing.
#define __global__ __emu_global__
#define __shared__ __emu_shared__
#else
#define __global__
#define __shared__ thread_local
#endif
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

// NVRTC has no host headers, so INFINITY and NAN do not exist there: a kernel that compiles here
// but not on a GPU would be a trap for a student without NVRTC. Refuse them the same way.
#undef INFINITY
#undef NAN
#undef HUGE_VALF
#define EMU_NOT_IN_NVRTC(name, fix)                                                              \
    ([]() -> float {                                                                             \
        static_assert(sizeof(int) == 0, "cuda-emu: " name " does not exist in NVRTC (no host "   \
                                        "headers on the GPU side); " fix);                       \
        return 0.0f;                                                                             \
    }())
#define INFINITY EMU_NOT_IN_NVRTC("INFINITY", "spell +inf as __int_as_float(0x7f800000)")
#define HUGE_VALF EMU_NOT_IN_NVRTC("HUGE_VALF", "spell +inf as __int_as_float(0x7f800000)")
#define NAN EMU_NOT_IN_NVRTC("NAN", "spell NaN as __int_as_float(0x7fffffff)")

// ---------------------------------------------------------------------------------------------
// Vector types and the index built-ins
// ---------------------------------------------------------------------------------------------
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct __align__(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(16) double2 { double x, y; };
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

namespace emu {
// Set by the runtime before it resumes a thread (runtime.cpp). Only this OS thread runs kernels
// of this module while a launch is in progress (the launch holds a lock).
extern uint3 g_threadIdx;
extern uint3 g_blockIdx;
extern dim3 g_blockDim;
extern dim3 g_gridDim;

// The barrier: park this thread until every thread of the block has reached a barrier.
// `op` 0 is a plain __syncthreads(); 1, 2, 3 are __syncthreads_count/_and/_or of `predicate`.
int barrier(int op, int predicate, const char* file, int line);
// Abort the launch with a message (like a device-side trap, which fails the launch on a GPU).
[[noreturn]] void trap(const char* what, const char* file, int line);

// A warp-collective operation (the WMMA fragment operations of include/mma.h). A warp is 32
// consecutive threads of the block in linear order (x fastest), as on a GPU. The calling thread
// parks like at a barrier, with `record` (the lane's arguments, on its own stack); when all 32
// lanes of its warp wait at the same call (same `what`, file and line), the runtime calls
// fn(records of lanes 0..31) once, then the lanes go on. Lanes of one warp that wait at
// different places, or a warp of fewer than 32 threads, fail the launch (a hang or garbage on a
// GPU). fn returns false with a message in err when the lanes misuse the operation.
using WarpFn = bool (*)(void* const* lanes, int count, char* err, std::size_t errlen);
void warp_collective(const char* what, WarpFn fn, void* record, const char* file, int line);
constexpr int kWarpSize = 32;
}  // namespace emu

#define threadIdx (static_cast<const uint3&>(::emu::g_threadIdx))
#define blockIdx (static_cast<const uint3&>(::emu::g_blockIdx))
#define blockDim (static_cast<const dim3&>(::emu::g_blockDim))
#define gridDim (static_cast<const dim3&>(::emu::g_gridDim))

#define __syncthreads() ((void)::emu::barrier(0, 0, __FILE__, __LINE__))
#define __syncthreads_count(p) ::emu::barrier(1, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_and(p) ::emu::barrier(2, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_or(p) ::emu::barrier(3, (p) ? 1 : 0, __FILE__, __LINE__)
#define __trap() ::emu::trap("__trap() called", __FILE__, __LINE__)
// One block runs at a time on one OS thread: memory is always coherent, fences are no-ops
// (kept as compiler barriers).
#define __threadfence() __asm__ __volatile__("" ::: "memory")
#define __threadfence_block() __asm__ __volatile__("" ::: "memory")

// ---------------------------------------------------------------------------------------------
// Warp-level intrinsics: refused at compile time.
// ---------------------------------------------------------------------------------------------
#define EMU_WARP_REFUSED(name)                                                                   \
    ([]() -> int {                                                                               \
        static_assert(sizeof(int) == 0,                                                          \
                      "cuda-emu: the warp-level intrinsic " name " is not supported. The "      \
                      "emulator runs the threads of a block one at a time (as fibers that "      \
                      "switch at __syncthreads), so there are no warps executing in lockstep. "  \
                      "Exchange values through __shared__ memory and __syncthreads() instead."); \
        return 0;                                                                                \
    }())
#define __shfl_sync(...) EMU_WARP_REFUSED("__shfl_sync")
#define __shfl_up_sync(...) EMU_WARP_REFUSED("__shfl_up_sync")
#define __shfl_down_sync(...) EMU_WARP_REFUSED("__shfl_down_sync")
#define __shfl_xor_sync(...) EMU_WARP_REFUSED("__shfl_xor_sync")
#define __shfl(...) EMU_WARP_REFUSED("__shfl")
#define __shfl_up(...) EMU_WARP_REFUSED("__shfl_up")
#define __shfl_down(...) EMU_WARP_REFUSED("__shfl_down")
#define __shfl_xor(...) EMU_WARP_REFUSED("__shfl_xor")
#define __ballot_sync(...) EMU_WARP_REFUSED("__ballot_sync")
#define __ballot(...) EMU_WARP_REFUSED("__ballot")
#define __any_sync(...) EMU_WARP_REFUSED("__any_sync")
#define __all_sync(...) EMU_WARP_REFUSED("__all_sync")
#define __uni_sync(...) EMU_WARP_REFUSED("__uni_sync")
#define __any(...) EMU_WARP_REFUSED("__any")
#define __all(...) EMU_WARP_REFUSED("__all")
#define __activemask(...) EMU_WARP_REFUSED("__activemask")
#define __syncwarp(...) EMU_WARP_REFUSED("__syncwarp")
#define __match_any_sync(...) EMU_WARP_REFUSED("__match_any_sync")
#define __match_all_sync(...) EMU_WARP_REFUSED("__match_all_sync")
#define __reduce_add_sync(...) EMU_WARP_REFUSED("__reduce_add_sync")
#define __reduce_min_sync(...) EMU_WARP_REFUSED("__reduce_min_sync")
#define __reduce_max_sync(...) EMU_WARP_REFUSED("__reduce_max_sync")
#define __reduce_and_sync(...) EMU_WARP_REFUSED("__reduce_and_sync")
#define __reduce_or_sync(...) EMU_WARP_REFUSED("__reduce_or_sync")
#define __reduce_xor_sync(...) EMU_WARP_REFUSED("__reduce_xor_sync")
#define warpSize EMU_WARP_REFUSED("warpSize")

// ---------------------------------------------------------------------------------------------
// Atomics. Correct without atomic instructions: within a launch only one fiber runs at a time and
// fibers switch only inside __syncthreads(), never in the middle of a read-modify-write.
// ---------------------------------------------------------------------------------------------
#define EMU_ATOMIC_ADD(T)                                                                        \
    inline T atomicAdd(T* address, T value) { T old = *address; *address = old + value; return old; }
EMU_ATOMIC_ADD(float)
EMU_ATOMIC_ADD(double)
EMU_ATOMIC_ADD(int)
EMU_ATOMIC_ADD(unsigned int)
EMU_ATOMIC_ADD(unsigned long long)
#undef EMU_ATOMIC_ADD
inline int atomicSub(int* a, int v) { int old = *a; *a = old - v; return old; }
inline unsigned int atomicSub(unsigned int* a, unsigned int v) { unsigned old = *a; *a = old - v; return old; }
template <typename T> inline T atomicExch(T* a, T v) { T old = *a; *a = v; return old; }
template <typename T> inline T atomicMax(T* a, T v) { T old = *a; *a = old > v ? old : v; return old; }
template <typename T> inline T atomicMin(T* a, T v) { T old = *a; *a = old < v ? old : v; return old; }
template <typename T> inline T atomicCAS(T* a, T compare, T v) {
    T old = *a;
    *a = old == compare ? v : old;
    return old;
}

// ---------------------------------------------------------------------------------------------
// Math and bit-casting built-ins that kernels commonly use (math.h supplies expf, sqrtf, fmaxf...).
// ---------------------------------------------------------------------------------------------
template <typename To, typename From> inline To emu_bit_cast(From v) {
    static_assert(sizeof(To) == sizeof(From), "bit cast between types of different sizes");
    To out;
    memcpy(&out, &v, sizeof(To));
    return out;
}
inline float __int_as_float(int v) { return emu_bit_cast<float>(v); }
inline float __uint_as_float(unsigned int v) { return emu_bit_cast<float>(v); }
inline int __float_as_int(float v) { return emu_bit_cast<int>(v); }
inline unsigned int __float_as_uint(float v) { return emu_bit_cast<unsigned int>(v); }
inline double __longlong_as_double(long long v) { return emu_bit_cast<double>(v); }
inline long long __double_as_longlong(double v) { return emu_bit_cast<long long>(v); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline float __int2float_rn(int x) { return (float)x; }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __mul24(int a, int b) { return a * b; }
inline int __umul24(unsigned a, unsigned b) { return (int)(a * b); }
template <typename T> inline T __ldg(const T* p) { return *p; }

// CUDA's min/max overloads (device code has them in the global namespace).
#define EMU_MINMAX(T)                                                                            \
    inline T min(T a, T b) { return a < b ? a : b; }                                             \
    inline T max(T a, T b) { return a > b ? a : b; }
EMU_MINMAX(int)
EMU_MINMAX(unsigned int)
EMU_MINMAX(long)
EMU_MINMAX(unsigned long)
EMU_MINMAX(long long)
EMU_MINMAX(unsigned long long)
#undef EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }
inline unsigned int min(int a, unsigned int b) { return min((unsigned int)a, b); }
inline unsigned int max(int a, unsigned int b) { return max((unsigned int)a, b); }
inline unsigned int min(unsigned int a, int b) { return min(a, (unsigned int)b); }
inline unsigned int max(unsigned int a, int b) { return max(a, (unsigned int)b); }
