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
//   * Warp collectives (the WMMA fragment operations of include/mma.h, emu::warp_collective):
//     a lane parks like at a barrier. After a pass over the runnable threads, every warp whose
//     32 lanes all wait at the same collective has it performed once (resolve_warps), and its
//     lanes run on in another pass, while other warps may wait at a __syncthreads(). Lanes of one
//     warp that wait at different places (another collective, a barrier, or returned) are a
//     divergent collective and are reported like a divergent barrier.
//   * Shared memory is thread_local (one copy for this OS thread, i.e. for the running block).
//     Before each block it is filled with 0xFF bytes: a float read that nothing wrote is NaN.
//   * Switching (fibers.h): on x86-64 a 20-instruction assembly routine that swaps stack
//     pointers, with no system call; elsewhere, or with -DEMU_USE_UCONTEXT, swapcontext.
//   * Under AddressSanitizer (-fsanitize=address) array arguments are copied into malloc'ed
//     buffers of exactly their size for the launch, so ASan catches a kernel that reads or writes
//     past the end of one (a NumPy array may be a view into a larger buffer).
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emu.h"
#include "fibers.h"
#include "kernel_table.h"

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

using emu::fibers::Fiber;

enum State { kRunnable, kAtBarrier, kAtWarp, kDone };

// One CUDA thread of the running block.
struct Thread {
    Fiber fiber;
    uint3 tid{0, 0, 0};
    State state = kRunnable;
    const char* file = nullptr;  // the barrier it waits at
    int line = 0;
    int op = 0;
    int predicate = 0;
    int result = 0;  // what __syncthreads_count/_and/_or return
    const char* collective = nullptr;  // the warp collective it waits at (state kAtWarp)
    emu::WarpFn warp_fn = nullptr;
    void* warp_record = nullptr;
};

// Everything about the launch in progress. One launch at a time per module (g_launch_lock).
struct Launch {
    const emu::KernelInfo* kernel = nullptr;
    const unsigned char* args = nullptr;
    std::vector<Thread> threads;  // kept between launches: the fiber stacks are reused
    std::size_t stack_size = 0;
    Thread* current = nullptr;
    emu::fibers::Scheduler scheduler;
    bool failed = false;
    std::string error;
};

Launch g;
std::mutex g_launch_lock;

// Every fiber starts here: run the kernel for this thread, then leave for good.
void thread_main() {
    emu::fibers::started(g.scheduler);
    g.kernel->invoke(g.kernel->fn, g.args);
    g.current->state = kDone;
    emu::fibers::switch_back(g.current->fiber, g.scheduler, true);
    __builtin_unreachable();
}

void resume(Thread& t) {
    g.current = &t;
    emu::g_threadIdx = t.tid;
    emu::fibers::switch_to(g.scheduler, t.fiber);
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

// ---- a crash inside a kernel -----------------------------------------------------------------
// A wild pointer or a too-small fiber stack kills the process with SIGSEGV, as a GPU kernel's
// invalid access kills the CUDA context. We cannot recover, but we can say where it happened:
// while a launch runs, a handler (on an alternate signal stack, since the fiber's stack may be
// the problem) writes the kernel, block and thread to stderr, then hands the signal to whoever
// handled it before (Python's faulthandler prints the Python traceback). Sanitized builds leave
// SIGSEGV to ASan, whose report is better.
#if !EMU_ASAN
struct sigaction g_previous_segv, g_previous_bus;
volatile bool g_crash_handler_installed = false;
volatile bool g_launch_running = false;

void append(char*& out, const char* end, const char* text) {
    while (*text && out < end) *out++ = *text++;
}

void append_number(char*& out, const char* end, std::size_t value) {
    char digits[24];
    int n = 0;
    do digits[n++] = char('0' + value % 10); while ((value /= 10) && n < 24);
    while (n && out < end) *out++ = digits[--n];
}

void append_index(char*& out, const char* end, const char* label, uint3 v) {
    append(out, end, label);
    append_number(out, end, v.x);
    append(out, end, ",");
    append_number(out, end, v.y);
    append(out, end, ",");
    append_number(out, end, v.z);
    append(out, end, ")");
}

void on_crash(int sig, siginfo_t* info, void*) {
    sigaction(SIGSEGV, &g_previous_segv, nullptr);  // whatever happens next is theirs
    sigaction(SIGBUS, &g_previous_bus, nullptr);
    g_crash_handler_installed = false;
    if (!g_launch_running || !g.current) return;
    const auto* addr = static_cast<const unsigned char*>(info->si_addr);
    const Fiber& f = g.current->fiber;
    const bool overflow = addr >= f.stack - emu::fibers::kPage && addr < f.stack;
    char message[1024];
    char* out = message;
    const char* end = message + sizeof message;
    append(out, end, overflow ? "\ncuda-emu: stack overflow in kernel '"
                              : sig == SIGBUS ? "\ncuda-emu: bus error in kernel '"
                                              : "\ncuda-emu: invalid memory access in kernel '");
    append(out, end, g.kernel->name);
    append_index(out, end, "', blockIdx=(", emu::g_blockIdx);
    append_index(out, end, ", threadIdx=(", g.current->tid);
    if (overflow) {
        append(out, end, ": the thread used more than its ");
        append_number(out, end, f.size / 1024);
        append(out, end, " KiB fiber stack (large local arrays?). Pass a larger "
                         "EmuModule(..., stack_size=...) or set CONV3D_EMU_STACK_KIB.\n");
    } else {
        append(out, end, ". Probably an index out of bounds: run the same code under "
                         "`python -m conv3d.cuda.emulator.asan_check` to get the source line.\n");
    }
    ssize_t ignored = write(2, message, out - message);
    (void)ignored;
}

void install_crash_handler() {
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
        // This OS thread has no alternate signal stack yet (Python's faulthandler gives the main
        // thread one): make one, kept for the thread's lifetime.
        stack_t alternate{};
        alternate.ss_size = 64 * 1024;
        alternate.ss_sp = std::malloc(alternate.ss_size);
        if (alternate.ss_sp) sigaltstack(&alternate, nullptr);
    }
    if (g_crash_handler_installed) return;
    struct sigaction action{};
    action.sa_sigaction = on_crash;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &g_previous_segv);
    sigaction(SIGBUS, &action, &g_previous_bus);
    g_crash_handler_installed = true;
}
#endif

#include "runtime_checks.h"  // check_round, resolve_warps and their messages

// Run one block to completion. Returns 0 or an error code (g.error says what went wrong).
int run_block(std::size_t n, bool start_backwards) {
    for (std::size_t r = 0;; ++r) {
        const bool backwards = (r % 2 == 1) != start_backwards;
        for (std::size_t k = 0; k < n; ++k) {
            Thread& f = g.threads[backwards ? n - 1 - k : k];
            if (f.state != kRunnable) continue;  // parked at a warp collective another warp
            resume(f);                           // does not wait for, or done
            if (g.failed) return 3;
        }
        bool progress = false;
        if (int code = resolve_warps(n, &progress)) return code;
        if (progress) continue;  // some warps run on before the block's barrier is checked
        bool all_done = false;
        if (int code = check_round(n, &all_done)) return code;
        if (all_done) return 0;
    }
}

}  // namespace

namespace emu {

int barrier(int op, int predicate, const char* file, int line) {
    Thread& t = *g.current;
    t.state = kAtBarrier;
    t.op = op;
    t.predicate = predicate;
    t.file = file;
    t.line = line;
    emu::fibers::switch_back(t.fiber, g.scheduler, false);
    // Resumed: every thread of the block reached this barrier (resume() set threadIdx again).
    return t.result;
}

void warp_collective(const char* what, WarpFn fn, void* record, const char* file, int line) {
    Thread& t = *g.current;
    t.state = kAtWarp;
    t.collective = what;
    t.warp_fn = fn;
    t.warp_record = record;
    t.file = file;
    t.line = line;
    emu::fibers::switch_back(t.fiber, g.scheduler, false);
    // Resumed: the runtime performed the operation for the whole warp.
}

void trap(const char* what, const char* file, int line) {
    const uint3 b = g_blockIdx, t = g.current->tid;
    g.error = format("%s in kernel '%s' at %s:%d, blockIdx=(%u,%u,%u), threadIdx=(%u,%u,%u)",
                     what, g.kernel->name, file, line, b.x, b.y, b.z, t.x, t.y, t.z);
    g.failed = true;
    emu::fibers::switch_back(g.current->fiber, g.scheduler, true);
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
EMU_EXPORT const char* emu_runtime_info() { return emu::fibers::method(); }

// Bytes of static __shared__ memory (all kernels of the module together) and the capacity of the
// dynamic (extern __shared__) buffer.
EMU_EXPORT void emu_shared_sizes(std::size_t* static_bytes, std::size_t* dynamic_capacity) {
    std::size_t capacity = 0;
    emu_dynamic_shared(&capacity);
    const TlsBlock block = shared_memory_block();
    *dynamic_capacity = capacity;
    *static_bytes = block.size > capacity + 16 ? block.size - capacity - 16 : 0;  // 16: the anchor
}

// Launch kernel `index` over grid[3] x block[3]. `args` holds one 8-byte slot per argument;
// `array_bytes[i]` is the size of the array behind pointer argument i (-1 for scalars).
// Returns 0, or an error code with a message in err: 1 early return before a barrier,
// 2 divergent barrier, 3 trap, 4 out of memory, 5 divergent or incomplete warp at a warp
// collective, 6 a warp collective misused (e.g. lanes passing different pointers).
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
        for (Thread& t : g.threads) emu::fibers::release(t.fiber);
        g.threads.clear();
        g.stack_size = stack_size;
    }
    while (g.threads.size() < n) {
        g.threads.emplace_back();
        if (!emu::fibers::allocate(g.threads.back().fiber, stack_size)) {
            g.threads.pop_back();
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

#if !EMU_ASAN
    install_crash_handler();
    g_launch_running = true;
#endif
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
                    Thread& t = g.threads[i];
                    t.tid = uint3{unsigned(i % block[0]), unsigned(i / block[0] % block[1]),
                                  unsigned(i / (std::size_t(block[0]) * block[1]))};
                    t.state = kRunnable;
                    emu::fibers::reset(t.fiber, thread_main);
                }
                // Alternate the first direction between blocks too: a missing barrier that the
                // order of one round happens to hide shows up in the neighbouring block.
                code = run_block(n, (bx + by + bz) % 2 == 1);
            }

#if !EMU_ASAN
    g_launch_running = false;
#endif
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
