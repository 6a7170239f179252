// The Swift toolchain ships no omp.h; these are the few OpenMP runtime functions HoneKernels calls
// (LLVM's libomp5, from Debian's libomp-dev).
#ifndef HONE_OPENMP_H
#define HONE_OPENMP_H
int omp_get_thread_num(void);
int omp_get_num_threads(void);
int omp_get_max_threads(void);
void omp_set_num_threads(int threads);
#endif
