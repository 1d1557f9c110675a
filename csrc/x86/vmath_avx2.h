/* AVX2/FMA vector math for the x86 kernels: static inline, include only from
 * the csrc/x86 C files (after their `#pragma GCC target("avx2,fma")`).
 *
 * Conventions: every function takes and returns 8 floats; constants come
 * first in max/min (_mm256_max_ps(c, x) returns x when x is NaN) so NaN
 * inputs propagate as they do in the scalar definitions (cnn_act_scalar).
 *
 * exp/expm1: Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2, ln2 split
 *   in a short high part and a correction, as Cephes), expm1(r) by its
 *   Taylor series to r^7 (truncation < 2e-8 relative on that interval), then
 *   exp = 2^n + 2^n expm1(r) and expm1 = 2^n expm1(r) + (2^n - 1), each one
 *   FMA: expm1 keeps full relative accuracy near 0 (n = 0 there).
 * erf: z P(z^2) / Q(z^2), our own fit (tools/fit_erf.py, Lawson-weighted
 *   least squares for the max absolute error on [0, 3.92]); |z| >= 3.92 is
 *   exactly +-1, as erff rounds there.
 */
#ifndef CNN_VMATH_AVX2_H
#define CNN_VMATH_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#define CNN_V(c) _mm256_set1_ps(c)
/* exp's P(r) and erf's P/Q fits: shared with the AVX-512 bodies
 * (activation_avx512.c), which must give the same bits */
#define CNN_EXPN_P3 0.008169389329850674f
#define CNN_EXPN_P2 0.04184440150856972f
#define CNN_EXPN_P1 0.16668611764907837f
#define CNN_EXPN_P0 0.4999969005584717f
#define CNN_ERF_P5 2.0347336e-06f
#define CNN_ERF_P4 0.00028747818f
#define CNN_ERF_P3 0.0038682942f
#define CNN_ERF_P2 0.053060375f
#define CNN_ERF_P1 0.19276334f
#define CNN_ERF_P0 1.128379f
#define CNN_ERF_Q5 3.8070564e-05f
#define CNN_ERF_Q4 0.0011881064f
#define CNN_ERF_Q3 0.015172228f
#define CNN_ERF_Q2 0.11508431f
#define CNN_ERF_Q1 0.50416374f

/* Mask of the first `rem` lanes (0 < rem < 8) for masked loads/stores. */
static inline __m256i cnn_tail_mask(int64_t rem)
{
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                      0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256((const __m256i *)(lanes + 8 - rem));
}

/* 2^n for integral n in [-126, 127] held as floats. */
static inline __m256 cnn_v_pow2i(__m256 n)
{
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}

/* expm1(r) for |r| <= ln2/2 (Taylor to r^7; Horner with FMA). */
static inline __m256 cnn_v_expm1_reduced(__m256 r)
{
    __m256 p = CNN_V(1.f / 5040.f);
    p = _mm256_fmadd_ps(p, r, CNN_V(1.f / 720.f));
    p = _mm256_fmadd_ps(p, r, CNN_V(1.f / 120.f));
    p = _mm256_fmadd_ps(p, r, CNN_V(1.f / 24.f));
    p = _mm256_fmadd_ps(p, r, CNN_V(1.f / 6.f));
    p = _mm256_fmadd_ps(p, r, CNN_V(0.5f));
    __m256 r2 = _mm256_mul_ps(r, r);
    return _mm256_fmadd_ps(p, r2, r);
}

/* x = n ln2 + r; returns r, sets *n (x already clamped to a finite range). */
static inline __m256 cnn_v_reduce_ln2(__m256 x, __m256 *n)
{
    *n = _mm256_round_ps(_mm256_mul_ps(x, CNN_V(1.44269504088896341f)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(*n, CNN_V(0.693359375f), x);
    return _mm256_fnmadd_ps(*n, CNN_V(-2.12194440e-4f), r);
}

/* exp(x): 0 below -87.34 (where expf goes denormal; 2^n must stay normal),
 * 2.4e38 instead of inf above 88.37 (callers here only use x <= 0). */
static inline __m256 cnn_v_exp(__m256 x)
{
    __m256 under = _mm256_cmp_ps(x, CNN_V(-87.33654475f), _CMP_LT_OQ);
    __m256 xc = _mm256_min_ps(CNN_V(88.3762626647949f), _mm256_max_ps(CNN_V(-87.33654475f), x));
    __m256 n;
    __m256 r = cnn_v_reduce_ln2(xc, &n);
    __m256 s = cnn_v_pow2i(n);
    return _mm256_andnot_ps(under, _mm256_fmadd_ps(s, cnn_v_expm1_reduced(r), s));
}

/* expm1(x), accurate relative to the result near 0; -1 below -87, 2.4e38
 * above 88.37. */
static inline __m256 cnn_v_expm1(__m256 x)
{
    x = _mm256_min_ps(CNN_V(88.3762626647949f), _mm256_max_ps(CNN_V(-87.0f), x));
    __m256 n;
    __m256 r = cnn_v_reduce_ln2(x, &n);
    __m256 s = cnn_v_pow2i(n);
    return _mm256_fmadd_ps(s, cnn_v_expm1_reduced(r), _mm256_sub_ps(s, CNN_V(1.f)));
}

/* -|x| (sign bit forced on). */
static inline __m256 cnn_v_negabs(__m256 x)
{
    return _mm256_or_ps(x, CNN_V(-0.f));
}

/* exp(t) for t <= 0 (or NaN), for the logistic functions: t is clamped
 * to -88, so n >= -127, and n = -127 (t < -87.68) builds the bits of +0:
 * exp is 0 there (expf is below 2^-126 there), NaN stays NaN. Short, since sigmoid/SiLU run over
 * every output of EfficientNet's convs: n = round(t log2 e) by the
 * 1.5*2^23 magic-number addition (no round/convert), whose float's low
 * bits hold n, so (bits << 23) + (127 << 23) is 2^n (the magic's own bits
 * shift out); r = t - n ln2 with one FMA (ln2's float rounding costs
 * n * 1.9e-9 <= 2.4e-7 relative, only where exp(t) < 2^-100 matters less);
 * exp(r) = 1 + r + r^2 P(r), P of degree 3 fitted for the relative error
 * on |r| <= ln2/2 (max 3.3e-7 in float, tools-free: Lawson-weighted least
 * squares). 12 instructions, 8 of them on the FMA pipes. */
static inline __m256 cnn_v_exp_nonpos(__m256 t)
{
    const __m256 magic = CNN_V(12582912.f);
    t = _mm256_max_ps(CNN_V(-88.f), t);
    __m256 fn = _mm256_fmadd_ps(t, CNN_V(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(fn, magic);
    __m256 r = _mm256_fnmadd_ps(n, CNN_V(0.693147180559945309f), t);
    /* Estrin, not Horner: the chain after r is 3 operations, not 5 (the
     * latency, not the throughput, limits these long formulas on Zen) */
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 hi = _mm256_fmadd_ps(CNN_V(CNN_EXPN_P3), r, CNN_V(CNN_EXPN_P2));
    __m256 lo = _mm256_fmadd_ps(CNN_V(CNN_EXPN_P1), r, CNN_V(CNN_EXPN_P0));
    __m256 p = _mm256_fmadd_ps(hi, r2, lo);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, CNN_V(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_castps_si256(fn), 23);
    e = _mm256_add_epi32(e, _mm256_set1_epi32(127 << 23));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* 1 / (1 + exp(-x)) without overflow: e = exp(-|x|) in [0, 1], and
 * sigmoid(x) = n / (1 + e) with n = 1 for x >= 0, n = e for x < 0
 * (exactly 1 once e < 2^-25, as the scalar). blendv picks n on x's sign
 * bit (-0 gives 1/2 as well; NaN stays NaN through e). One vdivps, not
 * rcpps + a Newton step: the divider is its own unit, the Newton step's
 * 3 operations would queue on the FMA pipes with the rest (2.5 vs 2.9 ns
 * per vector for SiLU); picking the numerator, not 1 - q afterwards,
 * saves one more operation. */
static inline __m256 cnn_v_sigmoid(__m256 x)
{
    __m256 e = cnn_v_exp_nonpos(cnn_v_negabs(x));
    return _mm256_div_ps(_mm256_blendv_ps(CNN_V(1.f), e, x), _mm256_add_ps(CNN_V(1.f), e));
}

/* x * sigmoid(x) as (x n) / (1 + e) (see cnn_v_sigmoid): +inf stays +inf;
 * 0.30 vs 0.34 ns per element against x * cnn_v_sigmoid(x). */
static inline __m256 cnn_v_silu(__m256 x)
{
    __m256 e = cnn_v_exp_nonpos(cnn_v_negabs(x));
    __m256 n = _mm256_blendv_ps(CNN_V(1.f), e, x);
    return _mm256_div_ps(_mm256_mul_ps(x, n), _mm256_add_ps(CNN_V(1.f), e));
}

/* tanh|x| = -t / (2 + t), t = expm1(-2|x|) in [-1, 0]; sign restored. */
static inline __m256 cnn_v_tanh(__m256 x)
{
    __m256 t = cnn_v_expm1(_mm256_mul_ps(cnn_v_negabs(x), CNN_V(2.f)));
    __m256 m = _mm256_div_ps(t, _mm256_add_ps(CNN_V(2.f), t));     /* -tanh|x| */
    __m256 sign = _mm256_and_ps(x, CNN_V(-0.f));
    return _mm256_xor_ps(_mm256_xor_ps(m, CNN_V(-0.f)), sign);
}

/* x > 0 ? x : alpha * expm1(x). */
static inline __m256 cnn_v_elu(__m256 x, __m256 alpha)
{
    __m256 neg = _mm256_mul_ps(alpha, cnn_v_expm1(_mm256_min_ps(_mm256_setzero_ps(), x)));
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_blendv_ps(neg, x, pos);
}

#define CNN_ERF_ZMAX 3.92f

/* erf(z), max abs error ~3e-7 (float arithmetic), relative ~3e-7 near 0. */
static inline __m256 cnn_v_erf(__m256 z)
{
    __m256 zc = _mm256_min_ps(CNN_V(CNN_ERF_ZMAX), _mm256_max_ps(CNN_V(-CNN_ERF_ZMAX), z));
    __m256 t = _mm256_mul_ps(zc, zc);
    __m256 p = CNN_V(CNN_ERF_P5);
    p = _mm256_fmadd_ps(p, t, CNN_V(CNN_ERF_P4));
    p = _mm256_fmadd_ps(p, t, CNN_V(CNN_ERF_P3));
    p = _mm256_fmadd_ps(p, t, CNN_V(CNN_ERF_P2));
    p = _mm256_fmadd_ps(p, t, CNN_V(CNN_ERF_P1));
    p = _mm256_fmadd_ps(p, t, CNN_V(CNN_ERF_P0));
    __m256 q = CNN_V(CNN_ERF_Q5);
    q = _mm256_fmadd_ps(q, t, CNN_V(CNN_ERF_Q4));
    q = _mm256_fmadd_ps(q, t, CNN_V(CNN_ERF_Q3));
    q = _mm256_fmadd_ps(q, t, CNN_V(CNN_ERF_Q2));
    q = _mm256_fmadd_ps(q, t, CNN_V(CNN_ERF_Q1));
    q = _mm256_fmadd_ps(q, t, CNN_V(1.f));
    __m256 r = _mm256_div_ps(_mm256_mul_ps(zc, p), q);
    /* saturate exactly: the scalar erff is +-1 there, and gelu's negative
     * tail 0.5 x (1 + erf) must reach 0, not x * 1 ulp */
    __m256 big = _mm256_cmp_ps(_mm256_andnot_ps(CNN_V(-0.f), zc), CNN_V(CNN_ERF_ZMAX), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(CNN_V(1.f), _mm256_and_ps(zc, CNN_V(-0.f)));
    return _mm256_blendv_ps(r, one, big);
}

/* 0.5 x (1 + erf(x / sqrt 2)). */
static inline __m256 cnn_v_gelu(__m256 x)
{
    __m256 e = cnn_v_erf(_mm256_mul_ps(x, CNN_V(0.70710678118654752f)));
    __m256 hx = _mm256_mul_ps(CNN_V(0.5f), x);
    return _mm256_fmadd_ps(hx, e, hx);
}

/* 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3):
 * one exp and one division (cnn_v_silu's form), not tanh's expm1. */
static inline __m256 cnn_v_gelu_tanh(__m256 x)
{
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 u2 = _mm256_mul_ps(_mm256_mul_ps(x, CNN_V(1.5957691216057308f)),
                              _mm256_fmadd_ps(x2, CNN_V(0.044715f), CNN_V(1.f)));
    __m256 e = cnn_v_exp_nonpos(cnn_v_negabs(u2));
    __m256 n = _mm256_blendv_ps(CNN_V(1.f), e, u2);
    return _mm256_div_ps(_mm256_mul_ps(x, n), _mm256_add_ps(CNN_V(1.f), e));
}

/* clamp(x + 3, 0, 6) * x / 6, in the scalar definition's order. */
static inline __m256 cnn_v_hardswish(__m256 x)
{
    __m256 t = _mm256_add_ps(x, CNN_V(3.f));
    t = _mm256_min_ps(CNN_V(6.f), _mm256_max_ps(_mm256_setzero_ps(), t));
    return _mm256_mul_ps(_mm256_mul_ps(x, t), CNN_V(1.f / 6.f));
}

/* clamp(alpha x + beta, 0, 1). */
static inline __m256 cnn_v_hardsigmoid(__m256 x, __m256 alpha, __m256 beta)
{
    __m256 t = _mm256_fmadd_ps(alpha, x, beta);
    return _mm256_min_ps(CNN_V(1.f), _mm256_max_ps(_mm256_setzero_ps(), t));
}

/* As the scalar: x < lo ? lo : (x > hi ? hi : x) (NaN stays NaN). */
static inline __m256 cnn_v_clip(__m256 x, __m256 lo, __m256 hi)
{
    __m256 r = _mm256_blendv_ps(x, hi, _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(r, lo, _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
}

/* x >= 0 ? x : alpha x. */
static inline __m256 cnn_v_leaky(__m256 x, __m256 alpha)
{
    __m256 ge = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    return _mm256_blendv_ps(_mm256_mul_ps(alpha, x), x, ge);
}

/* x < 0 ? 0 : x, as the scalar: max_ps returns its second operand when
 * either is NaN (or both are zero), so x goes second and a NaN stays NaN. */
static inline __m256 cnn_v_relu(__m256 x)
{
    return _mm256_max_ps(_mm256_setzero_ps(), x);
}

/* 8x8 transpose of r[0..7] in place: row i becomes column i (the
 * unpack / shuffle / permute2f128 sequence; the depthwise channel-blocked
 * path and the NCHW <-> NCHW8c reorders both use it). */
static inline __attribute__((always_inline)) void cnn_v_transpose8(__m256 *r)
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

#endif
