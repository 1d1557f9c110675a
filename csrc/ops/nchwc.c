/* Blocked layout NCHW8c: argument checks, weight packing and the portable
 * reorders. The blocked convolutions themselves exist for AVX2 and AVX-512
 * only (csrc/x86/nchwc_avx2.c, nchwc_avx512.c); without AVX2 packing reports
 * CNN_ERR_UNSUPPORTED and the engine keeps the plain NCHW kernels, whose
 * scalar versions stay the oracle for these. */
#include <string.h>

#include "conv2d.h"
#include "nchwc.h"
#include "nchwc_rows.h"
#include "pool.h"
#include "winograd.h"

#define B CNN_NCHWC

/* The buffers are given and n * ceil(c/8) * hw * 8 fits int64 and is
 * positive: the checks every blocked element-wise entry point shares. */
static cnn_status check_blocked(int64_t n, int64_t c, int64_t hw, int buffers_given)
{
    int64_t t;
    if (!buffers_given)
        return CNN_ERR_ARG;
    if (n < 1 || c < 1 || hw < 1)
        return CNN_ERR_SHAPE;
    if (!cnn_mul_ok(n, cnn_nchwc_blocks(c), &t) || !cnn_mul_ok(t, hw, &t) || !cnn_mul_ok(t, B, &t))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

cnn_status cnn_nchw_to_nchwc_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                 float *y, int threads)
{
    cnn_status st = check_blocked(n, c, hw, x && y);
    if (st != CNN_OK)
        return st;
    const int64_t cbs = cnn_nchwc_blocks(c);
    if (hw == 1) {  /* one pixel: the same order, the padding lanes zeroed */
        for (int64_t img = 0; img < n; img++) {
            memcpy(y + img * cbs * B, x + img * c, (size_t)c * sizeof(float));
            memset(y + img * cbs * B + c, 0, (size_t)(cbs * B - c) * sizeof(float));
        }
        return CNN_OK;
    }
    cnn_plat()->nchw_to_nchwc(n, c, hw, x, y, threads);
    return CNN_OK;
}

typedef struct reorder_job {
    int64_t c, hw, cbs;
    const float *x;
    float *y;
} reorder_job;

static void to_nchwc_ref_unit(void *ctx, int64_t q, int slot)
{
    const reorder_job *jb = (const reorder_job *)ctx;
    const int64_t c = jb->c, hw = jb->hw, img = q / jb->cbs, cb = q % jb->cbs;
    (void)slot;
    float *d = jb->y + q * hw * B;
    for (int64_t p = 0; p < hw; p++)
        for (int64_t i = 0; i < B; i++) {
            const int64_t ch = cb * B + i;
            d[p * B + i] = ch < c ? jb->x[(img * c + ch) * hw + p] : 0.f;
        }
}

void cnn_nchw_to_nchwc_ref(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                           int threads)
{
    const int64_t cbs = cnn_nchwc_blocks(c);
    reorder_job jb = {c, hw, cbs, x, y};
    cnn_pool_for(threads, n * cbs, NULL, cnn_threads_steal(), to_nchwc_ref_unit, &jb);
}

cnn_status cnn_nchwc_to_nchw_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                 float *y, int threads)
{
    cnn_status st = check_blocked(n, c, hw, x && y);
    if (st != CNN_OK)
        return st;
    /* one pixel (after a global pool): each image's channels are already in
     * order, a copy without a parallel region or a loop lane by lane */
    if (hw == 1) {
        for (int64_t img = 0; img < n; img++)
            memcpy(y + img * c, x + img * cnn_nchwc_blocks(c) * B, (size_t)c * sizeof(float));
        return CNN_OK;
    }
    cnn_plat()->nchwc_to_nchw(n, c, hw, x, y, threads);
    return CNN_OK;
}

static void to_nchw_ref_unit(void *ctx, int64_t q, int slot)
{
    const reorder_job *jb = (const reorder_job *)ctx;
    const int64_t c = jb->c, hw = jb->hw, img = q / jb->cbs, cb = q % jb->cbs;
    (void)slot;
    const float *s = jb->x + q * hw * B;
    for (int64_t i = 0; i < B && cb * B + i < c; i++) {
        float *d = jb->y + (img * c + cb * B + i) * hw;
        for (int64_t p = 0; p < hw; p++)
            d[p] = s[p * B + i];
    }
}

void cnn_nchwc_to_nchw_ref(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                           int threads)
{
    const int64_t cbs = cnn_nchwc_blocks(c);
    reorder_job jb = {c, hw, cbs, x, y};
    cnn_pool_for(threads, n * cbs, NULL, cnn_threads_steal(), to_nchw_ref_unit, &jb);
}

cnn_status cnn_global_pool_nchwc_f32(int64_t n, int64_t c, int64_t hw, int is_max,
                                     const float *x, float *y, int threads)
{
    cnn_status st = check_blocked(n, c, hw, x && y);
    if (st != CNN_OK)
        return st;
    const cnn_nchwc_gpool_fn pool = cnn_plat()->nchwc_global_pool;
    if (!pool)
        return CNN_ERR_UNSUPPORTED;
    pool(n, c, hw, is_max, x, y, threads);
    return CNN_OK;
}

cnn_status cnn_nchwc_scale_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                               const float *s, float *y, int threads)
{
    cnn_status st = check_blocked(n, c, hw, x && s && y);
    if (st != CNN_OK)
        return st;
    const cnn_nchwc_scale_fn scale = cnn_plat()->nchwc_scale;
    if (!scale)
        return CNN_ERR_UNSUPPORTED;
    scale(n, c, hw, x, s, y, threads);
    return CNN_OK;
}

cnn_status cnn_nchwc_affine_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                const float *scale, const float *shift,
                                const cnn_epilogue *ep, float *y, int threads)
{
    cnn_status st = check_blocked(n, c, hw, x && scale && shift && y);
    if (st != CNN_OK)
        return st;
    const cnn_epilogue none = {CNN_ACT_NONE, 0.f, 0.f};
    if (!ep)
        ep = &none;
    if (!cnn_act_valid(ep))
        return CNN_ERR_ARG;
    const cnn_nchwc_affine_fn affine = cnn_plat()->nchwc_affine;
    if (!affine)
        return CNN_ERR_UNSUPPORTED;
    affine(n, c, hw, x, scale, shift, ep, y, threads < 1 ? 1 : threads);
    return CNN_OK;
}

/* Winograd beats the direct blocked kernel where the plain-layout
 * measurements say it beats im2col + GEMM (cnn_winograd_eligible), but a
 * model's filters arrive cold, and U is 4x (F(4x4)) or 16/9 (F(2x2)) the
 * direct weights: F(4x4) only from 16 tiles (7x7 maps and below run direct
 * faster), whatever the number of outputs. Returns the output tile: 4, 2
 * (F(2x2, 3x3)) or 0 (direct).
 *
 * F(2x2) where the filters are too big to stay cached (C*K >= 256*256) and
 * every run streams them: a run costs about positions x (tiles + 6.5) per
 * channel pair (the 6.5: streaming U, at the GEMM-rate : bandwidth ratio
 * measured on 512->512 @7x7; direct: 9 taps, a tile per pixel), and F(2x2)
 * is taken below 0.8 of direct (the model is that much optimistic on 5x5
 * maps) and up to 1.1x F(4x4): there (14x14 maps) the two run alike with
 * cold filters, and F(2x2)'s U is 4/9 the size. Numbers: docs/performance.md. */
static int winograd_pays(const cnn_conv2d_params *p)
{
    const double n = (double)p->n, t4 = n * (double)(((p->oh + 3) / 4) * ((p->ow + 3) / 4));
    const int f4 = cnn_winograd_eligible(p) && t4 >= 16;
    if (p->c >= 8 && p->k >= 8 && (double)p->c * (double)p->k >= 65536.0) {
        const double t2 = n * (double)(((p->oh + 1) / 2) * ((p->ow + 1) / 2));
        const double c2 = 16 * (t2 + 6.5), c4 = 36 * (t4 + 6.5);
        const double cd = 9 * (n * (double)p->oh * (double)p->ow + 6.5);
        if (c2 < 0.8 * cd && (!f4 || c2 < 1.1 * c4))
            return 2;
    }
    return f4 ? 4 : 0;
}

int cnn_conv2d_nchwc_is_winograd(const cnn_conv2d_nchwc *pk)
{
    return pk && pk->wino ? pk->wino_m : 0;
}

void cnn_conv2d_nchwc_free(cnn_conv2d_nchwc *pk)
{
    if (!pk)
        return;
    cnn_free_packed(pk->w);
    free(pk->bias);
    cnn_free_packed(pk->wino);
    free(pk);
}

cnn_status cnn_conv2d_nchwc_pack_f32(const cnn_conv2d_params *p, const float *w,
                                     const float *bias, int flags,
                                     cnn_conv2d_nchwc **out)
{
    const int in_nchw = (flags & CNN_NCHWC_IN_NCHW) != 0;
    if (!out)
        return CNN_ERR_ARG;
    *out = NULL;
    if (!p || !w)
        return CNN_ERR_ARG;
    cnn_status st = cnn_conv2d_check_params(p);
    if (st != CNN_OK)
        return st;
    const int dw = p->groups == p->c && p->k == p->c && p->c > 1;
    /* grouped: whole blocks of input and output channels per group */
    const int grouped = !dw && p->groups > 1 && (p->c / p->groups) % B == 0 &&
                        (p->k / p->groups) % B == 0;
    const cnn_platform *plat = cnn_plat();
    /* small groups interleaved in zmm lanes (nchwc_grouped.c) */
    const int gi = dw ? 0 : cnn_nchwc_grouped_width(p, plat);
    if (!(p->groups == 1 || dw || grouped || gi) || (in_nchw && p->groups != 1))
        return CNN_ERR_UNSUPPORTED;
    if (!plat->nchwc_pair_rows)
        return CNN_ERR_UNSUPPORTED;
    /* the kernels index rows and taps in int64 without further checks */
    int64_t t;
    if (!cnn_mul_ok(p->h, p->w, &t) || !cnn_mul_ok(t, B, &t) || !cnn_mul_ok(p->oh, p->ow, &t) ||
        !cnn_mul_ok(t, B, &t))
        return CNN_ERR_SHAPE;
    cnn_conv2d_nchwc *pk = (cnn_conv2d_nchwc *)calloc(1, sizeof(*pk));
    if (!pk)
        return CNN_ERR_OOM;
    pk->p = *p;
    pk->in_nchw = in_nchw != 0;
    pk->depthwise = dw;
    pk->cb = in_nchw ? 1 : B;
    pk->ocb = cnn_nchwc_blocks(p->k);
    /* input blocks a conv group reads (all of them when groups == 1) */
    pk->icb = dw ? pk->ocb : (p->c / p->groups + pk->cb - 1) / pk->cb;
    const int64_t taps = p->kh * p->kw;
    /* As the AVX-512 tiles read them, where a conv group's blocks form
     * whole pairs. */
    pk->wpair = plat->nchwc_wpair && !dw && (p->groups == 1 || (pk->ocb / p->groups) % 2 == 0);
    int64_t count;
    if (!cnn_mul_ok(pk->ocb + 1, dw ? 1 : pk->icb, &count) || !cnn_mul_ok(count, taps, &count) ||
        !cnn_mul_ok(count, (dw ? 1 : pk->cb) * B, &count)) {
        free(pk);
        return CNN_ERR_SHAPE;
    }
    pk->bias = cnn_alloc_floats(pk->ocb * B);
    if (!pk->bias) {
        cnn_conv2d_nchwc_free(pk);
        return CNN_ERR_OOM;
    }
    for (int64_t o = 0; o < pk->ocb * B; o++)
        pk->bias[o] = bias && o < p->k ? bias[o] : 0.f;
    if (gi) {
        pk->gi = gi;
        pk->wpair = 0;
        st = cnn_nchwc_grouped_pack(pk, w, bias);
        if (st != CNN_OK) {
            cnn_conv2d_nchwc_free(pk);
            return st;
        }
        *out = pk;
        return CNN_OK;
    }
    const int can_wino = !in_nchw && p->groups == 1 && p->kh == 3 && p->kw == 3 &&
                         p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1;
    const int wm = !can_wino || (flags & CNN_NCHWC_DIRECT) ? 0
                   : flags & CNN_NCHWC_WINOGRAD2                ? 2
                   : flags & CNN_NCHWC_WINOGRAD                 ? 4
                                                                : winograd_pays(p);
    if (wm) {
        pk->wino_m = wm;
        st = (wm == 2 ? cnn_winograd2_pack_nchwc_f32 : cnn_winograd_pack_nchwc_f32)(p, w,
                                                                                  &pk->wino);
        if (st != CNN_OK) {
            cnn_conv2d_nchwc_free(pk);
            return st;
        }
        *out = pk;
        return CNN_OK;
    }
    if (!dw)
        count = cnn_nchwc_w_count(pk);
    pk->w = cnn_alloc_packed(count);
    if (!pk->w) {
        cnn_conv2d_nchwc_free(pk);
        return CNN_ERR_OOM;
    }
    const int64_t cg = p->c / p->groups;
    if (dw) {
        memset(pk->w, 0, (size_t)count * sizeof(float));
        for (int64_t o = 0; o < p->k; o++)
            for (int64_t r = 0; r < taps; r++)
                pk->w[(o / B * taps + r) * B + o % B] = w[o * taps + r];
        *out = pk;
        return CNN_OK;
    }
    /* In the pack's own order, every float written once (zeros past k and
     * cg): sequential stores and eight sequential read streams, where a
     * scatter in the weights' order took two steady runs of EfficientNet-
     * Lite0 on its first run. */
    const int64_t ocb = pk->wpair ? (pk->ocb + 1) / 2 * 2 : pk->ocb;
    for (int64_t ob = 0; ob < ocb; ob++)
        for (int64_t ib = 0; ib < pk->icb; ib++)
            for (int64_t r = 0; r < taps; r++)
                for (int64_t c8 = 0; c8 < pk->cb; c8++) {
                    float *dst = pk->w + cnn_nchwc_w_at(pk, ob, ib, r, c8);
                    const int64_t ci = ib * pk->cb + c8;
                    for (int64_t l = 0; l < B; l++) {
                        const int64_t o = ob * B + l;
                        dst[l] = o < p->k && ci < cg ? w[(o * cg + ci) * taps + r] : 0.f;
                    }
                }
    *out = pk;
    return CNN_OK;
}

/* Slabs [sl0, sl1) (block pairs of a wpair pack, else blocks) of w =
 * pk->w with input channel ib*8 + ci scaled by s[ib*8 + ci]: in the pack's
 * order, runs of L (8, or 16 for a block pair) floats share one factor (a
 * loop the compiler vectorises, where an index per 8 floats kept a serial
 * step of MobileNetV3's gated convs at 2 threads); a wpair pack's zero
 * block past an odd ocb stays zero. */
void cnn_nchwc_scale_slabs(const cnn_conv2d_nchwc *pk, const float *s, float *w, int64_t sl0,
                           int64_t sl1)
{
    const int64_t taps = pk->p.kh * pk->p.kw, runs = pk->icb * taps * B;
    const int64_t L = pk->wpair ? 2 * B : B, slabs = pk->wpair ? (pk->ocb + 1) / 2 : pk->ocb;
    const int odd_pair = pk->wpair && pk->ocb % 2;
    for (int64_t sl = sl0; sl < sl1; sl++) {
        const float *src = pk->w + sl * runs * L;
        float *dst = w + sl * runs * L;
        const int64_t lanes = odd_pair && sl == slabs - 1 ? B : L;
        /* the factor by loop (ib, tap, lane), not a division per run; one
         * loop per lane count, so that the compiler vectorises them */
        if (lanes == 2 * B) {
            for (int64_t q = 0; q < runs; q += B)
                for (int64_t c = 0; c < B; c++) {
                    const float f = s[q / (taps * B) * B + c];
                    for (int64_t l = 0; l < 2 * B; l++)
                        dst[(q + c) * L + l] = src[(q + c) * L + l] * f;
                }
        } else {
            for (int64_t q = 0; q < runs; q += B)
                for (int64_t c = 0; c < B; c++) {
                    const float f = s[q / (taps * B) * B + c];
                    for (int64_t l = 0; l < B; l++)
                        dst[(q + c) * L + l] = src[(q + c) * L + l] * f;
                }
            if (lanes < L)
                for (int64_t q = 0; q < runs; q++)
                    memset(dst + q * L + B, 0, B * sizeof(float));
        }
    }
}

typedef struct slabs_job {
    const cnn_conv2d_nchwc *pk;
    const float *s;
    float *w;
} slabs_job;

static void slab_unit(void *ctx, int64_t sl, int slot)
{
    const slabs_job *jb = (const slabs_job *)ctx;
    (void)slot;
    cnn_nchwc_scale_slabs(jb->pk, jb->s, jb->w, sl, sl + 1);
}

/* All of w scaled (cnn_nchwc_scale_slabs), one slab per unit. */
static void scale_weights(const cnn_conv2d_nchwc *pk, const float *s, float *w, int threads)
{
    const int64_t slabs = pk->wpair ? (pk->ocb + 1) / 2 : pk->ocb;
    slabs_job jb = {pk, s, w};
    cnn_pool_for(threads, slabs, NULL, cnn_threads_steal(), slab_unit, &jb);
}

static cnn_status run(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                      const float *residual, float *y, float *pool, int threads);

cnn_status cnn_conv2d_nchwc_run_scaled_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                           const float *x, const float *s,
                                           const float *residual, float *y, int threads)
{
    if (!pk || !x || !s || !y)
        return CNN_ERR_ARG;
    if (pk->p.groups != 1 || pk->depthwise || pk->in_nchw || pk->wino)
        return CNN_ERR_UNSUPPORTED;
    if (n < 1)
        return CNN_ERR_SHAPE;
    const int64_t count = cnn_nchwc_w_count(pk);
    const int64_t xsize = pk->icb * B * pk->p.h * pk->p.w, ysize = pk->ocb * pk->p.oh * pk->p.ow * B;
    int64_t t;
    if (!cnn_mul_ok(n, xsize, &t) || !cnn_mul_ok(n, ysize, &t))
        return CNN_ERR_SHAPE;
    const cnn_platform *plat = cnn_plat();
    if (!plat->nchwc_pair_rows)
        return CNN_ERR_UNSUPPORTED;
    if (threads < 1)
        threads = 1;
    /* one thread, a flat 1x1 on a plane smaller than K: the level's scaling
     * of the whole input first (the driver's portable per-chunk loop cost
     * 1 thread 2-3 %: 576->96 @7x7 52.6 -> 54.0 us) */
    const cnn_conv2d_params *p = &pk->p;
    if (threads == 1 && plat->nchwc_scale && p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
        !(p->pt | p->pl | p->pb | p->pr) && p->h * p->w < p->k) {
        float *xs = cnn_alloc_floats(n * xsize);
        if (!xs)
            return CNN_ERR_OOM;
        plat->nchwc_scale(n, pk->icb * B, p->h * p->w, x, s, xs, 1);
        const cnn_status st = run(pk, n, xs, residual, y, NULL, 1);
        free(xs);
        return st;
    }
    /* 2+ threads: the driver scales what each thread reads into its own
     * copy; one thread scales all weights first (its per-group scaling,
     * without the next group's prefetch, ran slower) */
    if (threads > 1 && (!pk->wpair || plat->nchwc_wpair)) {
        const cnn_nchwc_gate gate = {s, pk->icb * B, NULL, {CNN_ACT_NONE, 0.f, 0.f}, NULL};
        return cnn_nchwc_conv_drive(pk, n, x, residual, y, threads, plat->nchwc_pair_rows,
                                    plat->nchwc_wide_rows, plat->act_row, &gate);
    }
    /* or a pair pack at a level that reads single blocks (tests switch levels) */
    float *w = cnn_alloc_floats(count);
    if (!w)
        return CNN_ERR_OOM;
    cnn_conv2d_nchwc scaled = *pk;
    scaled.w = w;
    cnn_status st = CNN_OK;
    for (int64_t img = 0; img < n && st == CNN_OK; img++) {
        scale_weights(pk, s + img * pk->icb * B, w, count < 32768 ? 1 : threads);
        st = cnn_conv2d_nchwc_run_f32(&scaled, 1, x + img * xsize, residual ? residual + img * ysize : NULL,
                                      y + img * ysize, threads);
    }
    free(w);
    return st;
}


cnn_status cnn_conv2d_nchwc_run_f32(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                    const float *residual, float *y, int threads)
{
    return run(pk, n, x, residual, y, NULL, threads);
}

cnn_status cnn_conv2d_nchwc_run_pooled_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                           const float *x, const float *residual, float *y,
                                           float *pool, int threads)
{
    if (!pool)
        return CNN_ERR_ARG;
    if (pk && ((!pk->depthwise && !pk->gi) || pk->wino))
        return CNN_ERR_UNSUPPORTED;
    return run(pk, n, x, residual, y, pool, threads);
}

static cnn_status run_unpaired(const cnn_platform *plat, const cnn_conv2d_nchwc *pk, int64_t n,
                               const float *x, const float *residual, float *y, int threads,
                               const cnn_nchwc_gate *gate);
static cnn_status run(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                      const float *residual, float *y, float *pool, int threads);

/* At 2+ threads the driver's gated input, each thread normalising the
 * pixels it reads into its own copy (DenseNet's standalone BN-ReLU pass
 * read the concatenated input and wrote it again for the 1x1 to reread;
 * at 2 threads half of it crossed between the cores twice). */
cnn_status cnn_conv2d_nchwc_run_affine_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                           const float *x, const float *scale,
                                           const float *shift, const cnn_epilogue *act,
                                           const float *residual, float *y, int threads)
{
    if (!pk || !x || !scale || !shift || !act || !y)
        return CNN_ERR_ARG;
    const cnn_conv2d_params *p = &pk->p;
    if (p->groups != 1 || pk->depthwise || pk->in_nchw || pk->wino || pk->gi || pk->cb != B ||
        p->kh != 1 || p->kw != 1 || p->sh != 1 || p->sw != 1 || (p->pt | p->pl | p->pb | p->pr))
        return CNN_ERR_UNSUPPORTED;
    if (!cnn_act_valid(act))
        return CNN_ERR_ARG;
    if (n < 1)
        return CNN_ERR_SHAPE;
    int64_t t;
    if (!cnn_mul_ok(n, pk->icb * B * p->h * p->w, &t) || !cnn_mul_ok(n, pk->ocb * p->oh * p->ow * B, &t))
        return CNN_ERR_SHAPE;
    const cnn_platform *plat = cnn_plat();
    if (!plat->nchwc_pair_rows || !plat->nchwc_affine_span)
        return CNN_ERR_UNSUPPORTED;
    const cnn_nchwc_gate gate = {scale, 0, shift, *act, plat->nchwc_affine_span};
    if (threads < 1)
        threads = 1;
    /* one thread: the whole input first, then the plain conv (per chunk,
     * DenseNet-121's 1x1s on 56x56 ran 2-3 % slower: the sets then reread
     * the copy in the order the driver's units visit it) */
    if (threads == 1) {
        int64_t have;
        float *xs = cnn_scratch_take(n * pk->icb * B * p->h * p->w, &have);
        if (!xs)
            return CNN_ERR_OOM;
        plat->nchwc_affine(n, pk->icb * B, p->h * p->w, x, scale, shift, act, xs, 1);
        const cnn_status st = run(pk, n, xs, residual, y, NULL, 1);
        cnn_scratch_give(xs, have);
        return st;
    }
    if (pk->wpair && !plat->nchwc_wpair)
        return run_unpaired(plat, pk, n, x, residual, y, threads, &gate);
    return cnn_nchwc_conv_drive(pk, n, x, residual, y, threads, plat->nchwc_pair_rows,
                                plat->nchwc_wide_rows, plat->act_row, &gate);
}

/* A pack in block pairs run at a level whose kernels read single blocks
 * (after cnn_set_isa lowered it): its weights copied back to the plain
 * layout, each run (only tests switch levels between packing and running). */
static cnn_status run_unpaired(const cnn_platform *plat, const cnn_conv2d_nchwc *pk, int64_t n,
                               const float *x, const float *residual, float *y, int threads,
                               const cnn_nchwc_gate *gate)
{
    cnn_conv2d_nchwc plain = *pk;
    plain.wpair = 0;
    plain.w = cnn_alloc_floats(cnn_nchwc_w_count(&plain));
    if (!plain.w)
        return CNN_ERR_OOM;
    for (int64_t ob = 0; ob < pk->ocb; ob++)
        for (int64_t ib = 0; ib < pk->icb; ib++)
            for (int64_t r = 0; r < pk->p.kh * pk->p.kw; r++)
                for (int64_t ci = 0; ci < pk->cb; ci++)
                    memcpy(plain.w + cnn_nchwc_w_at(&plain, ob, ib, r, ci),
                           pk->w + cnn_nchwc_w_at(pk, ob, ib, r, ci), B * sizeof(float));
    const cnn_status st = cnn_nchwc_conv_drive(&plain, n, x, residual, y, threads,
                                               plat->nchwc_pair_rows, NULL, plat->act_row, gate);
    free(plain.w);
    return st;
}

static cnn_status run(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                      const float *residual, float *y, float *pool, int threads)
{
    if (!pk || !x || !y)
        return CNN_ERR_ARG;
    if (n < 1)
        return CNN_ERR_SHAPE;
    int64_t t;
    if (!cnn_mul_ok(n, pk->ocb * pk->p.oh * pk->p.ow * B, &t) ||
        !cnn_mul_ok(n, pk->icb * (pk->depthwise ? 1 : pk->p.groups) * pk->cb * pk->p.h * pk->p.w, &t))
        return CNN_ERR_SHAPE;
    const cnn_platform *plat = cnn_plat();
    if (!plat->nchwc_pair_rows)
        return CNN_ERR_UNSUPPORTED;
    if (threads < 1)
        threads = 1;
    if (pk->wino) {
        cnn_conv2d_params p = pk->p;
        p.n = n;
        return (pk->wino_m == 2 ? plat->winograd2_nchwc : plat->winograd_nchwc)(
            &p, pk->wino, x, pk->bias, residual, y, threads);
    }
    if (pk->depthwise)
        return plat->nchwc_depthwise(pk, n, x, residual, y, pool, threads);
    if (pk->gi)     /* the portable run where the level dropped after packing */
        return (plat->nchwc_grouped ? plat->nchwc_grouped : cnn_nchwc_grouped_ref)(
            pk, n, x, residual, y, pool, threads);
    if (pool)
        return CNN_ERR_UNSUPPORTED;
    if (pk->wpair && !plat->nchwc_wpair)
        return run_unpaired(plat, pk, n, x, residual, y, threads, NULL);
    return cnn_nchwc_conv_drive(pk, n, x, residual, y, threads, plat->nchwc_pair_rows,
                                plat->nchwc_wide_rows, plat->act_row, NULL);
}
