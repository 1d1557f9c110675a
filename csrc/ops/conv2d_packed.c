/* Prepacked conv2d (cnn_conv2d_pack_f32 / cnn_conv2d_run_packed_f32): the
 * engine packs each Conv's weights once at plan time, so no run repacks them.
 *
 * The algorithm is chosen at pack time from the platform table active then,
 * and fixed (the pack keeps that table's kernels):
 *   CONV_ALGO_GEMM       AVX2, non-depthwise: the weights of each group as the
 *                        GEMM engine's A panels (cnn_gemm_pack_a layout, MR
 *                        rows x KC, zero-padded); runs cnn_conv2d_gemm_f32_avx2
 *                        with im2col fused into the B packing, as cnn_conv2d_f32.
 *   CONV_ALGO_DEPTHWISE  AVX2, groups == c == k: a copy of the weights in the
 *                        (K, 1, kh, kw) layout csrc/x86/depthwise_avx2.c reads.
 *   CONV_ALGO_WINOGRAD   AVX2, 3x3/s1/d1/g1 where cnn_winograd_eligible says
 *                        F(4x4,3x3) wins (csrc/ops/winograd.h): the filters
 *                        transformed once (36 K x C matrices).
 *   CONV_ALGO_REF        no GEMM conv in the platform table (scalar level) or
 *                        shapes the AVX2 path refuses: a copy of the
 *                        weights, run by cnn_conv2d_f32_ref.
 * A run checks that its params equal the packed ones in every field but n
 * (the epilogue included) and then runs for any batch. The object is never
 * written after packing, so concurrent runs are safe.
 */
#include <string.h>

#include "conv2d.h"
#include "gemm.h"
#include "winograd.h"

typedef enum conv_algo {
    CONV_ALGO_REF = 0,
    CONV_ALGO_GEMM,
    CONV_ALGO_DEPTHWISE,
    CONV_ALGO_WINOGRAD
} conv_algo;

struct cnn_conv2d_packed {
    cnn_conv2d_params p;     /* as packed; p.n is not used */
    conv_algo algo;
    float *w;                /* REF/DEPTHWISE: weights; GEMM: packed panels */
    int64_t group_floats;    /* GEMM: floats of packed panels per group */
    float *wino;             /* WINOGRAD: transformed filters (winograd.h layout) */
    /* the kernels of the level it was packed at: its layout is theirs, so
     * a run after cnn_set_isa changed the level still calls them */
    cnn_conv2d_gemm_fn gemm;
    cnn_conv2d_fn depthwise;
};

static const char *const algo_names[] = {"reference", "gemm", "direct_depthwise",
                                         "winograd_f4x3"};

/* Every field that the pack fixed (all but n) equal. */
static int same_params(const cnn_conv2d_params *a, const cnn_conv2d_params *b)
{
    return a->c == b->c && a->h == b->h && a->w == b->w && a->k == b->k &&
           a->kh == b->kh && a->kw == b->kw && a->sh == b->sh && a->sw == b->sw &&
           a->dh == b->dh && a->dw == b->dw && a->pt == b->pt && a->pl == b->pl &&
           a->pb == b->pb && a->pr == b->pr && a->groups == b->groups &&
           a->oh == b->oh && a->ow == b->ow;
}

static int same_epilogue(const cnn_epilogue *a, const cnn_epilogue *b)
{
    return a->act == b->act && memcmp(&a->alpha, &b->alpha, sizeof(float)) == 0 &&
           memcmp(&a->beta, &b->beta, sizeof(float)) == 0;
}

static float *copy_weights(const cnn_conv2d_params *p, const float *w)
{
    int64_t cnt = p->k * (p->c / p->groups) * p->kh * p->kw;  /* checked by the caller */
    float *d = cnn_alloc_floats(cnt);
    if (d)
        memcpy(d, w, (size_t)cnt * sizeof(float));
    return d;
}

cnn_status cnn_conv2d_pack_f32(const cnn_conv2d_params *p, const float *w,
                               cnn_conv2d_packed **out)
{
    if (!out)
        return CNN_ERR_ARG;
    *out = NULL;
    if (!p || !w)
        return CNN_ERR_ARG;
    cnn_status st = cnn_conv2d_check_params(p);
    if (st != CNN_OK)
        return st;
    cnn_conv2d_packed *pk = (cnn_conv2d_packed *)calloc(1, sizeof(*pk));
    if (!pk)
        return CNN_ERR_OOM;
    pk->p = *p;
    pk->algo = CONV_ALGO_REF;
    const cnn_platform *plat = cnn_plat();
    pk->gemm = plat->conv2d_gemm;
    pk->depthwise = plat->conv2d_depthwise;
    if (pk->gemm && pk->depthwise && p->sw <= ((int64_t)1 << 26)) {
        if (p->groups == p->c && p->k == p->c)
            pk->algo = CONV_ALGO_DEPTHWISE;
        else
            pk->algo = CONV_ALGO_GEMM;
        /* Eligibility sees h, w, oh, ow and n: packed at plan time for the
         * plan's batch, which is what the engine then runs. */
        if (pk->algo == CONV_ALGO_GEMM && cnn_winograd_eligible(p)) {
            size_t floats = 0;
            st = cnn_winograd_pack_f32(p, w, &pk->wino, &floats);
            if (st == CNN_OK) {
                pk->algo = CONV_ALGO_WINOGRAD;
                *out = pk;
                return CNN_OK;
            }
            pk->wino = NULL;
            if (st != CNN_ERR_UNSUPPORTED) {
                free(pk);
                return st;
            }
        }
    }
    if (pk->algo == CONV_ALGO_GEMM) {
        const int64_t kg = p->k / p->groups, kdim = (p->c / p->groups) * p->kh * p->kw;
        int64_t per = cnn_gemm_packed_a_floats(kg, kdim), total;
        if (per == 0 || !cnn_mul_ok(per, p->groups, &total)) {
            free(pk);
            return CNN_ERR_SHAPE;
        }
        pk->w = cnn_alloc_floats(total);
        if (!pk->w) {
            free(pk);
            return CNN_ERR_OOM;
        }
        pk->group_floats = per;
        for (int64_t gi = 0; gi < p->groups; gi++)
            cnn_gemm_pack_a(0, kg, kdim, w + gi * kg * kdim, kdim, pk->w + gi * per);
    } else {
        pk->w = copy_weights(p, w);
        if (!pk->w) {
            free(pk);
            return CNN_ERR_OOM;
        }
    }
    *out = pk;
    return CNN_OK;
}

cnn_status cnn_conv2d_run_packed_f32(const cnn_conv2d_packed *pk,
                                     const cnn_conv2d_params *p, const float *x,
                                     const float *bias, const float *residual, float *y,
                                     int threads)
{
    if (!pk || !p || !x || !y)
        return CNN_ERR_ARG;
    if (!same_params(&pk->p, p))
        return CNN_ERR_SHAPE;
    if (!same_epilogue(&pk->p.ep, &p->ep))
        return CNN_ERR_ARG;
    cnn_status st = cnn_conv2d_check_params(p);  /* n and the sizes at this n */
    if (st != CNN_OK)
        return st;
    if (threads < 1)
        threads = 1;
    switch (pk->algo) {
    case CONV_ALGO_GEMM:
        return pk->gemm(p, x, NULL, pk->w, pk->group_floats, bias, residual, y, threads);
    case CONV_ALGO_DEPTHWISE:
        return pk->depthwise(p, x, pk->w, bias, residual, y, threads);
    case CONV_ALGO_WINOGRAD:
        return cnn_winograd_run_f32(p, pk->wino, x, bias, residual, y, threads);
    case CONV_ALGO_REF:
        return cnn_conv2d_f32_ref(p, x, pk->w, bias, residual, y, threads);
    default:
        return CNN_ERR_UNSUPPORTED;
    }
}

void cnn_conv2d_packed_free(cnn_conv2d_packed *pk)
{
    if (!pk)
        return;
    cnn_free_packed(pk->wino);
    free(pk->w);
    free(pk);
}

const char *cnn_conv2d_packed_algo(const cnn_conv2d_packed *pk)
{
    if (!pk || (unsigned)pk->algo >= sizeof(algo_names) / sizeof(algo_names[0]))
        return "none";
    return algo_names[pk->algo];
}
