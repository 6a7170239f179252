// Run-time CPU feature detection, ISA forcing (for tests), the kernels' thread count, and the sharing of a
// matrix product's units between threads.
#include "hk_internal.h"
#include "hone_gemm.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// MARK: - Instruction sets

static atomic_int detected_isa = -1; // -1: not detected yet
static atomic_int forced_isa = -1;   // -1: use the detected level

static int detect_isa_now(void) {
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0), not just CPUID.
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    int has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl");
    if (has_avx512) return HK_ISA_AVX512;
    if (has_avx2) return HK_ISA_AVX2;
    return HK_ISA_SCALAR;
}

int hk_isa_detect(void) {
    int isa = atomic_load_explicit(&detected_isa, memory_order_relaxed);
    if (isa < 0) {
        // Racing first calls all compute the same answer, so a plain store is enough.
        isa = detect_isa_now();
        atomic_store_explicit(&detected_isa, isa, memory_order_relaxed);
    }
    return isa;
}

int hk_isa_current(void) {
    int isa = atomic_load_explicit(&forced_isa, memory_order_relaxed);
    return isa >= 0 ? isa : hk_isa_detect();
}

void hk_isa_force(int isa) {
    int best = hk_isa_detect();
    if (isa < HK_ISA_SCALAR) isa = HK_ISA_SCALAR;
    if (isa > best) isa = best;
    atomic_store_explicit(&forced_isa, isa, memory_order_relaxed);
}

int hk_cpu_has_vnni(void) {
    __builtin_cpu_init();
    return hk_isa_detect() == HK_ISA_AVX512 && __builtin_cpu_supports("avx512vnni");
}

int hk_cpu_has_gfni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("gfni");
}

static atomic_int byte_permutes_disabled = 0;

int hk_cpu_has_byte_permutes(void) {
    __builtin_cpu_init();
    return !atomic_load_explicit(&byte_permutes_disabled, memory_order_relaxed) && hk_cpu_has_vnni() &&
           __builtin_cpu_supports("avx512vbmi");
}

void hk_byte_permutes_disable(int disabled) {
    atomic_store_explicit(&byte_permutes_disabled, disabled != 0, memory_order_relaxed);
}

// MARK: - Threads

static atomic_int configured_threads = 0; // 0: OpenMP's default

void hk_set_threads(int threads) {
    if (threads <= 0) return;
    atomic_store_explicit(&configured_threads, threads, memory_order_relaxed);
    omp_set_num_threads(threads);
}

int hk_get_threads(void) { return hk_thread_count(); }

int hk_thread_count(void) {
    int threads = atomic_load_explicit(&configured_threads, memory_order_relaxed);
    return threads > 0 ? threads : omp_get_max_threads();
}

// MARK: - Units shared between threads
//
// Why: the matrix products gave each thread an equal contiguous share, yet on a shared VM's two vCPUs one still
// finished well before the other, and on a PIQA run a thread waited at a product's end for 6-7 % of the samples
// (the other still multiplying). Row blocks are the units those loops had anyway, so a helper reads no
// activation row more often than the owner would; finer units (a few panels each) re-read them and measured slower.

static atomic_int gemm_sharing = HK_GEMM_SHARING_FINISH_OTHERS;

void hk_set_gemm_sharing(int mode) { atomic_store_explicit(&gemm_sharing, mode, memory_order_relaxed); }

/// Runs unit u's unclaimed blocks. A thread that has not prepared it joins a unit another thread has started only
/// while at least `least_left` of its blocks are left.
static void run_shared_unit(const hk_shared_work *work, hk_shared_unit *unit, int u, int blocks, int least_left,
                            int thread) {
    int prepared = 0;
    for (;;) {
        if (!prepared) {
            int next = __atomic_load_n(&unit->next_block, __ATOMIC_RELAXED);
            if (next > 0 && blocks - next < least_left) return;
        }
        int block = __atomic_fetch_add(&unit->next_block, 1, __ATOMIC_RELAXED);
        if (block >= blocks) return;
        if (!prepared) {
            work->prepare(work->context, thread, u);
            prepared = 1;
        }
        work->run(work->context, thread, u, block);
    }
}

hk_shared_unit *hk_shared_units_new(int count) {
    size_t bytes = (size_t)(count > 0 ? count : 1) * sizeof(hk_shared_unit);
    hk_shared_unit *units = aligned_alloc(64, bytes);
    if (units != NULL) memset(units, 0, bytes);
    return units;
}

void hk_share_units(const hk_shared_work *work, hk_shared_unit *units, int unit_count, int blocks, int own_begin,
                    int own_end, int thread) {
    const int mode = atomic_load_explicit(&gemm_sharing, memory_order_relaxed);
    if (mode != HK_GEMM_SHARING_OTHERS_FIRST) {
        for (int u = own_begin; u < own_end; u++) run_shared_unit(work, &units[u], u, blocks, 1, thread);
    }
    if (mode != HK_GEMM_SHARING_STATIC) {
        for (int u = unit_count - 1; u >= 0; u--) {
            if (u >= own_begin && u < own_end) continue;
            run_shared_unit(work, &units[u], u, blocks, mode == HK_GEMM_SHARING_OTHERS_FIRST ? 1 : 2, thread);
        }
    }
    if (mode == HK_GEMM_SHARING_OTHERS_FIRST) {
        for (int u = own_begin; u < own_end; u++) run_shared_unit(work, &units[u], u, blocks, 1, thread);
    }
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void hk_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
