// runtime.cpp -- runs a CUDA grid on one CPU thread: blocks one after another, the threads of a
// block as fibers that switch at __syncthreads().
//
// Compiled (with cuda_emu.h) into every emulated module, next to the kernels. The design:
//
//   * A block of T threads is T fibers: each has its own small stack (64 KiB by default, with a
//     PROT_NONE guard page below it) and runs the kernel function from the start.
//   * The scheduler (this file, on the caller's stack) resumes the fibers one by one, in ROUNDS.
//     A fiber runs until it reaches __syncthreads() (it parks and switches back) or returns.
//     After a round, either every thread is parked at the SAME barrier (release them all and run
//     the next round), or every thread has returned (the block is done), or the block is broken:
//       - some threads returned while others wait at a barrier: an early return before a
//         barrier (a hang or silent corruption on a GPU);
//       - threads wait at DIFFERENT barriers: a divergent __syncthreads().
//     Both are reported with the kernel, block, threads and source lines, never a deadlock.
//   * Even rounds resume threads 0, 1, ..., T-1 and odd rounds T-1, ..., 0 (the other way round
//     in every other block), so a kernel that forgot a barrier reads data that is not written
//     yet in one direction or the other: its results change.
//   * Shared memory is thread_local (one copy for this OS thread, i.e. for the running block).
//     Before each block it is filled with 0xFF bytes: a float read that nothing wrote is NaN.
//   * Switching: on x86-64 a 20-instruction assembly routine saves the callee-saved registers
//     and swaps stack pointers (no system call, unlike swapcontext, which saves and restores
//     the signal mask); elsewhere, or with -DEMU_USE_UCONTEXT, getcontext/makecontext/swapcontext.
//   * Under AddressSanitizer (-fsanitize=address) every switch is announced with
//     __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber, so ASan knows which stack
//     is live; array arguments are copied into malloc'ed buffers of exactly their size, so ASan
//     catches an out-of-bounds access to a kernel argument (NumPy's buffers are not tracked).
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emu.h"
#include "kernel_table.h"

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

// Defined by the generated glue at the end of the kernel file (build.py).
extern "C" const emu::KernelInfo* emu_module_kernels(int* count);
extern "C" unsigned char* emu_dynamic_shared(std::size_t* capacity);
extern "C" void emu_touch_tls();

namespace emu {
uint3 g_threadIdx;
uint3 g_blockIdx;
dim3 g_blockDim;
dim3 g_gridDim;
}  // namespace emu

namespace {

#ifndef EMU_USE_UCONTEXT
// void emu_switch(void** save_sp, void* load_sp): push the callee-saved registers and the
// floating-point control words on the current stack, store the stack pointer in *save_sp, load
// load_sp and pop the same things from the other stack. `ret` then continues wherever that stack
// last called emu_switch (or, for a new fiber, at fiber_main, see Fiber::reset).
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

enum State { kRunnable, kAtBarrier, kDone };

struct Fiber {
    unsigned char* stack = nullptr;  // usable stack [stack, stack + size); guard page below
    std::size_t size = 0;
    uint3 tid{0, 0, 0};
    State state = kRunnable;
    const char* file = nullptr;  // the barrier this fiber waits at
    int line = 0;
    int op = 0;
    int predicate = 0;
    int result = 0;  // what __syncthreads_count/_and/_or return
#ifdef EMU_USE_UCONTEXT
    ucontext_t context;
#else
    void* sp = nullptr;
#endif
#if EMU_ASAN
    void* fake_stack = nullptr;
#endif
};

// Everything about the launch in progress. One launch at a time per module (g_launch_lock).
struct Launch {
    const emu::KernelInfo* kernel = nullptr;
    const unsigned char* args = nullptr;
    std::vector<Fiber> fibers;
    std::size_t stack_size = 0;
    Fiber* current = nullptr;
    bool failed = false;
    std::string error;
#ifdef EMU_USE_UCONTEXT
    ucontext_t scheduler;
#else
    void* scheduler_sp = nullptr;
#endif
#if EMU_ASAN
    const void* scheduler_stack = nullptr;
    std::size_t scheduler_stack_size = 0;
#endif
};

Launch g;
std::mutex g_launch_lock;
const std::size_t kPage = 4096;

void fiber_main();

void release_stack(Fiber& f) {
    if (f.stack) munmap(f.stack - kPage, f.size + kPage);
    f.stack = nullptr;
}

bool allocate_stack(Fiber& f, std::size_t size) {
    void* mem = mmap(nullptr, size + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (mem == MAP_FAILED) return false;
    mprotect(mem, kPage, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
    f.stack = static_cast<unsigned char*>(mem) + kPage;
    f.size = size;
    return true;
}

// Make the fiber start fiber_main() from the top of its stack the next time it is resumed.
void reset(Fiber& f) {
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
    makecontext(&f.context, fiber_main, 0);
#else
    // The frame emu_switch pops: control words, r15..r12, rbx, rbp, then the return address
    // fiber_main, then a dummy return address so that fiber_main starts with the stack aligned
    // as after a call (rsp % 16 == 8).
    auto* top = reinterpret_cast<uintptr_t*>(
        reinterpret_cast<uintptr_t>(f.stack + f.size) & ~static_cast<uintptr_t>(15));
    uintptr_t* sp = top - 9;
    uint32_t control[2];
    __asm__ __volatile__("stmxcsr %0\n\tfnstcw %1" : "=m"(control[0]), "=m"(control[1]));
    std::memcpy(&sp[0], control, 8);
    for (int i = 1; i <= 6; ++i) sp[i] = 0;  // r15, r14, r13, r12, rbx, rbp
    sp[7] = reinterpret_cast<uintptr_t>(&fiber_main);
    sp[8] = 0;
    f.sp = sp;
#endif
    f.state = kRunnable;
}

// Scheduler -> fiber.
void resume(Fiber& f) {
    g.current = &f;
    emu::g_threadIdx = f.tid;
#if EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.stack, f.size);
#endif
#ifdef EMU_USE_UCONTEXT
    swapcontext(&g.scheduler, &f.context);
#else
    emu_switch(&g.scheduler_sp, f.sp);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

// Fiber -> scheduler. A fiber that is `finished` never comes back (its fake stack is released).
void suspend(bool finished) {
    Fiber& f = *g.current;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(finished ? nullptr : &f.fake_stack, g.scheduler_stack,
                                   g.scheduler_stack_size);
#else
    (void)finished;
#endif
#ifdef EMU_USE_UCONTEXT
    swapcontext(&f.context, &g.scheduler);
#else
    emu_switch(&f.sp, g.scheduler_sp);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
}

void fiber_main() {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &g.scheduler_stack, &g.scheduler_stack_size);
#endif
    g.kernel->invoke(g.kernel->fn, g.args);
    g.current->state = kDone;
    suspend(true);
    __builtin_unreachable();
}

// ---- shared memory poisoning -----------------------------------------------------------------

struct TlsBlock {
    unsigned char* data = nullptr;
    std::size_t size = 0;
};

int find_own_tls(dl_phdr_info* info, std::size_t, void* out) {
    const auto self = reinterpret_cast<ElfW(Addr)>(&find_own_tls);
    bool mine = false;
    const ElfW(Phdr)* tls = nullptr;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        const ElfW(Addr) lo = info->dlpi_addr + ph.p_vaddr;
        if (ph.p_type == PT_LOAD && self >= lo && self < lo + ph.p_memsz) mine = true;
        if (ph.p_type == PT_TLS) tls = &ph;
    }
    if (!mine) return 0;
    auto* block = static_cast<TlsBlock*>(out);
    if (tls && info->dlpi_tls_data) {
        block->data = static_cast<unsigned char*>(info->dlpi_tls_data);
        block->size = tls->p_memsz;
    }
    return 1;
}

// This OS thread's copy of the module's thread_local data: all the __shared__ arrays.
TlsBlock shared_memory_block() {
    emu_touch_tls();  // make sure this thread's copy exists before asking where it is
    TlsBlock block;
    dl_iterate_phdr(find_own_tls, &block);
    return block;
}

// ---- error messages --------------------------------------------------------------------------

std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

std::string thread_list(const std::vector<const Fiber*>& threads) {
    std::string s = format("%zu thread%s (threadIdx ", threads.size(), threads.size() == 1 ? "" : "s");
    const std::size_t shown = threads.size() < 4 ? threads.size() : 4;
    for (std::size_t i = 0; i < shown; ++i) {
        const uint3 t = threads[i]->tid;
        s += format("%s(%u,%u,%u)", i ? ", " : "", t.x, t.y, t.z);
    }
    return s + (shown < threads.size() ? ", ...)" : ")");
}

const char* barrier_name(int op) {
    static const char* names[] = {"__syncthreads()", "__syncthreads_count()",
                                  "__syncthreads_and()", "__syncthreads_or()"};
    return names[op];
}

// After a round: 0 if the block may go on, 1 early return before a barrier, 2 divergent barrier.
int check_round(std::size_t n, bool* all_done) {
    std::vector<const Fiber*> done, waiting, elsewhere;
    const Fiber* first = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const Fiber& f = g.fibers[i];
        if (f.state == kDone) {
            done.push_back(&f);
        } else if (!first || (f.line == first->line && std::strcmp(f.file, first->file) == 0 &&
                              f.op == first->op)) {
            first = first ? first : &f;
            waiting.push_back(&f);
        } else {
            elsewhere.push_back(&f);
        }
    }
    *all_done = done.size() == n;
    if (*all_done) return 0;
    const uint3 b = emu::g_blockIdx;
    const std::string where = format("kernel '%s', blockIdx=(%u,%u,%u)", g.kernel->name, b.x, b.y, b.z);
    if (!done.empty()) {
        g.error = format("early return before a barrier in %s: ", where.c_str()) +
                  thread_list(done) + " returned while " + thread_list(waiting) +
                  format(" wait at %s at %s:%d", barrier_name(first->op), first->file, first->line);
        if (!elsewhere.empty())
            g.error += format(" and %zu more wait at other barriers", elsewhere.size());
        g.error += ". Every thread of a block must reach every __syncthreads() (on a GPU this hangs "
                   "or silently corrupts shared memory): instead of returning early, e.g. "
                   "`if (i >= n) return;`, guard only the work, `if (i < n) { ... }`, and keep "
                   "the barrier outside the condition.";
        return 1;
    }
    if (!elsewhere.empty()) {
        const Fiber* other = elsewhere.front();
        g.error = format("divergent barrier in %s: ", where.c_str()) + thread_list(waiting) +
                  format(" wait at %s at %s:%d while ", barrier_name(first->op), first->file,
                         first->line) +
                  thread_list(elsewhere) +
                  format(" wait at a different barrier (first: %s at %s:%d). A __syncthreads() "
                         "inside a branch that only some threads of the block take is undefined "
                         "behaviour on a GPU: move it out of the branch.",
                         barrier_name(other->op), other->file, other->line);
        return 2;
    }
    // Everyone waits at the same barrier: compute what __syncthreads_count/_and/_or return.
    int count = 0;
    for (std::size_t i = 0; i < n; ++i) count += g.fibers[i].predicate;
    const int op = first->op;
    const int result = op == 1 ? count : op == 2 ? (count == static_cast<int>(n)) : (count > 0);
    for (std::size_t i = 0; i < n; ++i) {
        g.fibers[i].result = result;
        g.fibers[i].state = kRunnable;
    }
    return 0;
}

// Run one block to completion. Returns 0 or an error code (g.error says what went wrong).
int run_block(std::size_t n, bool start_backwards) {
    for (std::size_t r = 0;; ++r) {
        const bool backwards = (r % 2 == 1) != start_backwards;
        for (std::size_t k = 0; k < n; ++k) {
            Fiber& f = g.fibers[backwards ? n - 1 - k : k];
            resume(f);
            if (g.failed) return 3;
        }
        bool all_done = false;
        if (int code = check_round(n, &all_done)) return code;
        if (all_done) return 0;
    }
}

}  // namespace

namespace emu {

int barrier(int op, int predicate, const char* file, int line) {
    Fiber& f = *g.current;
    f.state = kAtBarrier;
    f.op = op;
    f.predicate = predicate;
    f.file = file;
    f.line = line;
    suspend(false);
    emu::g_threadIdx = f.tid;  // the scheduler already did this; kept for clarity
    return f.result;
}

void trap(const char* what, const char* file, int line) {
    const uint3 b = g_blockIdx, t = g.current->tid;
    g.error = format("%s in kernel '%s' at %s:%d, blockIdx=(%u,%u,%u), threadIdx=(%u,%u,%u)",
                     what, g.kernel->name, file, line, b.x, b.y, b.z, t.x, t.y, t.z);
    g.failed = true;
    suspend(true);
    __builtin_unreachable();
}

}  // namespace emu

// ---- the C interface the Python side calls through ctypes ------------------------------------

#define EMU_EXPORT extern "C" __attribute__((visibility("default")))

EMU_EXPORT int emu_kernel_count() {
    int count = 0;
    emu_module_kernels(&count);
    return count;
}

EMU_EXPORT const char* emu_kernel_name(int i) { int n; return emu_module_kernels(&n)[i].name; }
EMU_EXPORT const char* emu_kernel_signature(int i) { int n; return emu_module_kernels(&n)[i].signature; }

// How this module was built: "x86-64 asm" or "ucontext", plus "+asan" under AddressSanitizer.
EMU_EXPORT const char* emu_runtime_info() {
#ifdef EMU_USE_UCONTEXT
    return EMU_ASAN ? "ucontext+asan" : "ucontext";
#else
    return EMU_ASAN ? "x86-64 asm+asan" : "x86-64 asm";
#endif
}

// Bytes of static __shared__ memory (all kernels of the module together) and the capacity of the
// dynamic (extern __shared__) buffer.
EMU_EXPORT void emu_shared_sizes(std::size_t* static_bytes, std::size_t* dynamic_capacity) {
    std::size_t capacity = 0;
    emu_dynamic_shared(&capacity);
    const TlsBlock block = shared_memory_block();
    *dynamic_capacity = capacity;
    *static_bytes = block.size > capacity + 1 ? block.size - capacity - 1 : 0;  // 1: the TLS anchor
}

// Launch kernel `index` over grid[3] x block[3]. `args` holds one 8-byte slot per argument;
// `array_bytes[i]` is the size of the array behind pointer argument i (-1 for scalars).
// Returns 0, or an error code with a message in err: 1 early return before a barrier,
// 2 divergent barrier, 3 trap, 4 out of memory.
EMU_EXPORT int emu_launch(int index, const unsigned* grid, const unsigned* block, std::size_t shared_mem,
                          unsigned char* args, const long long* array_bytes, int nargs,
                          std::size_t stack_size, char* err, std::size_t errlen) {
    std::lock_guard<std::mutex> lock(g_launch_lock);
    int count = 0;
    g.kernel = &emu_module_kernels(&count)[index];
    g.args = args;
    g.failed = false;
    g.error.clear();
    const std::size_t n = std::size_t(block[0]) * block[1] * block[2];
    int code = 0;

    // Stacks: allocated once, reused by later launches (re-made if the size changes).
    if (stack_size != g.stack_size) {
        for (Fiber& f : g.fibers) release_stack(f);
        g.fibers.clear();
        g.stack_size = stack_size;
    }
    while (g.fibers.size() < n) {
        g.fibers.emplace_back();
        if (!allocate_stack(g.fibers.back(), stack_size)) {
            g.fibers.pop_back();
            std::snprintf(err, errlen, "cannot allocate %zu fiber stacks of %zu bytes", n, stack_size);
            return 4;
        }
    }

#if EMU_ASAN
    // NumPy's buffers are invisible to ASan: give the kernel exact-size malloc'ed copies instead,
    // so that reading or writing one element past an array is reported.
    std::vector<void*> originals(nargs, nullptr), copies(nargs, nullptr);
    for (int i = 0; i < nargs; ++i) {
        if (array_bytes[i] < 0) continue;
        std::memcpy(&originals[i], args + emu::kArgSlot * i, sizeof(void*));
        for (int j = 0; j < i && !copies[i]; ++j)  // the same array passed twice: one copy
            if (originals[j] == originals[i] && array_bytes[j] == array_bytes[i]) copies[i] = copies[j];
        if (!copies[i]) {
            copies[i] = std::malloc(array_bytes[i]);  // exact size (ASan: even 0 bytes is a chunk)
            if (array_bytes[i]) std::memcpy(copies[i], originals[i], array_bytes[i]);
        }
        std::memcpy(args + emu::kArgSlot * i, &copies[i], sizeof(void*));
    }
#else
    (void)array_bytes;
    (void)nargs;
#endif

    const TlsBlock tls = shared_memory_block();
    std::size_t capacity = 0;
    unsigned char* dynamic = emu_dynamic_shared(&capacity);
    const std::size_t dynamic_used = shared_mem < capacity ? shared_mem : capacity;

    emu::g_gridDim = dim3(grid[0], grid[1], grid[2]);
    emu::g_blockDim = dim3(block[0], block[1], block[2]);
    for (unsigned bz = 0; bz < grid[2] && !code; ++bz)
        for (unsigned by = 0; by < grid[1] && !code; ++by)
            for (unsigned bx = 0; bx < grid[0] && !code; ++bx) {
                emu::g_blockIdx = uint3{bx, by, bz};
                // Poison all shared memory, except the unused tail of the dynamic buffer.
                if (dynamic && tls.data) {
                    std::memset(tls.data, 0xFF, dynamic + dynamic_used - tls.data);
                    unsigned char* tail = dynamic + capacity;
                    std::memset(tail, 0xFF, tls.data + tls.size - tail);
                } else if (tls.data) {
                    std::memset(tls.data, 0xFF, tls.size);
                }
                for (std::size_t i = 0; i < n; ++i) {
                    Fiber& f = g.fibers[i];
                    f.tid = uint3{unsigned(i % block[0]), unsigned(i / block[0] % block[1]),
                                  unsigned(i / (std::size_t(block[0]) * block[1]))};
                    reset(f);
                }
                // Alternate the first direction between blocks too: a missing barrier that the
                // order of one round happens to hide shows up in the neighbouring block.
                code = run_block(n, (bx + by + bz) % 2 == 1);
            }

#if EMU_ASAN
    for (int i = 0; i < nargs; ++i) {
        if (!copies[i]) continue;
        std::memcpy(args + emu::kArgSlot * i, &originals[i], sizeof(void*));
        bool first = true;  // copy back and free each shared copy once
        for (int j = 0; j < i; ++j) first = first && copies[j] != copies[i];
        if (!first) continue;
        if (array_bytes[i]) std::memcpy(originals[i], copies[i], array_bytes[i]);
        std::free(copies[i]);
    }
#endif
    if (code) std::snprintf(err, errlen, "%s", g.error.c_str());
    g.current = nullptr;
    return code;
}
