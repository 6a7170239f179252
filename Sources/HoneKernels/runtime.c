#include "hone_kernels.h"
#include "hone_openmp.h"

void hk_set_threads(int threads) { if (threads > 0) omp_set_num_threads(threads); }
int hk_get_threads(void) { return omp_get_max_threads(); }
