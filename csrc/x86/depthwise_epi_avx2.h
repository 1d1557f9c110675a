/* The depthwise kernels' epilogue (csrc/x86/depthwise_avx2.c only, after
 * its dw_epi type): partial stores, the activations over finished rows and
 * per vector. */
#ifndef CNN_DEPTHWISE_EPI_AVX2_H
#define CNN_DEPTHWISE_EPI_AVX2_H

/* ------------------------------------------------------------ epilogue */

/* First n (< 8) lanes of v to y, without vmaskmovps: 4 + 2 + 1 lanes. */
static inline void dw_store_part(float *y, __m256 acc, int64_t n)
{
    __m128 v = _mm256_castps256_ps128(acc);
    if (n & 4) {
        _mm_storeu_ps(y, v);
        v = _mm256_extractf128_ps(acc, 1);
        y += 4;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)y, v);
        v = _mm_movehl_ps(v, v);
        y += 2;
    }
    if (n & 1)
        _mm_store_ss(y, v);
}

/* The other activations over rows y[0..nr) of ow floats, in place; one
 * loop per activation (the switch stays out of it). */
#define DW_ACT_ROWS(EXPR)                                                          \
    for (int64_t r = 0; r < nr; r++) {                                             \
        float *yr = y[r];                                                          \
        int64_t t = 0;                                                             \
        for (; t + 8 <= ow; t += 8) {                                              \
            const __m256 v = _mm256_loadu_ps(yr + t);                              \
            _mm256_storeu_ps(yr + t, EXPR);                                        \
        }                                                                          \
        if (t < ow) {                                                              \
            const __m256 v = _mm256_maskload_ps(yr + t, cnn_tail_mask(ow - t));    \
            dw_store_part(yr + t, EXPR, ow - t);                                   \
        }                                                                          \
    }                                                                              \
    break;

static void dw_act_rows(float *const *y, int64_t nr, int64_t ow, const dw_epi *e)
{
    switch (e->act) {
    case CNN_ACT_LEAKY: DW_ACT_ROWS(cnn_v_leaky(v, e->lo))
    case CNN_ACT_ELU: DW_ACT_ROWS(cnn_v_elu(v, e->lo))
    case CNN_ACT_SIGMOID: DW_ACT_ROWS(cnn_v_sigmoid(v))
    case CNN_ACT_TANH: DW_ACT_ROWS(cnn_v_tanh(v))
    case CNN_ACT_SILU: DW_ACT_ROWS(cnn_v_silu(v))
    case CNN_ACT_HARDSWISH: DW_ACT_ROWS(cnn_v_hardswish(v))
    case CNN_ACT_HARDSIGMOID: DW_ACT_ROWS(cnn_v_hardsigmoid(v, e->lo, e->hi))
    case CNN_ACT_GELU: DW_ACT_ROWS(cnn_v_gelu(v))
    case CNN_ACT_GELU_TANH: DW_ACT_ROWS(cnn_v_gelu_tanh(v))
    case CNN_ACT_ERF: DW_ACT_ROWS(cnn_v_erf(v))
    default: break;
    }
}

/* y[0..n) = act(acc + res), n = 8 or e->rem, act only relu or clip (the
 * others, with many constants, would crowd the kernels' registers: they
 * run in dw_act_rows over the finished rows, still in L1). The partial store avoids
 * vmaskmovps, whose store form is slow on Zen: 4 + 2 + 1 lanes. */
DW_INLINE void dw_store(float *y, const float *res, __m256 acc, const dw_epi *e, int full)
{
    if (res)
        acc = _mm256_add_ps(acc, full ? _mm256_loadu_ps(res) : _mm256_maskload_ps(res, e->tail));
    if (e->act == CNN_ACT_RELU)
        acc = cnn_v_relu(acc);
    else if (e->act == CNN_ACT_CLIP)
        acc = cnn_v_clip(acc, e->lo, e->hi);
    else if (e->instore == 1)
        acc = cnn_v_silu(acc);
    else if (e->instore == 2)
        acc = cnn_v_sigmoid(acc);
    if (full)
        _mm256_storeu_ps(y, acc);
    else
        dw_store_part(y, acc, e->rem);
}

/* act(v) for one vector of a plane (bias and residual already in). */
DW_INLINE __m256 cb_act(__m256 v, const dw_epi *e, const int act)
{
    switch (act) {
    case CNN_ACT_RELU: return cnn_v_relu(v);
    case CNN_ACT_CLIP: return cnn_v_clip(v, e->lo, e->hi);
    case CNN_ACT_LEAKY: return cnn_v_leaky(v, e->lo);
    case CNN_ACT_ELU: return cnn_v_elu(v, e->lo);
    case CNN_ACT_SIGMOID: return cnn_v_sigmoid(v);
    case CNN_ACT_TANH: return cnn_v_tanh(v);
    case CNN_ACT_SILU: return cnn_v_silu(v);
    case CNN_ACT_HARDSWISH: return cnn_v_hardswish(v);
    case CNN_ACT_HARDSIGMOID: return cnn_v_hardsigmoid(v, e->lo, e->hi);
    case CNN_ACT_GELU: return cnn_v_gelu(v);
    case CNN_ACT_GELU_TANH: return cnn_v_gelu_tanh(v);
    case CNN_ACT_ERF: return cnn_v_erf(v);
    default: return v;
    }
}

#endif
