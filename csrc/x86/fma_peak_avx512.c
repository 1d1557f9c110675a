#pragma GCC target("avx2,fma,avx512f")
/* The machine's fused multiply-add peak with zmm vectors, measured (the
 * loop: fma_peak.h): what the AVX-512 kernels are held against. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/gemm.h"
#include "fma_peak.h"

double cnn_fma_peak_gflops_avx512(int threads)
{
    CNN_FMA_PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16)
}
#endif
