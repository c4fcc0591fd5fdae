// runtime_checks.h -- part of runtime.cpp: what the scheduler checks after each pass over the
// threads of a block, and the messages it reports.
//
//   check_round    every thread waits at the SAME __syncthreads (release them), or all returned,
//                  or the block is broken (early return before a barrier, divergent barrier);
//   resolve_warps  every warp whose 32 lanes wait at the same warp collective (WMMA) has it
//                  performed once; lanes of one warp that wait at different places are reported.
//
// Included once, by runtime.cpp, inside its anonymous namespace (it uses the launch state `g`).
#pragma once

// ---- error messages --------------------------------------------------------------------------

std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

std::string thread_list(const std::vector<const Thread*>& threads) {
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
    std::vector<const Thread*> done, waiting, elsewhere;
    const Thread* first = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const Thread& f = g.threads[i];
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
        const Thread* other = elsewhere.front();
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
    for (std::size_t i = 0; i < n; ++i) count += g.threads[i].predicate;
    const int op = first->op;
    const int result = op == 1 ? count : op == 2 ? (count == static_cast<int>(n)) : (count > 0);
    for (std::size_t i = 0; i < n; ++i) {
        g.threads[i].result = result;
        g.threads[i].state = kRunnable;
    }
    return 0;
}

const char* state_name(const Thread& t) {
    return t.state == kDone ? "returned" : t.state == kAtBarrier ? barrier_name(t.op) : t.collective;
}

// After a pass: perform the collective of every warp whose lanes all wait at the same one.
// Returns 0 (*progress: some warp may run on) or 5 (divergent lanes) or 6 (misuse; g.error).
int resolve_warps(std::size_t n, bool* progress) {
    *progress = false;
    const std::size_t W = emu::kWarpSize;
    for (std::size_t first = 0; first < n; first += W) {
        const std::size_t lanes = n - first < W ? n - first : W;
        const Thread* lead = nullptr;  // the first lane that waits at a collective
        for (std::size_t i = first; i < first + lanes && !lead; ++i)
            if (g.threads[i].state == kAtWarp) lead = &g.threads[i];
        if (!lead) continue;
        const uint3 b = emu::g_blockIdx;
        const std::string where = format("%s at %s:%d in kernel '%s', blockIdx=(%u,%u,%u), warp %zu",
                                         lead->collective, lead->file, lead->line, g.kernel->name,
                                         b.x, b.y, b.z, first / W);
        if (lanes < W) {
            g.error = format("incomplete warp at a warp collective: %s has only %zu threads (the "
                             "block has %zu). Warp-collective operations such as WMMA need all "
                             "32 lanes: make the block size a multiple of 32.", where.c_str(),
                             lanes, n);
            return 5;
        }
        for (std::size_t i = first; i < first + lanes; ++i) {
            const Thread& t = g.threads[i];
            if (t.state != kAtWarp || t.line != lead->line || std::strcmp(t.file, lead->file) ||
                std::strcmp(t.collective, lead->collective)) {
                const uint3 l = lead->tid, o = t.tid;
                g.error = format("divergent lanes at a warp collective: %s: lane %zu, threadIdx="
                                 "(%u,%u,%u), waits there while lane %zu, threadIdx=(%u,%u,%u), ",
                                 where.c_str(), std::size_t(lead - &g.threads[first]), l.x, l.y,
                                 l.z, i - first, o.x, o.y, o.z) +
                          (t.state == kAtWarp || t.state == kAtBarrier
                               ? format("waits at %s at %s:%d", state_name(t), t.file, t.line)
                               : std::string("returned")) +
                          ". Every lane of a warp must reach the same warp-collective call (on a "
                          "GPU this hangs or gives garbage): keep the call outside conditions "
                          "that differ between the lanes of a warp.";
                return 5;
            }
        }
        void* records[emu::kWarpSize];
        for (std::size_t i = 0; i < W; ++i) records[i] = g.threads[first + i].warp_record;
        char err[1024] = "";
        if (!lead->warp_fn(records, int(W), err, sizeof err)) {
            g.error = format("%s: %s", where.c_str(), err);
            return 6;
        }
        for (std::size_t i = first; i < first + W; ++i) g.threads[i].state = kRunnable;
        *progress = true;
    }
    return 0;
}
