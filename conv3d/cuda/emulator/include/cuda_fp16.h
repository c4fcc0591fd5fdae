// cuda_fp16.h -- the cuda-emu stand-in for CUDA's header: the type __half and its conversions.
//
// Only the emulator finds this file (build.py puts conv3d/cuda/emulator/include first on g++'s
// include path); NVRTC and nvcc use CUDA's own header. __half is IEEE binary16: 1 sign bit,
// 5 exponent bits, 10 mantissa bits. Conversions from float round to nearest, ties to even, with
// subnormals and overflow to infinity, as __float2half_rn does on a GPU; they are done by g++'s
// _Float16, which follows IEEE 754.
#pragma once

struct __half {
    unsigned short __x;  // the bits, as in CUDA's __half_raw
    __half() = default;
    __half(float f) { _Float16 h = static_cast<_Float16>(f); __builtin_memcpy(&__x, &h, 2); }
    operator float() const { _Float16 h; __builtin_memcpy(&h, &__x, 2); return static_cast<float>(h); }
};

inline __half __float2half_rn(float f) { return __half(f); }
inline __half __float2half(float f) { return __half(f); }
inline float __half2float(__half h) { return static_cast<float>(h); }
