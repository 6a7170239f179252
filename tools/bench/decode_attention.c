// Decode-attention micro-benchmark: one query token's attention (hk_attention with n_q = 1) over the KV caches
// of every layer of a model shape, layer after layer as a decode step runs them, the caches together larger than
// the L3 so that each step reads them from memory. Prints the best of 30 steps in ms and the bytes of keys and
// values read per second.
//
// Build (from the repository root; HoneKernels' objects from any build of this tree, as for
// tools/bench/quant_decode_kernel.c):
//   S=Sources/HoneKernels; mkdir -p /tmp/hk && for f in $S/*.c; do clang -c -O3 -std=c11 -fno-math-errno \
//     -fopenmp -I$S/include -I$S $f -o /tmp/hk/$(basename $f .c).o; done
//   clang -O2 -I$S/include tools/bench/decode_attention.c /tmp/hk/*.o -o /tmp/hk/attention -fopenmp \
//     -L/usr/lib/llvm-14/lib -lomp -lopenblas -lm
// Run: /tmp/hk/attention [KEYS [THREADS [HEADS KV_HEADS HEAD_DIM LAYERS]]]   (default: 1088 keys, 1 thread,
// SmolLM2-135M's 9 heads, 3 KV heads, 64 features, 30 layers; TinyLlama-1.1B is 32 4 64 22)
// HONE_ISA=avx2 (or scalar) in the environment times the lower level.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hone_kernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int keys = argc > 1 ? atoi(argv[1]) : 1088, threads = argc > 2 ? atoi(argv[2]) : 1;
    int heads = 9, kv_heads = 3, head_dim = 64, layers = 30;
    if (argc > 6) {
        heads = atoi(argv[3]);
        kv_heads = atoi(argv[4]);
        head_dim = atoi(argv[5]);
        layers = atoi(argv[6]);
    }
    if (keys < 1 || threads < 1 || heads < 1 || kv_heads < 1 || heads % kv_heads != 0 || head_dim < 1 || layers < 1) {
        fprintf(stderr, "usage: %s [KEYS [THREADS [HEADS KV_HEADS HEAD_DIM LAYERS]]] (HEADS a multiple of KV_HEADS)\n", argv[0]);
        return 1;
    }
    const char *isa = getenv("HONE_ISA");
    if (isa && strcmp(isa, "scalar") == 0) hk_isa_force(HK_ISA_SCALAR);
    if (isa && strcmp(isa, "avx2") == 0) hk_isa_force(HK_ISA_AVX2);
    hk_set_threads(threads);

    size_t cache_floats = (size_t)keys * kv_heads * head_dim;
    float **k = malloc(sizeof(float *) * layers), **v = malloc(sizeof(float *) * layers);
    float *q = malloc(sizeof(float) * heads * head_dim), *out = malloc(sizeof(float) * heads * head_dim);
    for (int l = 0; l < layers; l++) {
        k[l] = malloc(sizeof(float) * cache_floats);
        v[l] = malloc(sizeof(float) * cache_floats);
        if (!k[l] || !v[l]) {
            fprintf(stderr, "out of memory for %d layers of %d keys\n", layers, keys);
            return 1;
        }
        for (size_t i = 0; i < cache_floats; i++) {
            k[l][i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
            v[l][i] = (float)((i * 5) % 11) / 11.0f - 0.5f;
        }
    }
    for (int i = 0; i < heads * head_dim; i++) q[i] = (float)(i % 9) / 9.0f - 0.5f;
    float scale = 1.0f / (float)head_dim;
    double best = 1e30;
    for (int step = 0; step < 30; step++) {
        double start = now();
        for (int l = 0; l < layers; l++) hk_attention(q, k[l], v[l], out, 1, keys - 1, heads, kv_heads, head_dim, scale);
        double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    double bytes = 2.0 * (double)cache_floats * sizeof(float) * layers;
    printf("%d keys, %d/%d heads of %d, %d layers, %d thread(s): %.3f ms per step, %.1f GB/s of keys and values\n",
           keys, heads, kv_heads, head_dim, layers, threads, best * 1e3, bytes / best / 1e9);
    return 0;
}
