#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* AVX-512 bodies of the long activations (SiLU, sigmoid, GELU in both
 * forms, erf): the AVX2 formulas of vmath_avx2.h on 16 lanes, operation
 * for operation, so the results are the same bits; every other activation
 * runs its AVX2 body. Why: these chains are long (SiLU: 16 operations and
 * a division per vector), and one zmm op does the work of two ymm ops
 * (docs/performance.md, 2026-12-06 20:23). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/eltwise.h"
#include "vmath_avx2.h"   /* the fits' constants, CNN_ERF_ZMAX */

#define V16(c) _mm512_set1_ps(c)

/* cnn_v_exp_nonpos on 16 lanes (the same constants and order). */
static inline __m512 exp_nonpos16(__m512 t)
{
    const __m512 magic = V16(12582912.f);
    t = _mm512_max_ps(V16(-88.f), t);
    __m512 fn = _mm512_fmadd_ps(t, V16(1.44269504088896341f), magic);
    __m512 n = _mm512_sub_ps(fn, magic);
    __m512 r = _mm512_fnmadd_ps(n, V16(0.693147180559945309f), t);
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 hi = _mm512_fmadd_ps(V16(CNN_EXPN_P3), r, V16(CNN_EXPN_P2));
    __m512 lo = _mm512_fmadd_ps(V16(CNN_EXPN_P1), r, V16(CNN_EXPN_P0));
    __m512 p = _mm512_fmadd_ps(hi, r2, lo);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, V16(1.f)));
    __m512i e = _mm512_slli_epi32(_mm512_castps_si512(fn), 23);
    e = _mm512_add_epi32(e, _mm512_set1_epi32(127 << 23));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

/* e = exp(-|x|) and the numerator n (1 for x >= 0, e for x < 0, picked
 * on the sign bit as blendv does). */
static inline __m512 logistic_parts(__m512 x, __m512 *n)
{
    const __m512 e = exp_nonpos16(
        _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
    *n = _mm512_mask_mov_ps(V16(1.f), _mm512_movepi32_mask(_mm512_castps_si512(x)), e);
    return e;
}

static inline __m512 silu16(__m512 x)
{
    __m512 n;
    const __m512 e = logistic_parts(x, &n);
    return _mm512_div_ps(_mm512_mul_ps(x, n), _mm512_add_ps(V16(1.f), e));
}

static inline __m512 sigmoid16(__m512 x)
{
    __m512 n;
    const __m512 e = logistic_parts(x, &n);
    return _mm512_div_ps(n, _mm512_add_ps(V16(1.f), e));
}

/* cnn_v_erf on 16 lanes (vmath_avx2.h: the same fit and saturation). */
static inline __m512 erf16(__m512 z)
{
    const __m512 zc = _mm512_min_ps(V16(CNN_ERF_ZMAX), _mm512_max_ps(V16(-CNN_ERF_ZMAX), z));
    const __m512 t = _mm512_mul_ps(zc, zc);
    __m512 p = V16(CNN_ERF_P5);
    p = _mm512_fmadd_ps(p, t, V16(CNN_ERF_P4));
    p = _mm512_fmadd_ps(p, t, V16(CNN_ERF_P3));
    p = _mm512_fmadd_ps(p, t, V16(CNN_ERF_P2));
    p = _mm512_fmadd_ps(p, t, V16(CNN_ERF_P1));
    p = _mm512_fmadd_ps(p, t, V16(CNN_ERF_P0));
    __m512 q = V16(CNN_ERF_Q5);
    q = _mm512_fmadd_ps(q, t, V16(CNN_ERF_Q4));
    q = _mm512_fmadd_ps(q, t, V16(CNN_ERF_Q3));
    q = _mm512_fmadd_ps(q, t, V16(CNN_ERF_Q2));
    q = _mm512_fmadd_ps(q, t, V16(CNN_ERF_Q1));
    q = _mm512_fmadd_ps(q, t, V16(1.f));
    const __m512 r = _mm512_div_ps(_mm512_mul_ps(zc, p), q);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(zc), _mm512_set1_epi32(INT32_MIN));
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(V16(1.f)), sign));
    const __m512 az = _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_set1_epi32(INT32_MIN),
                                                              _mm512_castps_si512(zc)));
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(az, V16(CNN_ERF_ZMAX), _CMP_GE_OQ), one);
}

static inline __m512 gelu16(__m512 x)
{
    const __m512 e = erf16(_mm512_mul_ps(x, V16(0.70710678118654752f)));
    const __m512 hx = _mm512_mul_ps(V16(0.5f), x);
    return _mm512_fmadd_ps(hx, e, hx);
}

/* cnn_v_gelu_tanh: x sigmoid(2u), SiLU's form. */
static inline __m512 gelu_tanh16(__m512 x)
{
    const __m512 x2 = _mm512_mul_ps(x, x);
    const __m512 u2 = _mm512_mul_ps(_mm512_mul_ps(x, V16(1.5957691216057308f)),
                                    _mm512_fmadd_ps(x2, V16(0.044715f), V16(1.f)));
    __m512 n;
    const __m512 e = logistic_parts(u2, &n);
    return _mm512_div_ps(_mm512_mul_ps(x, n), _mm512_add_ps(V16(1.f), e));
}

/* EXPR(v) over x[0..n) -> y, two independent vectors per step (four were
 * no faster), the tail under a lane mask. */
#define ACT16_LOOP(EXPR)                                                  \
    do {                                                                  \
        int64_t i_ = 0;                                                   \
        for (; i_ + 32 <= n; i_ += 32) {                                  \
            __m512 v = _mm512_loadu_ps(x + i_);                           \
            const __m512 r0_ = (EXPR);                                    \
            v = _mm512_loadu_ps(x + i_ + 16);                             \
            const __m512 r1_ = (EXPR);                                    \
            _mm512_storeu_ps(y + i_, r0_);                                \
            _mm512_storeu_ps(y + i_ + 16, r1_);                           \
        }                                                                 \
        for (; i_ < n; i_ += 16) {                                        \
            const __mmask16 m_ = n - i_ >= 16 ? (__mmask16)0xffff         \
                                              : (__mmask16)((1u << (n - i_)) - 1u); \
            __m512 v = _mm512_maskz_loadu_ps(m_, x + i_);                 \
            _mm512_mask_storeu_ps(y + i_, m_, (EXPR));                    \
        }                                                                 \
    } while (0)

void cnn_act_row_avx512(const cnn_epilogue *ep, const float *x, float *y, int64_t n)
{
    switch (ep->act) {
    case CNN_ACT_SILU: ACT16_LOOP(silu16(v)); break;
    case CNN_ACT_SIGMOID: ACT16_LOOP(sigmoid16(v)); break;
    case CNN_ACT_GELU: ACT16_LOOP(gelu16(v)); break;
    case CNN_ACT_GELU_TANH: ACT16_LOOP(gelu_tanh16(v)); break;
    case CNN_ACT_ERF: ACT16_LOOP(erf16(v)); break;
    default: cnn_act_row_avx2(ep, x, y, n); break;
    }
}
#endif
