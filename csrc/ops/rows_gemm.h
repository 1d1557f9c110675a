/* Private to rows_gemm.c and x86/rows_gemm_avx2.c: a product over gathered
 * weight rows (cnn_rows_gemm_f32, cnnengine.h). */
#ifndef CNN_OPS_ROWS_GEMM_H
#define CNN_OPS_ROWS_GEMM_H

#include "internal.h"

/* y[i*ldy + c] += alpha * sum_j d[i*ldd + j] * w[rows[j]*ldw + c] for i < m,
 * c in [c0, c1), j < k: one thread, validated arguments. */
void cnn_rows_gemm_block_ref(int64_t m, int64_t c0, int64_t c1, int64_t k, float alpha,
                             const float *d, int64_t ldd, const int64_t *rows, const float *w,
                             int64_t ldw, float *y, int64_t ldy);
#if defined(__x86_64__)
void cnn_rows_gemm_block_avx2(int64_t m, int64_t c0, int64_t c1, int64_t k, float alpha,
                              const float *d, int64_t ldd, const int64_t *rows, const float *w,
                              int64_t ldw, float *y, int64_t ldy);
#endif

#endif
