// cuda_bf16.h -- the cuda-emu stand-in for CUDA's header: the type __nv_bfloat16 and its
// conversions.
//
// Only the emulator finds this file (see cuda_fp16.h). bfloat16 is the upper half of a float:
// 1 sign bit, 8 exponent bits (float's range), 7 mantissa bits. __float2bfloat16_rn rounds to
// nearest, ties to even (as on a GPU): add 0x7FFF plus the lowest kept bit, then drop the low 16
// bits; NaN stays a (quiet) NaN instead of rounding into infinity.
#pragma once

struct __nv_bfloat16 {
    unsigned short __x;  // the bits: the top 16 bits of the float
    __nv_bfloat16() = default;
    __nv_bfloat16(float f) {
        unsigned int u;
        __builtin_memcpy(&u, &f, 4);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
            __x = static_cast<unsigned short>((u >> 16) | 0x0040u);  // NaN: keep it quiet
        } else {
            __x = static_cast<unsigned short>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
        }
    }
    operator float() const {
        const unsigned int u = static_cast<unsigned int>(__x) << 16;
        float f;
        __builtin_memcpy(&f, &u, 4);
        return f;
    }
};

inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return static_cast<float>(h); }
