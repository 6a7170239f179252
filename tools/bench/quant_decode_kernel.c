// Decode-kernel micro-benchmark: one activation row through hk_matmul_rows_quant (1 thread) on a TinyLlama
// weight shape, the weights streamed from memory (copies of the matrix cycled past the L3 cache), best of 300
// calls (the shortest call is the one least disturbed on a shared machine). Prints the weight stream in GB/s
// next to the read bandwidth of the same bytes measured the same way (hk_read_sum over the same copies, best
// of 300: the decode limit under the same conditions), and the largest deviation from the integer reference
// (hk_matmul_quant_int_ref).
//
// Build (from the repository root; HoneKernels' objects from any build of this tree):
//   S=Sources/HoneKernels; mkdir -p /tmp/hk && for f in $S/*.c; do clang -c -O3 -std=c11 -fno-math-errno \
//     -fopenmp -I$S/include -I$S $f -o /tmp/hk/$(basename $f .c).o; done
//   clang -O2 -I$S/include tools/bench/quant_decode_kernel.c /tmp/hk/*.o -o /tmp/hk/bench -fopenmp \
//     -L/usr/lib/llvm-14/lib -lomp -lopenblas -lm
// Run: /tmp/hk/bench TYPE_ID [OUT IN [COPIES [ROWS]]]   (type ids as ggml's: 10 Q2_K, 11 Q3_K, 6 Q5_0, 7 Q5_1, ...)
// ROWS > 1 (up to 16) times the batched decode of that many sequences (GB/s then counts the weights once).
// HONE_ISA=avx2 (or scalar) in the environment times the lower level's kernel.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hone_kernels.h"
#include "hone_quant.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float uniform(void) { return (float)((double)rand() / RAND_MAX - 0.5); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TYPE_ID [OUT IN [COPIES]]\n", argv[0]);
        return 2;
    }
    int type = atoi(argv[1]);
    int out = argc > 3 ? atoi(argv[2]) : 5632, in = argc > 3 ? atoi(argv[3]) : 2048;
    int copies = argc > 4 ? atoi(argv[4]) : 12; // 12 x a few MB: past the 32 MB L3
    int rows = argc > 5 ? atoi(argv[5]) : 1;
    hk_set_threads(1);
    // HONE_ISA=scalar|avx2|avx512 caps the kernels' level, as it does for hone.
    const char *isa = getenv("HONE_ISA");
    if (isa && strcmp(isa, "scalar") == 0) hk_isa_force(HK_ISA_SCALAR);
    if (isa && strcmp(isa, "avx2") == 0) hk_isa_force(HK_ISA_AVX2);
    size_t matrix_bytes = hk_quant_row_bytes(type, in) * (size_t)out;
    float *weights = malloc(sizeof(float) * (size_t)out * in);
    unsigned char *w = malloc(matrix_bytes * copies);
    float *x = malloc(sizeof(float) * in * rows), *y = malloc(sizeof(float) * out * rows);
    float *reference = malloc(sizeof(float) * out * rows);
    srand(1);
    for (size_t i = 0; i < (size_t)out * in; i++) weights[i] = uniform();
    for (int i = 0; i < in * rows; i++) x[i] = uniform();
    if (hk_quantize(type, weights, w, out, in) != 0) {
        fprintf(stderr, "type %d cannot be quantized here\n", type);
        return 1;
    }
    for (int c = 1; c < copies; c++) memcpy(w + matrix_bytes * c, w, matrix_bytes);
    hk_matmul_quant_int_ref(type, w, x, reference, rows, in, out);
    hk_matmul_rows_quant(type, w, x, y, rows, in, out);
    double deviation = 0, magnitude = 0;
    for (int o = 0; o < out * rows; o++) {
        deviation = fmax(deviation, fabs(y[o] - reference[o]));
        magnitude = fmax(magnitude, fabs(reference[o]));
    }
    double best = 1e9;
    for (int call = 0; call < 300; call++) {
        double start = now();
        hk_matmul_rows_quant(type, w + matrix_bytes * (call % copies), x, y, rows, in, out);
        double elapsed = now() - start;
        if (elapsed < best) best = elapsed;
    }
    double best_read = 1e9, sink = 0;
    for (int call = 0; call < 300; call++) {
        double start = now();
        sink += hk_read_sum((const float *)(w + matrix_bytes * (call % copies)), matrix_bytes / sizeof(float));
        double elapsed = now() - start;
        if (elapsed < best_read) best_read = elapsed;
    }
    double kernel_rate = matrix_bytes / best / 1e9, read_rate = matrix_bytes / best_read / 1e9;
    printf("%d row(s) ", rows);
    printf("type %d [%d, %d] %.2f MB: %.3f ms, %.1f GB/s = %.0f %% of the read bandwidth %.1f GB/s, %.1f G weights/s; "
           "max deviation %.2g (of |y| <= %.2g)%s\n",
           type, out, in, matrix_bytes / 1e6, best * 1e3, kernel_rate, 100 * kernel_rate / read_rate, read_rate,
           (double)out * in * rows / best / 1e9, deviation, magnitude, sink == 12345.0 ? " " : "");
    return 0;
}
