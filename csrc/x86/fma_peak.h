/* The FMA peak loop, for one vector width (fma_peak_avx2.c: ymm,
 * fma_peak_avx512.c: zmm): each thread runs 12 independent chains of
 * vector FMAs (enough to cover latency x ports) for a fixed count, in
 * rounds whose fastest is its time (a shared machine preempts a long
 * single run: 37 GFLOP/s read for a 100+ loop), and the slowest thread's
 * time sets the rate. Expands to a function body taking
 * `threads`; VT the vector type, SET1 / FMA / ADD its intrinsics, LANES
 * its floats. */
#ifndef CNN_X86_FMA_PEAK_H
#define CNN_X86_FMA_PEAK_H

#ifdef _OPENMP
#include <omp.h>
#endif

#define CNN_FMA_PEAK_BODY(VT, SET1, FMA, ADD, LANES)                                      \
    const int64_t iters = 500000;                                                        \
    const int rounds = 40;                                                               \
    double worst = 0.0;                                                                  \
    float sink = 0.f;                                                                    \
    int team = 1;                                                                        \
    if (threads < 1)                                                                     \
        threads = 1;                                                                     \
    _Pragma("omp parallel num_threads(threads) reduction(max : worst) reduction(+ : sink)") \
    {                                                                                    \
        team = omp_get_num_threads();                                                    \
        const VT m = SET1(0.9999999f), a = SET1(1e-7f);                                  \
        VT x0 = SET1(0.f), x1 = SET1(1.f), x2 = SET1(2.f), x3 = SET1(3.f);               \
        VT x4 = SET1(4.f), x5 = SET1(5.f), x6 = SET1(6.f), x7 = SET1(7.f);               \
        VT x8 = SET1(8.f), x9 = SET1(9.f), x10 = SET1(10.f), x11 = SET1(11.f);           \
        _Pragma("omp barrier")                                                           \
        double t = 1e30;                                                                 \
        for (int round = 0; round < rounds; round++) {                                   \
            const double t0 = omp_get_wtime();                                           \
            for (int64_t it = 0; it < iters; it++) {                                     \
                x0 = FMA(x0, m, a); x1 = FMA(x1, m, a); x2 = FMA(x2, m, a);              \
                x3 = FMA(x3, m, a); x4 = FMA(x4, m, a); x5 = FMA(x5, m, a);              \
                x6 = FMA(x6, m, a); x7 = FMA(x7, m, a); x8 = FMA(x8, m, a);              \
                x9 = FMA(x9, m, a); x10 = FMA(x10, m, a); x11 = FMA(x11, m, a);          \
            }                                                                            \
            const double dt = omp_get_wtime() - t0;                                      \
            t = dt < t ? dt : t;                                                         \
        }                                                                                \
        VT s = ADD(ADD(ADD(x0, x1), ADD(x2, x3)), ADD(ADD(x4, x5), ADD(x6, x7)));        \
        s = ADD(s, ADD(ADD(x8, x9), ADD(x10, x11)));                                     \
        float out[LANES];                                                                \
        memcpy(out, &s, sizeof out);                                                     \
        sink += out[0];                                                                  \
        worst = t;                                                                       \
    }                                                                                    \
    if (sink == 12345.f)  /* keep the work observable */                                 \
        worst += 1e-9;                                                                   \
    /* 12 chains x LANES x 2 flops per iteration, per thread and round */                          \
    return worst > 0 ? (double)iters * 12 * 2 * (LANES) * team / worst * 1e-9 : 0.0;

#endif
