// OpenBLAS from Debian's libopenblas-dev: the C BLAS interface; its cblas.h also declares
// openblas_set_num_threads, which Hone uses so OpenBLAS and OpenMP share the cores without oversubscribing.
#include <cblas.h>
