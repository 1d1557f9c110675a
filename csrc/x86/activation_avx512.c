#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* AVX-512 bodies of the long activations (SiLU, sigmoid, GELU in both
 * forms, erf); every other activation runs its AVX2 body. Why: these
 * chains are long, and one zmm op does the work of two ymm ops
 * (docs/performance.md, 2026-12-06 20:23). erf and GELU are the AVX2
 * formulas of vmath_avx2.h on 16 lanes, operation for operation (the same
 * bits); the logistic ones (SiLU, sigmoid, GELU-tanh) take AVX-512's own
 * rounding and scaling instead (exp_neg16), 14 operations a vector where
 * the AVX2 form takes 20: SiLU 2.9 vs 3.6 ns a vector, within the same
 * error bound (3.2e-7 relative) but not always the same bits. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/eltwise.h"
#include "vmath_avx2.h"   /* the fits' constants, CNN_ERF_ZMAX */

#define V16(c) _mm512_set1_ps(c)

/* exp(-t), t = x clamped to [-104, 88] (NaN passes), as 2^n p(-s): n =
 * round(-t log2 e) by roundscale, s = t + n ln 2 with one FMA, p the
 * AVX2 fit's polynomial (cnn_v_exp_nonpos) with its odd terms' signs
 * turned, 2^n applied by scalef: +inf from t < -88.7, so sigmoid is 0
 * there exactly, and 1 + exp(-t) is 1 from t > 17. No sign trick needed. */
static inline __m512 exp_neg16(__m512 x)
{
    const __m512 t = _mm512_min_ps(V16(88.f), _mm512_max_ps(V16(-104.f), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, V16(-1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 s = _mm512_fmadd_ps(n, V16(0.693147180559945309f), t);
    const __m512 s2 = _mm512_mul_ps(s, s);
    const __m512 hi = _mm512_fmadd_ps(V16(-CNN_EXPN_P3), s, V16(CNN_EXPN_P2));
    const __m512 lo = _mm512_fmadd_ps(V16(-CNN_EXPN_P1), s, V16(CNN_EXPN_P0));
    __m512 p = _mm512_fmadd_ps(hi, s2, lo);
    p = _mm512_fmadd_ps(p, s2, _mm512_sub_ps(V16(1.f), s));
    return _mm512_scalef_ps(p, n);
}

/* x / (1 + exp(-x)): +inf stays +inf, -inf gives NaN (as the AVX2 form
 * and PyTorch: -inf * 0). */
static inline __m512 silu16(__m512 x)
{
    return _mm512_div_ps(x, _mm512_add_ps(V16(1.f), exp_neg16(x)));
}

static inline __m512 sigmoid16(__m512 x)
{
    return _mm512_div_ps(V16(1.f), _mm512_add_ps(V16(1.f), exp_neg16(x)));
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
    return _mm512_div_ps(x, _mm512_add_ps(V16(1.f), exp_neg16(u2)));
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
