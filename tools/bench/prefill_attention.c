// Prefill-attention micro-benchmark: hk_attention_batch over a pass of several sequences (documents scored together,
// or one long prompt), once per layer as a forward pass runs it. Prints the best of 20 passes in ms and the
// multiply-add rate (scores plus weighted values over the causal triangle, 2 FLOPs each).
//
// Build (from the repository root; HoneKernels' objects from any build of this tree, as for
// tools/bench/decode_attention.c):
//   S=Sources/HoneKernels; mkdir -p /tmp/hk && for f in $S/*.c; do clang -c -O3 -std=c11 -fno-math-errno \
//     -fopenmp -I$S/include -I$S $f -o /tmp/hk/$(basename $f .c).o; done
//   clang -O2 -I$S/include tools/bench/prefill_attention.c /tmp/hk/*.o -o /tmp/hk/prefill -fopenmp \
//     -L/usr/lib/llvm-14/lib -lomp -lopenblas -lm
// Run: /tmp/hk/prefill [N_Q [Q_START [THREADS [SEQUENCES [HEADS KV_HEADS [HEAD_DIM [LAYERS]]]]]]]
//   default 70 16 1 16 9 3 64 30: sixteen MMLU-like documents of 70 tokens after a 16-token shared prefix, SmolLM2's
//   heads; "512 0 1 1" is pp512; TinyLlama-1.1B's heads are 32 4 64 22.
// HONE_ISA=avx2 (or scalar) in the environment times the lower level.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hone_kernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/// Uniform in [-range, range].
static float uniform(float range) { return ((float)rand() / (float)RAND_MAX * 2.0f - 1.0f) * range; }

int main(int argc, char **argv) {
    int n_q = argc > 1 ? atoi(argv[1]) : 70, q_start = argc > 2 ? atoi(argv[2]) : 16;
    int threads = argc > 3 ? atoi(argv[3]) : 1, count = argc > 4 ? atoi(argv[4]) : 16;
    int heads = argc > 6 ? atoi(argv[5]) : 9, kv_heads = argc > 6 ? atoi(argv[6]) : 3;
    int head_dim = argc > 7 ? atoi(argv[7]) : 64, layers = argc > 8 ? atoi(argv[8]) : 30;
    if (n_q < 1 || q_start < 0 || threads < 1 || count < 1 || heads < 1 || kv_heads < 1 || heads % kv_heads != 0 ||
        head_dim < 1 || layers < 1) {
        fprintf(stderr, "usage: %s [N_Q [Q_START [THREADS [SEQUENCES [HEADS KV_HEADS [HEAD_DIM [LAYERS]]]]]]] "
                        "(HEADS a multiple of KV_HEADS)\n", argv[0]);
        return 1;
    }
    hk_set_threads(threads);
    int keys = q_start + n_q;
    hk_attention_sequence *sequences = malloc((size_t)count * sizeof *sequences);
    if (!sequences) return 1;
    for (int s = 0; s < count; s++) {
        size_t query_floats = (size_t)n_q * heads * head_dim, key_floats = (size_t)keys * kv_heads * head_dim;
        float *q = malloc(query_floats * sizeof(float)), *out = malloc(query_floats * sizeof(float));
        float *k = malloc(key_floats * sizeof(float)), *v = malloc(key_floats * sizeof(float));
        if (!q || !out || !k || !v) return 1;
        // Queries twice the keys' range: softmaxes with a few dominant keys, as trained models give.
        for (size_t i = 0; i < query_floats; i++) q[i] = uniform(2.0f);
        for (size_t i = 0; i < key_floats; i++) {
            k[i] = uniform(1.0f);
            v[i] = uniform(1.0f);
        }
        sequences[s] = (hk_attention_sequence){q, k, v, out, n_q, q_start};
    }
    double best = 1e30;
    for (int pass = 0; pass < 20; pass++) {
        double start = now();
        for (int layer = 0; layer < layers; layer++) {
            hk_attention_batch(sequences, count, heads, kv_heads, head_dim, 1.0f / 8.0f);
        }
        double elapsed = now() - start;
        if (elapsed < best) best = elapsed;
    }
    double flops = 4.0 * heads * head_dim * ((double)n_q * q_start + 0.5 * n_q * (n_q + 1.0)) * count * layers;
    printf("%d sequences of %d queries after %d cached, heads %d/%d × %d, %d layers, %d threads: %.2f ms, %.1f GFLOP/s\n",
           count, n_q, q_start, heads, kv_heads, head_dim, layers, threads, best * 1e3, flops / best * 1e-9);
    return 0;
}
