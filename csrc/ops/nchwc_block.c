/* An inverted-residual block streamed through cache: expand 1x1 ->
 * depthwise kxk -> project 1x1 as one step (cnn_nchwc_block_run_f32).
 *
 * Each thread takes a contiguous range of output rows of an image and
 * walks it in tiles of T rows: the expanded rows the tile's taps read are
 * made into a window of the thread's own (the rows the previous tile
 * already made are moved to its front, not made again), the depthwise
 * rows of every block into a tile buffer, and the projection writes the
 * block's output from that. Window and tile together stay under half the
 * L2, where the unfused steps wrote the expanded value (112x112x96: 4.8
 * MB) to memory and read it back. The 1x1s run the active level's row
 * kernels (csrc/ops/nchwc_rows.h), the depthwise its dw rows
 * (plat->nchwc_dw_rows); the scalar run below is their oracle.
 */
#include <string.h>

#include "eltwise.h"
#include "nchwc_rows.h"
#include "pool.h"

#define B CNN_NCHWC

/* A 1x1, stride 1, unpadded, groups-1 pack on blocked input. */
static int is_pointwise(const cnn_conv2d_nchwc *pk)
{
    const cnn_conv2d_params *p = &pk->p;
    return !pk->depthwise && !pk->gi && !pk->wino && !pk->in_nchw && p->groups == 1 &&
           p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
           !(p->pt | p->pl | p->pb | p->pr);
}

static cnn_status check(const cnn_conv2d_nchwc *e, const cnn_conv2d_nchwc *d,
                        const cnn_conv2d_nchwc *pj, int64_t n, const float *x,
                        const float *residual, const float *y, const float *pool)
{
    if (!d || !x || !y || (residual && !pj) || (pool && pj))
        return CNN_ERR_ARG;
    if (!d->depthwise || d->wino || (e && !is_pointwise(e)) || (pj && !is_pointwise(pj)))
        return CNN_ERR_UNSUPPORTED;
    if (n < 1)
        return CNN_ERR_SHAPE;
    if (e && (e->p.k != d->p.c || e->p.h != d->p.h || e->p.w != d->p.w))
        return CNN_ERR_SHAPE;
    if (pj && (pj->p.c != d->p.k || pj->p.h != d->p.oh || pj->p.w != d->p.ow))
        return CNN_ERR_SHAPE;
    int64_t t;
    const int64_t cin = e ? e->icb : d->ocb, cout = pj ? pj->ocb : d->ocb;
    if (!cnn_mul_ok(n, cin * d->p.h * d->p.w * B, &t) ||
        !cnn_mul_ok(n, cout * d->p.oh * d->p.ow * B, &t) ||
        !cnn_mul_ok(n, d->ocb * d->p.h * d->p.w * B, &t))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

/* ------------------------------------------------------------ scalar oracle */

/* y (ocb, px, 8) = act(pk(x) + res): the 1x1 of pk over px pixels of x
 * (icb, px, 8), blocks xplane / yplane floats apart. */
static void pw_ref(const cnn_conv2d_nchwc *pk, const float *x, int64_t xplane, int64_t px,
                   const float *res, float *y, int64_t yplane)
{
    for (int64_t ob = 0; ob < pk->ocb; ob++)
        for (int64_t q = 0; q < px; q++)
            for (int64_t l = 0; l < B; l++) {
                float acc = pk->bias[ob * B + l];
                for (int64_t ib = 0; ib < pk->icb; ib++)
                    for (int64_t ci = 0; ci < B; ci++)
                        acc += x[ib * xplane + q * B + ci] * pk->w[cnn_nchwc_w_at(pk, ob, ib, 0, ci) + l];
                if (res)
                    acc += res[ob * yplane + q * B + l];
                y[ob * yplane + q * B + l] = acc;
            }
    for (int64_t ob = 0; ob < pk->ocb; ob++)
        cnn_act_row_ref(&pk->p.ep, y + ob * yplane, y + ob * yplane, px * B);
}

/* The depthwise conv of d over x (ocb, h, w, 8) -> y (ocb, oh, ow, 8). */
static void dw_ref(const cnn_conv2d_nchwc *d, const float *x, float *y)
{
    const cnn_conv2d_params *p = &d->p;
    for (int64_t b = 0; b < d->ocb; b++) {
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++)
                for (int64_t l = 0; l < B; l++) {
                    float acc = d->bias[b * B + l];
                    for (int64_t ky = 0; ky < p->kh; ky++)
                        for (int64_t kx = 0; kx < p->kw; kx++) {
                            const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                            const int64_t ix = ox * p->sw - p->pl + kx * p->dw;
                            if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w)
                                continue;
                            acc += x[((b * p->h + iy) * p->w + ix) * B + l] *
                                   d->w[(b * p->kh * p->kw + ky * p->kw + kx) * B + l];
                        }
                    y[((b * p->oh + oy) * p->ow + ox) * B + l] = acc;
                }
        cnn_act_row_ref(&p->ep, y + b * p->oh * p->ow * B, y + b * p->oh * p->ow * B,
                        p->oh * p->ow * B);
    }
}

cnn_status cnn_nchwc_block_run_ref_f32(const cnn_conv2d_nchwc *e, const cnn_conv2d_nchwc *d,
                                       const cnn_conv2d_nchwc *pj, int64_t n, const float *x,
                                       const float *residual, float *y, float *pool, int threads)
{
    (void)threads;
    cnn_status st = check(e, d, pj, n, x, residual, y, pool);
    if (st != CNN_OK)
        return st;
    const cnn_conv2d_params *p = &d->p;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, cbs = d->ocb;
    const int64_t cin = e ? e->icb : cbs, cout = pj ? pj->ocb : cbs;
    float *ex = e ? cnn_alloc_floats(cbs * hw * B) : NULL;
    float *dy = pj ? cnn_alloc_floats(cbs * ohw * B) : NULL;
    if ((e && !ex) || (pj && !dy)) {
        free(ex);
        free(dy);
        return CNN_ERR_OOM;
    }
    for (int64_t img = 0; img < n; img++) {
        const float *xi = x + img * cin * hw * B;
        float *yi = y + img * cout * ohw * B;
        if (e)
            pw_ref(e, xi, hw * B, hw, NULL, ex, hw * B);
        float *dout = pj ? dy : yi;
        dw_ref(d, e ? ex : xi, dout);
        if (pool)
            for (int64_t b = 0; b < cbs; b++)
                for (int64_t l = 0; l < B; l++) {
                    double s = 0.0;
                    for (int64_t q = 0; q < ohw; q++)
                        s += dout[(b * ohw + q) * B + l];
                    pool[(img * cbs + b) * B + l] = (float)(s / (double)ohw);
                }
        if (pj)
            pw_ref(pj, dy, ohw * B, ohw, residual ? residual + img * cout * ohw * B : NULL, yi,
                   ohw * B);
    }
    free(ex);
    free(dy);
    return CNN_OK;
}

/* ---------------------------------------------------------------- streamed */

/* What every unit of a run shares, read-only. */
typedef struct bjob {
    const cnn_conv2d_nchwc *e, *d, *pj;
    const void *efn[4], *pfn[4];    /* the 1x1s' row kernels for 1..4 blocks */
    cnn_act_row_fn act;
    int64_t chunks;                 /* row ranges per image */
    int64_t T, R;                   /* output rows per tile; window rows */
    int64_t win, tile;              /* floats of a thread's window and tile buffers */
} bjob;

/* The kernels for 1..4 output blocks of a 1x1 pack: the wide ones (block
 * pair packs only), else the pairs'. */
static void pick_pw(const cnn_platform *plat, const cnn_conv2d_nchwc *pk, const void *fns[4])
{
    const cnn_nchwc_rows *wide = pk->wpair ? plat->nchwc_wide_rows : NULL;
    for (int b = 0; b < 4; b++) {
        fns[b] = wide ? (const void *)wide->pw[b] : NULL;
        if (!fns[b] && b < 2)
            fns[b] = (const void *)plat->nchwc_pair_rows->pw[b];
    }
}

/* y = act(pk(x) + res) over px pixels (blocks xplane / yplane floats
 * apart) in pixel chunks whose input is about 32 KiB (L1), every output
 * block per chunk: as the driver's flat 1x1 units (nchwc_drive.c). */
static void pw_rows(const cnn_conv2d_nchwc *pk, const void *const fns[4], cnn_act_row_fn act,
                    const float *x, int64_t xplane, int64_t px, const float *res, float *y,
                    int64_t yplane)
{
    crow r;
    memset(&r, 0, sizeof(r));
    r.x = x;
    r.xplane = xplane;
    r.xrow = px * B;
    r.icb = r.ibatch = pk->icb;
    r.kh = r.kw = r.sw = r.dh = r.dw = 1;
    r.ky1 = 1;
    r.wob = pk->icb * pk->cb * B;
    r.yplane = yplane;
    r.ep = &pk->p.ep;
    int64_t chunk = 8192 / (pk->icb * B);
    chunk = chunk < 24 ? 24 : (chunk > 2048 ? 2048 : chunk);
    const int in_tile = cnn_act_in_tile(pk->p.ep.act);
    for (int64_t x0 = 0; x0 < px; x0 += chunk) {
        const int64_t x1 = x0 + chunk < px ? x0 + chunk : px;
        for (int64_t ob = 0; ob < pk->ocb;) {
            int64_t nb = pk->ocb - ob < 4 ? pk->ocb - ob : 4;
            while (!fns[nb - 1])
                nb--;
            r.w = pk->w + ob * r.wob;
            r.bias = pk->bias + ob * B;
            r.y = y + ob * yplane;
            r.res = res ? res + ob * yplane : NULL;
            r.nb = nb;
            ((cnn_pw_fn)fns[nb - 1])(&r, x0, x1);
            if (!in_tile)
                for (int64_t b = 0; b < nb; b++)
                    act(&pk->p.ep, r.y + b * yplane + x0 * B, r.y + b * yplane + x0 * B,
                        (x1 - x0) * B);
            ob += nb;
        }
    }
}

/* Unit u (image, row range) with the thread's window and tile buffers;
 * sums: its blocks' lane sums (pooled runs), or NULL. */
static void run_unit(const bjob *jb, const cnn_platform *plat, int64_t u, const float *x,
                     const float *residual, float *y, float *win, float *tile, float *sums)
{
    const cnn_conv2d_nchwc *e = jb->e, *d = jb->d, *pj = jb->pj;
    const cnn_conv2d_params *p = &d->p;
    const int64_t img = u / jb->chunks, c = u % jb->chunks, cbs = d->ocb;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, wrow = p->w * B;
    const int64_t cin = e ? e->icb : cbs, cout = pj ? pj->ocb : cbs;
    const float *xi = x + img * cin * hw * B;
    float *yi = y + img * cout * ohw * B;
    const float *ri = residual ? residual + img * cout * ohw * B : NULL;
    const int64_t oy_end = (c + 1) * p->oh / jb->chunks;
    int64_t wr0 = 0, wr1 = 0;   /* the image rows the window holds */
    for (int64_t oy0 = c * p->oh / jb->chunks; oy0 < oy_end; oy0 += jb->T) {
        const int64_t oy1 = oy0 + jb->T < oy_end ? oy0 + jb->T : oy_end;
        const float *src = xi;
        int64_t r0 = 0, splane = hw * B;
        if (e) {
            int64_t lo = oy0 * p->sh - p->pt, hi = (oy1 - 1) * p->sh - p->pt + (p->kh - 1) * p->dh + 1;
            lo = lo < 0 ? 0 : lo;
            hi = hi > p->h ? p->h : hi;
            hi = hi < lo ? lo : hi;
            int64_t keep = 0;
            if (wr1 > lo && wr0 <= lo) {   /* the rows made for the last tile */
                keep = (wr1 < hi ? wr1 : hi) - lo;
                if (lo > wr0)
                    for (int64_t b = 0; b < cbs; b++)
                        memmove(win + b * jb->R * wrow, win + (b * jb->R + lo - wr0) * wrow,
                                (size_t)(keep * wrow) * sizeof(float));
            }
            if (hi > lo + keep)
                pw_rows(e, jb->efn, jb->act, xi + (lo + keep) * wrow, hw * B, (hi - lo - keep) * p->w,
                        NULL, win + keep * wrow, jb->R * wrow);
            wr0 = lo;
            wr1 = hi;
            src = win;
            r0 = lo;
            splane = jb->R * wrow;
        }
        const int64_t trows = pj ? jb->T : p->oh;
        for (int64_t b = 0; b < cbs; b += plat->nchwc_dw_pair_rows ? 2 : 1) {
            float *dst = pj ? tile + b * trows * p->ow * B : yi + (b * p->oh + oy0) * p->ow * B;
            if (plat->nchwc_dw_pair_rows)   /* zmm: a block pair per vector */
                plat->nchwc_dw_pair_rows(d, b, b + 1 < cbs ? 2 : 1, src + b * splane, splane, r0,
                                         oy0, oy1, dst, trows * p->ow * B, sums ? sums + b * B : NULL);
            else
                plat->nchwc_dw_rows(d, b, src + b * splane, r0, oy0, oy1, dst, sums ? sums + b * B : NULL);
        }
        if (pj)
            pw_rows(pj, jb->pfn, jb->act, tile, trows * p->ow * B, (oy1 - oy0) * p->ow,
                    ri ? ri + oy0 * p->ow * B : NULL, yi + oy0 * p->ow * B, ohw * B);
    }
}

/* One call's arguments besides the plan, for the pool's units. */
typedef struct block_call {
    const bjob *jb;
    const cnn_platform *plat;
    const float *x, *residual;
    float *y, *scratch, *partial;
} block_call;

/* Unit u in its slot's window and tile buffers. */
static void block_unit(void *ctx, int64_t u, int slot)
{
    const block_call *c = (const block_call *)ctx;
    const bjob *jb = c->jb;
    float *mine = c->scratch ? c->scratch + slot * (jb->win + jb->tile) : NULL;
    run_unit(jb, c->plat, u, c->x, c->residual, c->y, mine, mine ? mine + jb->win : NULL,
             c->partial ? c->partial + u * jb->d->ocb * B : NULL);
}

cnn_status cnn_nchwc_block_run_f32(const cnn_conv2d_nchwc *e, const cnn_conv2d_nchwc *d,
                                   const cnn_conv2d_nchwc *pj, int64_t n, const float *x,
                                   const float *residual, float *y, float *pool, int64_t tile_rows,
                                   int threads)
{
    cnn_status st = check(e, d, pj, n, x, residual, y, pool);
    if (st != CNN_OK)
        return st;
    const cnn_platform *plat = cnn_plat();
    if (!plat->nchwc_pair_rows || !plat->nchwc_dw_rows)
        return CNN_ERR_UNSUPPORTED;
    /* packs in block pairs run where the level dropped after packing (tests) */
    if (((e && e->wpair) || (pj && pj->wpair)) && !plat->nchwc_wpair)
        return cnn_nchwc_block_run_ref_f32(e, d, pj, n, x, residual, y, pool, threads);
    const cnn_conv2d_params *p = &d->p;
    if (threads < 1)
        threads = 1;
    bjob jb;
    memset(&jb, 0, sizeof(jb));
    jb.e = e;
    jb.d = d;
    jb.pj = pj;
    jb.act = plat->act_row;
    if (e)
        pick_pw(plat, e, jb.efn);
    if (pj)
        pick_pw(plat, pj, jb.pfn);
    /* rows per tile: window and tile buffer within half the L2 */
    const int64_t px_bytes = d->ocb * B * (int64_t)sizeof(float), halo = (p->kh - 1) * p->dh + 1;
    const int64_t budget = cnn_l2_bytes() / 2 / px_bytes;
    const int64_t per_row = (e ? p->sh * p->w : 0) + (pj ? p->ow : 0);
    int64_t T = per_row ? (budget - (e ? (halo - p->sh) * p->w : 0)) / per_row : p->oh;
    if (tile_rows > 0)
        T = tile_rows;
    T = T < 1 ? 1 : (T > p->oh ? p->oh : T);
    jb.T = T;
    jb.R = (T - 1) * p->sh + halo;
    jb.chunks = (threads + n - 1) / n;
    if (jb.chunks > p->oh)
        jb.chunks = p->oh;
    const int64_t units = n * jb.chunks;
    if (threads > units)
        threads = (int)units;
    jb.win = e ? d->ocb * jb.R * p->w * B : 0;
    jb.tile = pj ? d->ocb * T * p->ow * B : 0;
    float *scratch = NULL, *partial = NULL;
    if (jb.win + jb.tile && !(scratch = cnn_alloc_floats((jb.win + jb.tile) * threads)))
        return CNN_ERR_OOM;
    if (pool && !(partial = cnn_alloc_floats(units * d->ocb * B))) {
        free(scratch);
        return CNN_ERR_OOM;
    }
    if (partial)
        memset(partial, 0, (size_t)(units * d->ocb * B) * sizeof(float));
    block_call call = {&jb, plat, x, residual, y, scratch, partial};
    cnn_pool_for(threads, units, NULL, cnn_threads_steal(), block_unit, &call);
    if (partial) {
        /* each image's means from its units' sums, in unit order */
        const double inv = 1.0 / (double)(p->oh * p->ow);
        for (int64_t img = 0; img < n; img++)
            for (int64_t k = 0; k < d->ocb * B; k++) {
                double s = 0.0;
                for (int64_t c = 0; c < jb.chunks; c++)
                    s += partial[(img * jb.chunks + c) * d->ocb * B + k];
                pool[img * d->ocb * B + k] = (float)(s * inv);
            }
    }
    free(partial);
    free(scratch);
    return CNN_OK;
}
