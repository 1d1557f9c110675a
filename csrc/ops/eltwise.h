/* Private prototypes shared by csrc/ops/{activation,prelu,binary}.c (and
 * the blocked conv epilogue, csrc/x86/nchwc_avx2.c) and
 * their AVX2 bodies in csrc/x86/; not part of the public API. */
#ifndef CNN_ELTWISE_H
#define CNN_ELTWISE_H

#include "internal.h"

/* Scalar bodies (the oracles). y may equal x. */
void cnn_act_row_ref(const cnn_epilogue *ep, const float *x, float *y, int64_t n);
void cnn_prelu_row_ref(const float *x, float *y, int64_t n, float slope);
/* y[i] = a[i*sa] op b[i*sb], i < n. */
void cnn_binary_row_ref(int op, int64_t n, const float *a, int64_t sa,
                        const float *b, int64_t sb, float *y);

#if defined(__x86_64__)
void cnn_act_row_avx2(const cnn_epilogue *ep, const float *x, float *y, int64_t n);
/* SiLU and sigmoid on zmm, the rest as cnn_act_row_avx2 (AVX-512 CPUs only). */
void cnn_act_row_avx512(const cnn_epilogue *ep, const float *x, float *y, int64_t n);
void cnn_prelu_row_avx2(const float *x, float *y, int64_t n, float slope);
void cnn_binary_row_avx2(int op, int64_t n, const float *a, int64_t sa,
                         const float *b, int64_t sb, float *y);
#endif

/* One element of a cnn_binop; the definition every SIMD body matches. */
static inline float cnn_binop_scalar(int op, float a, float b)
{
    switch (op) {
    case CNN_BIN_ADD: return a + b;
    case CNN_BIN_SUB: return a - b;
    case CNN_BIN_MUL: return a * b;
    case CNN_BIN_DIV: return a / b;
    /* NumPy maximum/minimum: NaN in either operand wins */
    case CNN_BIN_MAX: return (a > b || a != a) ? a : b;
    case CNN_BIN_MIN: return (a < b || a != a) ? a : b;
    default: return powf(a, b);
    }
}

/* Elements per parallel work item: big enough to amortise scheduling, small
 * enough that a single long row still splits across the team. */
#define CNN_ELT_CHUNK 8192

static inline int cnn_team(int threads, int64_t items)
{
    if (threads < 1 || items < 2)
        return 1;
    return items < threads ? (int)items : threads;
}

#endif
