// mma.h -- the cuda-emu stand-in for CUDA's WMMA API (namespace nvcuda::wmma), so that a kernel
// using tensor cores through `#include <mma.h>` compiles unmodified with g++ and runs on the CPU.
//
// Only the emulator finds this file (build.py puts conv3d/cuda/emulator/include first on g++'s
// include path); NVRTC and nvcc use CUDA's own mma.h.
//
// WARP COLLECTIVES. load_matrix_sync, store_matrix_sync, mma_sync and fill_fragment are called by
// all 32 lanes of a warp together. Each call here parks the lane (emu::warp_collective, see
// runtime.cpp); when the whole warp has arrived at the same call, the operation runs ONCE for the
// warp, reading and writing the 32 lanes' fragments. Lanes that diverge fail the launch. The
// memory pointer and ldm must be the same in every lane (as CUDA requires), and are checked, as
// are the 256-bit alignment of the pointer and ldm being a multiple of 16 bytes.
//
// FRAGMENT LAYOUT. CUDA leaves the mapping of a fragment's elements to lanes unspecified
// ("opaque"): a kernel may only use x[i] for element-wise work that treats every element alike
// (scaling, rounding) and must loop to num_elements. Any consistent mapping is therefore legal;
// this one is: a fragment holds a ROWS x COLS matrix (matrix_a: M x K, matrix_b: K x N,
// accumulator: M x N, whatever the memory layout), and element i of lane l is the matrix element
// with row-major index e = i * 32 + l, that is row e / COLS, column e % COLS. num_elements =
// ROWS * COLS / 32 (the hardware packs half types two per register and may replicate elements,
// so its num_elements can differ: never hard-code it).
//
// NUMERICS of mma_sync(d, a, b, c): every product a*b of the tile is exact (tf32, bf16, fp16 and
// double products are exact in double), the K products of each output element are summed in
// double and added to c, then rounded ONCE to the accumulator type (round to nearest even). A
// tensor core sums in its own order and width (with truncation in places), so results can differ
// from this in the last bits of float; within the tolerance the kernels' tests document.
// precision::tf32 operands must be tf32 values, i.e. converted with __float_to_tf32 (the CUDA
// guide requires it; the hardware ignores the low 13 mantissa bits): mma_sync reports an element
// that has any of those bits set.
#pragma once

#include "cuda_bf16.h"
#include "cuda_fp16.h"

namespace nvcuda {
namespace wmma {

struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

// __float_to_tf32 is cvt.rna.tf32.f32: round to the nearest value with a 10-bit mantissa, ties
// AWAY from zero (rna, not ties-to-even); the result is a float whose low 13 bits are zero.
// Infinity and NaN stay what they are.
inline float __float_to_tf32(float in) {
    unsigned int u;
    __builtin_memcpy(&u, &in, 4);
    if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0x1000u) & ~0x1FFFu;
    else if (u & 0x007FFFFFu) u |= 0x00400000u;  // NaN: quiet, whatever its payload
    float out;
    __builtin_memcpy(&out, &u, 4);
    return out;
}

namespace detail {
template <typename Use, int M, int N, int K> struct Shape;
template <int M, int N, int K> struct Shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct Shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct Shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };

template <typename T> struct Storage { using type = T; };
template <> struct Storage<precision::tf32> { using type = float; };

// The shapes and types CUDA's WMMA offers (sm_70 fp16, sm_80 bf16/tf32/double).
template <int M, int N, int K, typename T> constexpr bool supported() {
    constexpr bool m16 = (M == 16 && N == 16 && K == 16) || (M == 32 && N == 8 && K == 16) ||
                         (M == 8 && N == 32 && K == 16);
    if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) return m16;
    if constexpr (std::is_same_v<T, precision::tf32>) return M == 16 && N == 16 && K == 8;
    if constexpr (std::is_same_v<T, double>) return M == 8 && N == 8 && K == 4;
    return false;
}
}  // namespace detail

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static_assert(detail::supported<M, N, K, T>() ||
                      (std::is_same_v<Use, accumulator> && (std::is_same_v<T, float> ||
                                                            std::is_same_v<T, __half>)),
                  "cuda-emu: WMMA has no fragment of this shape and type (m16n16k16, m32n8k16, "
                  "m8n32k16 for __half/__nv_bfloat16; m16n16k8 for precision::tf32; m8n8k4 for "
                  "double)");
    using element_type = typename detail::Storage<T>::type;
    static constexpr int rows = detail::Shape<Use, M, N, K>::rows;
    static constexpr int cols = detail::Shape<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols / ::emu::kWarpSize;
    static constexpr bool col_major_layout = std::is_same_v<Layout, col_major>;
    static constexpr bool tf32 = std::is_same_v<T, precision::tf32>;
    element_type x[num_elements];
};

namespace detail {
constexpr int kLanes = ::emu::kWarpSize;

// Where element i of lane `lane` lies in the fragment's ROWS x COLS matrix (see the header).
template <typename F> inline int row_of(int lane, int i) { return (i * kLanes + lane) / F::cols; }
template <typename F> inline int col_of(int lane, int i) { return (i * kLanes + lane) % F::cols; }

template <typename F, typename P> struct MemoryCall {
    F* frag;
    P* ptr;
    unsigned ldm;
    bool col_major;
};

template <typename F, typename P> bool check_memory(void* const* lanes, char* err, std::size_t n) {
    const auto* first = static_cast<const MemoryCall<F, P>*>(lanes[0]);
    for (int l = 1; l < kLanes; ++l) {
        const auto* c = static_cast<const MemoryCall<F, P>*>(lanes[l]);
        if (c->ptr != first->ptr || c->ldm != first->ldm || c->col_major != first->col_major) {
            snprintf(err, n, "lane %d passed (pointer %p, ldm %u) but lane 0 passed (%p, %u): the "
                     "pointer, ldm and layout must be the same in every lane of the warp", l,
                     (const void*)c->ptr, c->ldm, (const void*)first->ptr, first->ldm);
            return false;
        }
    }
    if (reinterpret_cast<uintptr_t>(first->ptr) % 32 != 0) {
        snprintf(err, n, "pointer %p is not 256-bit (32-byte) aligned, as WMMA requires",
                 (const void*)first->ptr);
        return false;
    }
    const unsigned need = first->col_major ? F::rows : F::cols;
    if (first->ldm * sizeof(P) % 16 != 0 || first->ldm < need) {
        snprintf(err, n, "ldm=%u: it must be at least %u and a multiple of 16 bytes (%zu elements)",
                 first->ldm, need, 16 / sizeof(P));
        return false;
    }
    return true;
}

template <typename F, typename P> bool load_all(void* const* lanes, int, char* err, std::size_t n) {
    if (!check_memory<F, P>(lanes, err, n)) return false;
    for (int l = 0; l < kLanes; ++l) {
        const auto* c = static_cast<const MemoryCall<F, P>*>(lanes[l]);
        for (int i = 0; i < F::num_elements; ++i) {
            const int r = row_of<F>(l, i), k = col_of<F>(l, i);
            c->frag->x[i] = c->ptr[c->col_major ? k * c->ldm + r : r * c->ldm + k];
        }
    }
    return true;
}

template <typename F, typename P> bool store_all(void* const* lanes, int, char* err, std::size_t n) {
    if (!check_memory<F, P>(lanes, err, n)) return false;
    for (int l = 0; l < kLanes; ++l) {
        const auto* c = static_cast<const MemoryCall<F, P>*>(lanes[l]);
        for (int i = 0; i < F::num_elements; ++i) {
            const int r = row_of<F>(l, i), k = col_of<F>(l, i);
            c->ptr[c->col_major ? k * c->ldm + r : r * c->ldm + k] = c->frag->x[i];
        }
    }
    return true;
}

template <typename F> struct FillCall {
    F* frag;
    typename F::element_type value;
};

template <typename F> bool fill_all(void* const* lanes, int, char*, std::size_t) {
    for (int l = 0; l < kLanes; ++l) {
        const auto* c = static_cast<const FillCall<F>*>(lanes[l]);
        for (int i = 0; i < F::num_elements; ++i) c->frag->x[i] = c->value;
    }
    return true;
}

// Element values as double (exact for every element type), and back (rounding once).
template <typename T> inline double to_double(const T& v) {
    if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) return v;
    else return static_cast<double>(static_cast<float>(v));
}
template <typename T> inline T from_double(double v) {
    if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) return static_cast<T>(v);
    else return T(static_cast<float>(v));  // __half accumulators: float first, then half
}

template <typename D, typename A, typename B, typename C> struct MmaCall {
    D* d;
    const A* a;
    const B* b;
    const C* c;
};

template <typename F> bool tf32_operands(void* const* frags, const char* which, char* err,
                                         std::size_t n) {
    for (int l = 0; l < kLanes; ++l) {
        const auto* f = static_cast<const F*>(frags[l]);
        for (int i = 0; i < F::num_elements; ++i) {
            unsigned int u;
            __builtin_memcpy(&u, &f->x[i], 4);
            if ((u & 0x7F800000u) != 0x7F800000u && (u & 0x1FFFu)) {
                snprintf(err, n, "mma_sync: element %d of lane %d of %s is %.9g, not a tf32 value "
                         "(its low 13 mantissa bits are not zero): convert precision::tf32 "
                         "fragments with wmma::__float_to_tf32 first", i, l, which, f->x[i]);
                return false;
            }
        }
    }
    return true;
}

template <typename D, typename A, typename B, typename C>
bool mma_all(void* const* lanes, int, char* err, std::size_t n) {
    constexpr int M = A::rows, K = A::cols, N = B::cols;
    if constexpr (A::tf32) {
        const void* as[kLanes];
        const void* bs[kLanes];
        for (int l = 0; l < kLanes; ++l) {
            as[l] = static_cast<const MmaCall<D, A, B, C>*>(lanes[l])->a;
            bs[l] = static_cast<const MmaCall<D, A, B, C>*>(lanes[l])->b;
        }
        if (!tf32_operands<A>(const_cast<void* const*>(as), "a", err, n) ||
            !tf32_operands<B>(const_cast<void* const*>(bs), "b", err, n))
            return false;
    }
    double a[M][K], b[K][N], c[M][N];  // the warp's tiles, gathered from the lanes' fragments
    for (int l = 0; l < kLanes; ++l) {
        const auto* call = static_cast<const MmaCall<D, A, B, C>*>(lanes[l]);
        for (int i = 0; i < A::num_elements; ++i)
            a[row_of<A>(l, i)][col_of<A>(l, i)] = to_double(call->a->x[i]);
        for (int i = 0; i < B::num_elements; ++i)
            b[row_of<B>(l, i)][col_of<B>(l, i)] = to_double(call->b->x[i]);
        for (int i = 0; i < C::num_elements; ++i)
            c[row_of<C>(l, i)][col_of<C>(l, i)] = to_double(call->c->x[i]);
    }
    for (int r = 0; r < M; ++r)
        for (int col = 0; col < N; ++col) {
            double sum = 0;
            for (int k = 0; k < K; ++k) sum += a[r][k] * b[k][col];
            c[r][col] += sum;
        }
    for (int l = 0; l < kLanes; ++l) {  // d may be c: written only after every c was read
        auto* call = static_cast<const MmaCall<D, A, B, C>*>(lanes[l]);
        for (int i = 0; i < D::num_elements; ++i)
            call->d->x[i] = from_double<typename D::element_type>(c[row_of<D>(l, i)][col_of<D>(l, i)]);
    }
    return true;
}
}  // namespace detail

template <typename Use, int M, int N, int K, typename T, typename L, typename P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const P* p, unsigned ldm,
                             const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    static_assert(!std::is_same_v<Use, accumulator>, "load_matrix_sync of an accumulator needs "
                  "a layout: load_matrix_sync(frag, ptr, ldm, wmma::mem_row_major)");
    using F = fragment<Use, M, N, K, T, L>;
    detail::MemoryCall<F, const P> call{&f, p, ldm, F::col_major_layout};
    ::emu::warp_collective("wmma::load_matrix_sync", &detail::load_all<F, const P>, &call, file, line);
}

template <int M, int N, int K, typename T, typename P>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const P* p, unsigned ldm,
                             layout_t layout, const char* file = __builtin_FILE(),
                             int line = __builtin_LINE()) {
    using F = fragment<accumulator, M, N, K, T>;
    detail::MemoryCall<F, const P> call{&f, p, ldm, layout == mem_col_major};
    ::emu::warp_collective("wmma::load_matrix_sync", &detail::load_all<F, const P>, &call, file, line);
}

template <int M, int N, int K, typename T, typename P>
inline void store_matrix_sync(P* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm,
                              layout_t layout, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
    using F = fragment<accumulator, M, N, K, T>;
    detail::MemoryCall<F, P> call{const_cast<F*>(&f), p, ldm, layout == mem_col_major};
    ::emu::warp_collective("wmma::store_matrix_sync", &detail::store_all<F, P>, &call, file, line);
}

template <typename Use, int M, int N, int K, typename T, typename L, typename V>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, const V& v,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    using F = fragment<Use, M, N, K, T, L>;
    detail::FillCall<F> call{&f, static_cast<typename F::element_type>(v)};
    ::emu::warp_collective("wmma::fill_fragment", &detail::fill_all<F>, &call, file, line);
}

template <int M, int N, int K, typename TA, typename LA, typename LB, typename TC, typename TD>
inline void mma_sync(fragment<accumulator, M, N, K, TD>& d,
                     const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TA, LB>& b,
                     const fragment<accumulator, M, N, K, TC>& c,
                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    using D = fragment<accumulator, M, N, K, TD>;
    using A = fragment<matrix_a, M, N, K, TA, LA>;
    using B = fragment<matrix_b, M, N, K, TA, LB>;
    using C = fragment<accumulator, M, N, K, TC>;
    detail::MmaCall<D, A, B, C> call{&d, &a, &b, &c};
    ::emu::warp_collective("wmma::mma_sync", &detail::mma_all<D, A, B, C>, &call, file, line);
}

}  // namespace wmma
}  // namespace nvcuda
