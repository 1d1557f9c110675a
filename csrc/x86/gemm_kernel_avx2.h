/* The AVX2/FMA SGEMM micro-kernels, written once for every operator that
 * multiplies packed panels (csrc/x86/gemm_avx2.c: the GEMM engine;
 * csrc/x86/winograd_avx2.c: the 36 GEMMs of the plain-layout Winograd).
 *
 * A tile of 6 rows of A, packed k-major (6 floats per k, as
 * cnn_gemm_pack_a and the Winograd filter pack write them), times 16 (or
 * 8) columns of B: kc rows ldb floats apart, 32-byte aligned. The kernels
 * return the accumulators and the caller stores them its own way (the
 * GEMM's fused epilogue, Winograd's plain store). Always inlined: ldb folds
 * to a constant where it is one, and the accumulators stay in registers
 * through the caller's store.
 *
 * Include only from csrc/x86 C files, after their `#pragma GCC target`.
 */
#ifndef CNN_X86_GEMM_KERNEL_AVX2_H
#define CNN_X86_GEMM_KERNEL_AVX2_H

#include <immintrin.h>
#include <stdint.h>

/* Named accumulators: GCC keeps an array of them in memory. */
typedef struct cnn_acc_6x16 {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
} cnn_acc_6x16;

typedef struct cnn_acc_6x8 {
    __m256 c0, c1, c2, c3, c4, c5;
} cnn_acc_6x8;

/* acc (6 x 16) = A panel (kc x 6) * B (kc x 16): 12 ymm accumulators, 2 B
 * loads and 6 broadcasts per k (MLAS SgemmKernelFma3's row loop). */
static inline __attribute__((always_inline)) cnn_acc_6x16
cnn_gemm_f32_avx2_6x16(int64_t kc, const float *restrict a, const float *restrict b, int64_t ldb)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
        a += 6;
        b += ldb;
    }
    return (cnn_acc_6x16){c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
}

/* acc (6 x 8) = A panel (kc x 6) * the first 8 columns of B: the narrow
 * tail, half the FMAs of the 6x16 (N = 49 = 3*16 + 1 costs half a panel).
 * Even and odd k go to two accumulator sets so 12 FMA chains hide the FMA
 * latency. Narrower tail kernels for the N remainder are MLAS's idea
 * (SgemmKernelFma3: 16-, 8- and masked-column variants of one row loop). */
static inline __attribute__((always_inline)) cnn_acc_6x8
cnn_gemm_f32_avx2_6x8(int64_t kc, const float *restrict a, const float *restrict b, int64_t ldb)
{
    __m256 x0 = _mm256_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0;
    __m256 y0 = x0, y1 = x0, y2 = x0, y3 = x0, y4 = x0, y5 = x0;
    int64_t k = 0;
    for (; k + 2 <= kc; k += 2) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + ldb);
        x0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, x0);
        x1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, x1);
        x2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, x2);
        x3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, x3);
        x4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, x4);
        x5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, x5);
        y0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 6), b1, y0);
        y1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 7), b1, y1);
        y2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 8), b1, y2);
        y3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 9), b1, y3);
        y4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 10), b1, y4);
        y5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 11), b1, y5);
        a += 12;
        b += 2 * ldb;
    }
    if (k < kc) {
        __m256 b0 = _mm256_load_ps(b);
        x0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, x0);
        x1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, x1);
        x2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, x2);
        x3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, x3);
        x4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, x4);
        x5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, x5);
    }
    return (cnn_acc_6x8){_mm256_add_ps(x0, y0), _mm256_add_ps(x1, y1), _mm256_add_ps(x2, y2),
                         _mm256_add_ps(x3, y3), _mm256_add_ps(x4, y4), _mm256_add_ps(x5, y5)};
}

#endif
