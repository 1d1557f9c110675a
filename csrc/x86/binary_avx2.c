#pragma GCC target("avx2,fma")
/* AVX2 rows of the broadcasting binary ops: dense op dense, dense op
 * broadcast value and value op dense; other strides and pow take the
 * scalar row. Remainders use cnn_binop_scalar, which is bitwise the same
 * IEEE operation as the vector one (max/min included). */
#if defined(__x86_64__)
#include "../ops/eltwise.h"
#include "vmath_avx2.h"

static inline __m256 v_binop(int op, __m256 a, __m256 b)
{
    switch (op) {
    case CNN_BIN_ADD: return _mm256_add_ps(a, b);
    case CNN_BIN_SUB: return _mm256_sub_ps(a, b);
    case CNN_BIN_MUL: return _mm256_mul_ps(a, b);
    case CNN_BIN_DIV: return _mm256_div_ps(a, b);
    /* max_ps(a, b) yields b when either is NaN; a NaN a must win too */
    case CNN_BIN_MAX:
        return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    default:
        return _mm256_blendv_ps(_mm256_min_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
}

#define CNN_BIN_LOOP(OP, LA, LB, SA, SB)                                    \
    do {                                                                    \
        int64_t i = 0;                                                      \
        for (; i + 16 <= n; i += 16) {                                      \
            __m256 r0 = v_binop(OP, LA(i), LB(i));                          \
            __m256 r1 = v_binop(OP, LA(i + 8), LB(i + 8));                  \
            _mm256_storeu_ps(y + i, r0);                                    \
            _mm256_storeu_ps(y + i + 8, r1);                                \
        }                                                                   \
        for (; i + 8 <= n; i += 8)                                          \
            _mm256_storeu_ps(y + i, v_binop(OP, LA(i), LB(i)));             \
        for (; i < n; i++)                                                  \
            y[i] = cnn_binop_scalar(OP, SA(i), SB(i));                      \
    } while (0)

#define LD_A(i) _mm256_loadu_ps(a + (i))
#define LD_B(i) _mm256_loadu_ps(b + (i))
#define BC_A(i) va
#define BC_B(i) vb
#define SC_A(i) a[i]
#define SC_B(i) b[i]
#define S0_A(i) a[0]
#define S0_B(i) b[0]

/* One op per instantiation so the switch in v_binop folds away. */
#define CNN_BIN_DISPATCH(LA, LB, SA, SB)                                    \
    switch (op) {                                                           \
    case CNN_BIN_ADD: CNN_BIN_LOOP(CNN_BIN_ADD, LA, LB, SA, SB); break;     \
    case CNN_BIN_SUB: CNN_BIN_LOOP(CNN_BIN_SUB, LA, LB, SA, SB); break;     \
    case CNN_BIN_MUL: CNN_BIN_LOOP(CNN_BIN_MUL, LA, LB, SA, SB); break;     \
    case CNN_BIN_DIV: CNN_BIN_LOOP(CNN_BIN_DIV, LA, LB, SA, SB); break;     \
    case CNN_BIN_MAX: CNN_BIN_LOOP(CNN_BIN_MAX, LA, LB, SA, SB); break;     \
    default: CNN_BIN_LOOP(CNN_BIN_MIN, LA, LB, SA, SB); break;              \
    }

void cnn_binary_row_avx2(int op, int64_t n, const float *a, int64_t sa,
                         const float *b, int64_t sb, float *y)
{
    if (op < CNN_BIN_ADD || op > CNN_BIN_MIN || n < 8) {
        cnn_binary_row_ref(op, n, a, sa, b, sb, y);
        return;
    }
    if (sa == 1 && sb == 1) {
        CNN_BIN_DISPATCH(LD_A, LD_B, SC_A, SC_B)
    } else if (sa == 1 && sb == 0) {
        const __m256 vb = _mm256_set1_ps(b[0]);
        CNN_BIN_DISPATCH(LD_A, BC_B, SC_A, S0_B)
    } else if (sa == 0 && sb == 1) {
        const __m256 va = _mm256_set1_ps(a[0]);
        CNN_BIN_DISPATCH(BC_A, LD_B, S0_A, SC_B)
    } else {
        cnn_binary_row_ref(op, n, a, sa, b, sb, y);
    }
}

#endif
