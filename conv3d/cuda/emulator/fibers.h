// fibers.h -- stackful fibers: many call stacks on one OS thread, switched by hand.
//
// A fiber is a stack plus a saved stack pointer. Switching from A to B pushes A's callee-saved
// registers onto A's stack, saves A's stack pointer, loads B's, and pops B's registers: B
// continues exactly where it last switched away. No system call is involved, unlike
// swapcontext(), which also saves and restores the signal mask (two syscalls per switch); the
// emulator measured the hand-written switch about 10x faster. ucontext is the fallback on other
// architectures, or with -DEMU_USE_UCONTEXT.
//
// Under AddressSanitizer, every switch is announced with __sanitizer_start_switch_fiber and
// __sanitizer_finish_switch_fiber, so that ASan knows which stack is live.
//
// Included once, by runtime.cpp (it defines the assembly routine emu_switch).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define EMU_ASAN 0
#endif

#if !defined(__x86_64__) && !defined(EMU_USE_UCONTEXT)
#define EMU_USE_UCONTEXT 1
#endif
#ifdef EMU_USE_UCONTEXT
#include <ucontext.h>
#endif

namespace emu {
namespace fibers {

#ifndef EMU_USE_UCONTEXT
// void emu_switch(void** save_sp, void* load_sp), System V x86-64 ABI: push the callee-saved
// registers (rbp, rbx, r12-r15) and the SSE/x87 control words on the current stack, store the
// stack pointer in *save_sp, load load_sp, pop the same things from the other stack, and `ret`
// to wherever that stack last called emu_switch (for a new fiber: its entry, see reset()).
asm(R"(
    .text
    .p2align 4
    .globl emu_switch
    .hidden emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
extern "C" void emu_switch(void** save_sp, void* load_sp);
#endif

// The code that switches into fibers (the scheduler) keeps its own saved state here.
struct Scheduler {
#ifdef EMU_USE_UCONTEXT
    ucontext_t context;
#else
    void* sp = nullptr;
#endif
#if EMU_ASAN
    const void* stack = nullptr;  // its stack, as ASan reports it to the first fiber
    std::size_t stack_size = 0;
#endif
};

struct Fiber {
    unsigned char* stack = nullptr;  // usable stack [stack, stack + size); a guard page below
    std::size_t size = 0;
#ifdef EMU_USE_UCONTEXT
    ucontext_t context;
#else
    void* sp = nullptr;
#endif
#if EMU_ASAN
    void* fake_stack = nullptr;
#endif
};

constexpr std::size_t kPage = 4096;

inline bool allocate(Fiber& f, std::size_t size) {
    void* mem = mmap(nullptr, size + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (mem == MAP_FAILED) return false;
    mprotect(mem, kPage, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
    f.stack = static_cast<unsigned char*>(mem) + kPage;
    f.size = size;
    return true;
}

inline void release(Fiber& f) {
    if (f.stack) munmap(f.stack - kPage, f.size + kPage);
    f.stack = nullptr;
}

// Make the fiber start entry() at the top of its stack the next time it is switched to.
// entry() must call started() first and must never return (it switches away for good instead).
inline void reset(Fiber& f, void (*entry)()) {
#if EMU_ASAN
    // Frames abandoned on this stack (a launch that failed mid-block) may leave poisoned shadow.
    ASAN_UNPOISON_MEMORY_REGION(f.stack, f.size);
    f.fake_stack = nullptr;
#endif
#ifdef EMU_USE_UCONTEXT
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack;
    f.context.uc_stack.ss_size = f.size;
    f.context.uc_link = nullptr;
    makecontext(&f.context, entry, 0);
#else
    // The frame emu_switch pops: the control words, r15, r14, r13, r12, rbx, rbp, then the
    // return address `entry`, then a dummy return address so that entry starts with the stack
    // aligned as right after a call (rsp % 16 == 8).
    auto* top = reinterpret_cast<uintptr_t*>(
        reinterpret_cast<uintptr_t>(f.stack + f.size) & ~static_cast<uintptr_t>(15));
    uintptr_t* sp = top - 9;
    uint32_t control[2];  // start with the scheduler's rounding mode and exception masks
    __asm__ __volatile__("stmxcsr %0\n\tfnstcw %1" : "=m"(control[0]), "=m"(control[1]));
    std::memcpy(&sp[0], control, 8);
    for (int i = 1; i <= 6; ++i) sp[i] = 0;
    sp[7] = reinterpret_cast<uintptr_t>(entry);
    sp[8] = 0;
    f.sp = sp;
#endif
}

// Scheduler -> fiber; returns when the fiber switches back.
inline void switch_to(Scheduler& s, Fiber& f) {
#if EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.stack, f.size);
#endif
#ifdef EMU_USE_UCONTEXT
    swapcontext(&s.context, &f.context);
#else
    emu_switch(&s.sp, f.sp);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

// Fiber -> scheduler. A `finished` fiber is never switched to again (until reset).
inline void switch_back(Fiber& f, Scheduler& s, bool finished) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(finished ? nullptr : &f.fake_stack, s.stack, s.stack_size);
#else
    (void)finished;
#endif
#ifdef EMU_USE_UCONTEXT
    swapcontext(&f.context, &s.context);
#else
    emu_switch(&f.sp, s.sp);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
}

// First statement of a fiber's entry function.
inline void started(Scheduler& s) {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.stack, &s.stack_size);
#else
    (void)s;
#endif
}

inline const char* method() {
#ifdef EMU_USE_UCONTEXT
    return EMU_ASAN ? "ucontext+asan" : "ucontext";
#else
    return EMU_ASAN ? "x86-64 asm+asan" : "x86-64 asm";
#endif
}

}  // namespace fibers
}  // namespace emu
