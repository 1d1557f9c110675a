#pragma GCC target("avx2,fma")
/* The machine's fused multiply-add peak, measured: each thread runs chains
 * of independent ymm FMAs (enough to cover latency x ports) for a fixed
 * count, and the slowest thread's time sets the rate. For benchmarks. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

double cnn_fma_peak_gflops_avx2(int threads)
{
    const int64_t iters = 20000000;
    double worst = 0.0;
    float sink = 0.f;
    int team = 1;
    if (threads < 1)
        threads = 1;
#pragma omp parallel num_threads(threads) reduction(max : worst) reduction(+ : sink)
    {
#ifdef _OPENMP
#pragma omp single
        team = omp_get_num_threads();
#endif
        __m256 x[12];
        __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
        for (int i = 0; i < 12; i++)
            x[i] = _mm256_set1_ps((float)i);
#ifdef _OPENMP
#pragma omp barrier
        double t0 = omp_get_wtime();
#endif
        for (int64_t it = 0; it < iters; it++) {
            /* 12 independent chains keep 2 FMA pipes x 4-5 cycles busy. */
            x[0] = _mm256_fmadd_ps(x[0], m, a);
            x[1] = _mm256_fmadd_ps(x[1], m, a);
            x[2] = _mm256_fmadd_ps(x[2], m, a);
            x[3] = _mm256_fmadd_ps(x[3], m, a);
            x[4] = _mm256_fmadd_ps(x[4], m, a);
            x[5] = _mm256_fmadd_ps(x[5], m, a);
            x[6] = _mm256_fmadd_ps(x[6], m, a);
            x[7] = _mm256_fmadd_ps(x[7], m, a);
            x[8] = _mm256_fmadd_ps(x[8], m, a);
            x[9] = _mm256_fmadd_ps(x[9], m, a);
            x[10] = _mm256_fmadd_ps(x[10], m, a);
            x[11] = _mm256_fmadd_ps(x[11], m, a);
            __asm__ volatile("" : "+x"(x[0]), "+x"(x[1]), "+x"(x[2]), "+x"(x[3]));
        }
#ifdef _OPENMP
        double t = omp_get_wtime() - t0;
#else
        double t = 1.0;
#endif
        __m256 s = x[0];
        for (int i = 1; i < 12; i++)
            s = _mm256_add_ps(s, x[i]);
        float out[8];
        _mm256_storeu_ps(out, s);
        sink += out[0];
        worst = t;
    }
    if (sink == 12345.f)  /* keep the work observable */
        worst += 1e-9;
    /* 12 chains x 8 lanes x 2 flops per iteration, per thread. */
    return worst > 0 ? (double)iters * 12 * 16 * team / worst * 1e-9 : 0.0;
}
#endif
