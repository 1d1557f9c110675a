#pragma GCC target("avx2,fma")
/* The machine's fused multiply-add peak with ymm vectors, measured (the
 * loop: fma_peak.h). For benchmarks. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/gemm.h"
#include "fma_peak.h"

double cnn_fma_peak_gflops_avx2(int threads)
{
    CNN_FMA_PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8)
}
#endif
