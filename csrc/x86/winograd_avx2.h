/* The 1-D Winograd F(4, 3) transforms on 8 lanes, shared by the plain
 * (csrc/x86/winograd_avx2.c: lanes are 8 tiles) and the blocked
 * (csrc/x86/winograd_nchwc_avx2.c: lanes are 8 channels) layouts. */
#ifndef CNN_X86_WINOGRAD_AVX2_H
#define CNN_X86_WINOGRAD_AVX2_H

#include <immintrin.h>

#include "vmath_avx2.h"

/* 1-D B^T on 6 vectors (ncnn winograd43 factoring). */
static inline __attribute__((always_inline)) void bt6v(__m256 d0, __m256 d1, __m256 d2, __m256 d3, __m256 d4, __m256 d5,
                        __m256 r[6])
{
    const __m256 four = CNN_V(4.f), five = CNN_V(5.f), two = CNN_V(2.f);
    __m256 a = _mm256_fnmadd_ps(four, d2, d4);    /* d4 - 4 d2 */
    __m256 b = _mm256_fnmadd_ps(four, d1, d3);    /* d3 - 4 d1 */
    __m256 e = _mm256_sub_ps(d4, d2);
    __m256 f = _mm256_mul_ps(two, _mm256_sub_ps(d3, d1));
    r[0] = _mm256_fmadd_ps(four, d0, _mm256_fnmadd_ps(five, d2, d4));
    r[1] = _mm256_add_ps(a, b);
    r[2] = _mm256_sub_ps(a, b);
    r[3] = _mm256_add_ps(e, f);
    r[4] = _mm256_sub_ps(e, f);
    r[5] = _mm256_fmadd_ps(four, d1, _mm256_fnmadd_ps(five, d3, d5));
}

/* 1-D A^T on 6 vectors -> 4. */
static inline __attribute__((always_inline)) void at6v(__m256 m0, __m256 m1, __m256 m2, __m256 m3, __m256 m4, __m256 m5,
                        __m256 o[4])
{
    __m256 a = _mm256_add_ps(m1, m2), b = _mm256_sub_ps(m1, m2);
    __m256 c = _mm256_add_ps(m3, m4), d = _mm256_sub_ps(m3, m4);
    o[0] = _mm256_add_ps(_mm256_add_ps(m0, a), c);
    o[1] = _mm256_fmadd_ps(CNN_V(2.f), d, b);
    o[2] = _mm256_fmadd_ps(CNN_V(4.f), c, a);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(CNN_V(8.f), d, b), m5);
}

#endif
