// kernel_table.h -- how the runtime calls a typed kernel from an untyped argument buffer.
//
// The Python side scans the kernel file for its __global__ functions and appends a few generated
// lines to the translation unit (see build.py):
//
//     static const emu::KernelInfo emu_kernel_table[] = {
//         emu::kernel_info("conv3d_direct_f32", &conv3d_direct_f32), ...};
//
// kernel_info() deduces the parameter types of each kernel with a template, so nothing about the
// types is parsed from text: the compiler itself reports the signature (e.g. "const float32*,
// float32*,int32") that Python checks the launch arguments against, and instantiates invoke<>,
// which unpacks the argument buffer (one 8-byte slot per argument) into a typed call.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

namespace emu {

using Invoker = void (*)(void* fn, const unsigned char* args);

struct KernelInfo {
    const char* name;       // the kernel's name in the source
    const char* signature;  // comma-separated parameter codes, e.g. "const float32*,int32"
    void* fn;               // the kernel itself
    Invoker invoke;         // calls fn with the arguments unpacked; nullptr if a type is unsupported
};

constexpr std::size_t kArgSlot = 8;  // bytes per argument in the buffer Python fills

// NumPy dtype names of the scalar types a kernel parameter may have (LP64: long is 64-bit).
template <typename T> struct dtype_name { static constexpr const char* value = nullptr; };
#define EMU_DTYPE(T, NAME) \
    template <> struct dtype_name<T> { static constexpr const char* value = NAME; };
EMU_DTYPE(float, "float32")
EMU_DTYPE(double, "float64")
EMU_DTYPE(char, "int8")
EMU_DTYPE(signed char, "int8")
EMU_DTYPE(unsigned char, "uint8")
EMU_DTYPE(short, "int16")
EMU_DTYPE(unsigned short, "uint16")
EMU_DTYPE(int, "int32")
EMU_DTYPE(unsigned int, "uint32")
EMU_DTYPE(long, "int64")
EMU_DTYPE(unsigned long, "uint64")
EMU_DTYPE(long long, "int64")
EMU_DTYPE(unsigned long long, "uint64")
EMU_DTYPE(bool, "bool")
#undef EMU_DTYPE

// The C++ spelling of a type, for messages about unsupported parameter types.
template <typename T> std::string type_spelling() {
    const std::string s = __PRETTY_FUNCTION__;  // "... type_spelling() [with T = Foo; ...]"
    const std::size_t b = s.find("T = ");
    if (b == std::string::npos) return "unknown type";
    const std::size_t e = s.find_first_of(";]", b);
    return s.substr(b + 4, e - b - 4);
}

template <typename T> constexpr bool is_supported_param() {
    if constexpr (std::is_pointer_v<T>) {
        using B = std::remove_cv_t<std::remove_pointer_t<T>>;
        return std::is_void_v<B> || dtype_name<B>::value != nullptr;
    } else {
        return dtype_name<T>::value != nullptr;
    }
}

// "float32", "const float32*", "void*"; "?<C++ type>" when the emulator cannot pass it.
template <typename T> std::string param_code() {
    if constexpr (!is_supported_param<T>()) {
        return "?" + type_spelling<T>();
    } else if constexpr (std::is_pointer_v<T>) {
        using P = std::remove_pointer_t<T>;
        using B = std::remove_cv_t<P>;
        const std::string qual = std::is_const_v<P> ? "const " : "";
        if constexpr (std::is_void_v<B>) {
            return qual + "void*";
        } else {
            return qual + dtype_name<B>::value + "*";
        }
    } else {
        return dtype_name<T>::value;
    }
}

template <typename T> inline T load_arg(const unsigned char* slot) {
    static_assert(sizeof(T) <= kArgSlot, "argument wider than an argument slot");
    T value;
    std::memcpy(&value, slot, sizeof(T));
    return value;
}

template <typename... A, std::size_t... I>
inline void call_unpacked(void (*f)(A...), const unsigned char* args, std::index_sequence<I...>) {
    (void)args;  // unused when the kernel takes no arguments
    f(load_arg<A>(args + kArgSlot * I)...);
}

template <typename... A> void invoke(void* fn, const unsigned char* args) {
    call_unpacked(reinterpret_cast<void (*)(A...)>(fn), args, std::index_sequence_for<A...>{});
}

template <typename... A> KernelInfo kernel_info(const char* name, void (*f)(A...)) {
    // One string per distinct signature (a function-local static per template instantiation).
    static const std::string signature = [] {
        std::string s;
        ((s += (s.empty() ? "" : ",") + param_code<A>()), ...);
        return s;
    }();
    Invoker call = nullptr;
    if constexpr ((is_supported_param<A>() && ...)) call = &invoke<A...>;
    return {name, signature.c_str(), reinterpret_cast<void*>(f), call};
}

}  // namespace emu
