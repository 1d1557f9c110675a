/* The blocked (NCHW8c) convolution driver, portable: it cuts the output
 * into units of (image, output row, pixel chunk, group of output block
 * pairs), shares them among the threads (a static split or cuts of equal
 * work, stealing at the tail: csrc/core/pool.h), and runs each unit
 * with the row kernels of the active platform (csrc/ops/nchwc_rows.h),
 * the widest that fits its blocks. Depthwise and Winograd packs have their
 * own drivers. The measurements behind each choice are in the commit
 * history (git log -S on the function's name).
 */
#include <stdlib.h>
#include <string.h>

#include "nchwc_plan.h"
#include "pool.h"

/* A table's kernel for b + 1 blocks of a conv of the given shape (0: flat
 * 1x1, 1: span rows, 2: rows of the kind, 3: tile lists), or NULL. */
static const void *table_kernel(const cnn_nchwc_rows *t, int shape, int s2, int kind, int b)
{
    return shape == 0   ? (const void *)t->pw[b]
           : shape == 1 ? (const void *)t->span[s2][b]
           : shape == 3 ? (const void *)t->tiles[b]
                        : (const void *)t->row[kind][b];
}

/* The row kernel kind for p: stems (cb = 1) and the common square kernels
 * get the stride, and for 3x3 the taps, fixed at compile time. */
static int pick_rows(const cnn_conv2d_params *p, int64_t cb)
{
    const int sq = p->kh == p->kw && p->dh == 1 && p->dw == 1 && p->sh == p->sw;
    if (cb == 1)
        return p->sw != 2 ? CNN_ROW_C1 : sq && p->kh == 3 ? CNN_ROW_C1_K3S2 : CNN_ROW_C1_S2;
    if (sq && p->kh == 1 && p->sw == 2)
        return CNN_ROW_C8_K1S2;
    if (sq && p->kh == 3 && p->sw == 1)
        return CNN_ROW_C8_K3S1;
    if (sq && p->kh == 3 && p->sw == 2)
        return CNN_ROW_C8_K3S2;
    return CNN_ROW_C8;
}

typedef cnn_nchwc_plan plan;

/* The input the kernels read: a zero-padded copy (except for a stem, whose
 * cold RGB input costs more to copy than its border pixels, and a wide
 * strided row, whose copy is 4x its output), or the pixels a strided 1x1
 * reads; pl->p takes the copy's geometry. */
static void plan_input(plan *pl, const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                       const cnn_nchwc_rows *wide, int threads)
{
    cnn_conv2d_params *p = &pl->p;
    const int64_t cb = pk->cb;
    *p = pk->p;
    pl->in_blocks = pk->icb * p->groups;
    const int strided_wide = wide && p->sw == 2 && p->ow >= 28;
    const int64_t planes = n * pl->in_blocks;
    float *xc = cb == B && !strided_wide ? cnn_nchwc_padded_input(p, x, planes, cb, threads) : NULL;
    if (!xc && cb == B && p->kh == 1 && p->kw == 1 && (p->sh > 1 || p->sw > 1) &&
        (xc = cnn_nchwc_subsampled_input(p, x, planes, threads)) != NULL) {
        p->h = p->oh;
        p->w = p->ow;
        p->sh = p->sw = 1;
    } else if (xc) {
        p->h += p->pt + p->pb;
        p->w += p->pl + p->pr;
        p->pt = p->pb = p->pl = p->pr = 0;
    }
    pl->x = xc ? xc : x;
    pl->xcopy = xc;
}

/* Output pixels px[0, m) of the plane (ow wide) as tiles of up to 12, as
 * even as the count allows (49 -> 5 of 9-10), sharing the taps k. */
static void tiles_emit(plan *pl, const int64_t *px, int64_t m, int64_t ow, const int32_t k[4])
{
    const cnn_conv2d_params *p = &pl->p;
    for (int64_t t = (m + 11) / 12, left = m; t > 0; t--) {
        const int64_t c = left / t;
        cnn_ptile *tl = &pl->tiles[pl->ntiles];
        pl->ntiles++;
        memset(tl, 0, sizeof *tl);
        tl->n = (int32_t)c;
        tl->ky0 = k[0], tl->ky1 = k[1], tl->kx0 = k[2], tl->kx1 = k[3];
        for (int64_t j = 0; j < c; j++, px++) {
            tl->q[j] = (int32_t)*px;
            tl->xo[j] = (int32_t)((*px / ow * p->sh * p->w + *px % ow * p->sw) * B);
        }
        left -= c;
    }
}

/* The tile list of a padded small plane (pl->p the copy's geometry, pk->p
 * the input's): first the pixels whose every tap is inside, in raster
 * order (tiles span rows; the first reads all of a call's weights in
 * order, from L3: a first tile that skipped taps left the later ones to
 * miss on the rest, 512->512 @7x7 0.91x); then each output row whose top
 * or bottom kernel rows fall wholly in the padding, as tiles that skip
 * them (the corners' columns too); then each column whose left or right
 * taps do, over the other rows, likewise. 0: the allocation was refused. */
static int plan_tiles(plan *pl, const cnn_conv2d_nchwc *pk)
{
    const cnn_conv2d_params *o = &pk->p;
    const int64_t oh = o->oh, ow = o->ow;
    const int64_t cap = oh * ((ow + 11) / 12) + ow * ((oh + 11) / 12) + oh * ow / 12 + 2;
    int64_t *px = malloc((size_t)(oh * ow) * sizeof *px);
    pl->tiles = malloc((size_t)cap * sizeof *pl->tiles);
    pl->tcut = malloc((size_t)(cap + 1) * sizeof *pl->tcut);
    if (!px || !pl->tiles || !pl->tcut) {
        free(px), free(pl->tiles), free(pl->tcut);
        pl->tiles = NULL;
        pl->tcut = NULL;
        return 0;
    }
    pl->ntiles = 0;
    int32_t k[4], fx0 = (int32_t)o->kw, fx1 = 0;   /* the taps any column has */
    for (int64_t ox = 0; ox < ow; ox++) {
        cnn_nchwc_tap_range(ox * o->sw - o->pl, o->kw, o->dw, o->w, &k[2], &k[3]);
        if (k[2] < k[3]) {
            fx0 = k[2] < fx0 ? k[2] : fx0;
            fx1 = k[3] > fx1 ? k[3] : fx1;
        }
    }
    if (fx0 > fx1)
        fx0 = fx1 = 0;
    int64_t full0 = oh, full1 = oh;   /* the rows with every kernel row inside */
    for (int64_t oy = 0; oy < oh; oy++) {
        cnn_nchwc_tap_range(oy * o->sh - o->pt, o->kh, o->dh, o->h, &k[0], &k[1]);
        if (k[0] == 0 && k[1] == o->kh) {
            full0 = full0 < oy ? full0 : oy;
            full1 = oy + 1;
        }
    }
    int64_t m = 0;
    for (int64_t oy = full0; oy < full1; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            cnn_nchwc_tap_range(ox * o->sw - o->pl, o->kw, o->dw, o->w, &k[2], &k[3]);
            if (k[2] == 0 && k[3] == o->kw)
                px[m++] = oy * ow + ox;
        }
    k[0] = 0, k[1] = (int32_t)o->kh;
    k[2] = 0, k[3] = (int32_t)o->kw;
    if (m)
        tiles_emit(pl, px, m, ow, k);
    for (int64_t oy = 0; oy < oh; oy++) {
        if (oy >= full0 && oy < full1)
            continue;
        cnn_nchwc_tap_range(oy * o->sh - o->pt, o->kh, o->dh, o->h, &k[0], &k[1]);
        for (int64_t ox = 0; ox < ow; ox++)
            px[ox] = oy * ow + ox;
        k[2] = fx0, k[3] = fx1;
        tiles_emit(pl, px, ow, ow, k);
    }
    k[0] = 0, k[1] = (int32_t)o->kh;
    for (int64_t ox = 0; full0 < full1 && ox < ow; ox++) {
        cnn_nchwc_tap_range(ox * o->sw - o->pl, o->kw, o->dw, o->w, &k[2], &k[3]);
        if (k[2] == 0 && k[3] == o->kw)
            continue;
        for (int64_t oy = full0; oy < full1; oy++)
            px[oy - full0] = oy * ow + ox;
        tiles_emit(pl, px, full1 - full0, ow, k);
    }
    free(px);
    return 1;
}

/* The row shape: a flat 1x1 (stride 1, no padding) as one row of h*w
 * pixels, small 3x3 planes as one raster row of tiles that may span rows;
 * the wide 1x1 kernels' input passes and next-tile prefetch. */
static void plan_shape(plan *pl, const cnn_conv2d_nchwc *pk, int64_t n, const float *residual,
                       const float *y, int threads, const cnn_nchwc_gate *gate)
{
    const cnn_conv2d_params *p = &pl->p;
    const int64_t cb = pk->cb;
    pl->h = p->h, pl->w = p->w, pl->oh = p->oh, pl->ow = p->ow;
    pl->flat = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->pt == 0 &&
               p->pl == 0 && p->pb == 0 && p->pr == 0;
    if (pl->flat) {
        pl->w = pl->ow = pl->h * pl->w;
        pl->h = pl->oh = 1;
    }
    /* passes of 16 input blocks keep partial sums in y: not where y is the
     * residual read at the end, nor on planes up to 14x14 (one unit a set
     * over at most 17 tiles rereads its weights from L2 for less than the
     * passes' partial sums cost; at 2 threads plan_cuts evens the sets),
     * but for a gated one scaling its input chunks, which plan_cuts leaves
     * (measured: docs/performance.md, 2026-12-06) */
    const int64_t ysize = n * pk->ocb * p->oh * p->ow * B;
    pl->passes = pl->wide && pl->flat && cb == B && pk->icb > 24 &&
                 (pl->ow > 196 || (threads > 1 && cnn_nchwc_gates_x(pl, pk, gate))) &&
                 !(residual && residual < y + ysize && y < residual + ysize);
    /* an input over 512 KiB comes from L3: prefetch the next tile's */
    pl->pf_next = pl->wide && pl->flat && cb == B && pl->in_blocks * pl->h * pl->w * B > 131072;
    pl->span_ow = pl->ow;
    /* a padded plane up to 35 pixels wide (a copy: pk->p padded, pl->p
     * not) as tile lists that skip the taps in its padding: 1.03-1.19x
     * on 17 shapes from 7x7 to 35x35 (3x3 s1 and s2, 1x7, 7x1, 1x3, 3x1,
     * 5x5), 1 thread. On more threads only planes under 12 wide, which ran
     * as span tiles before (2 threads: 1.03-1.19x); rows of 14 lost there
     * (GoogLeNet's 24->64 and DenseNet's 128->32 @14x14: 0.88-0.97x). Not
     * where the stored rows take an activation pass. */
    const cnn_conv2d_params *o = &pk->p;
    pl->tiles = NULL;
    pl->tcut = NULL;
    pl->ntiles = 0;
    if (pl->tiles_ok && cb == B && pl->xcopy && o->kh * o->kw > 1 &&
        (o->pt | o->pl | o->pb | o->pr) && cnn_act_in_tile(o->ep.act) &&
        o->ow <= (threads > 1 ? 11 : 35) &&
        pl->h * pl->w * B <= INT32_MAX && plan_tiles(pl, pk)) {
        pl->ow = pl->oh * pl->ow;
        pl->oh = 1;
    }
    pl->span = !pl->tiles && cb == B && pl->ow < 12 && pl->oh > 1 && p->kh == 3 && p->kw == 3 &&
               p->dh == 1 && p->dw == 1 && p->sh == p->sw && (p->sw == 1 || p->sw == 2) &&
               !(p->pt | p->pl | p->pb | p->pr);
    if (pl->span) {
        pl->ow = pl->oh * pl->ow;
        pl->oh = 1;
    }
    pl->wob = pk->icb * p->kh * p->kw * cb * B;
    pl->gblocks = pk->ocb / p->groups;
    pl->gpairs = (pl->gblocks + 1) / 2;
    pl->pairs = pl->gpairs * p->groups;
}

/* Pixels per unit: the tile's input around 32 KiB (L1) while the unit's
 * pairs sweep it; one chunk where the weights overflow L2 and the row's
 * input (up to 1 MiB) fits it, so they stream from L3 once; 256 with
 * passes (the weights stay in L1, partial sums 32 KiB). */
static void plan_chunks(plan *pl, const cnn_conv2d_nchwc *pk)
{
    const int64_t ow = pl->ow, per_px = pk->icb * pk->cb * pl->p.kh;
    int64_t chunk = 8192 / (per_px > 0 ? per_px : 1);
    chunk = chunk < 24 ? 24 : (chunk > 2048 ? 2048 : chunk);
    if (pk->ocb * pl->wob > 65536 && per_px * ow <= 262144)
        chunk = ow;
    if (pl->passes)
        chunk = 256;
    int64_t nchunks = (ow + chunk - 1) / chunk;
    chunk = (ow + nchunks - 1) / nchunks;
    /* the pairs' tiles are 6 pixels; the wide kernels split any chunk evenly */
    if (!pl->wide)
        chunk = (chunk + 5) / 6 * 6;
    pl->chunk = chunk;
    pl->nchunks = (ow + chunk - 1) / chunk;
}

/* Pairs per unit, in sets of what one kernel call takes (wide: 2): their
 * weights about 128 KiB (L2), fewer while that leaves under 4 units a
 * thread, and groups of equal size (the static split gives each thread
 * as many units). */
static void plan_groups(plan *pl, const cnn_conv2d_nchwc *pk, int64_t n, int threads)
{
    const int64_t st = pl->wide ? 2 : 1, sets = (pl->pairs + st - 1) / st;
    int64_t gs = (128 * 1024 / 4) / (2 * st * pl->wob);
    gs = gs < 1 ? 1 : (gs > sets ? sets : gs);
    while (gs > 1 && n * ((sets + gs - 1) / gs) * pl->oh * pl->nchunks < 4 * (int64_t)threads)
        gs = (gs + 1) / 2;
    while (gs > 1 && sets % gs)
        gs--;
    /* a wide 1x1 whose input fits L2, without passes: the threads split its
     * pixels, each running every set (sets vary fastest), as MLAS does; not
     * where a thread's share is under 1024 pixels (maps up to 28x28 at 2
     * threads), which run faster as units of pixel chunks x sets (2
     * threads, best of runs: 96->576 @7x7 51 -> 29 us, @14x14 145 -> 100,
     * 40->240 @28x28 + SiLU 122 -> 112; @56x56 and @112x112 the pixel
     * split stays 0-4 % ahead) */
    pl->gfast = 0;
    if (pl->wide && pl->flat && pk->cb == B && !pl->passes && pl->in_blocks * pl->ow * B <= 262144 &&
        (threads == 1 || pl->ow >= 1024 * (int64_t)threads)) {
        gs = 1;
        pl->gfast = 1;
        pl->chunk = (pl->ow + threads - 1) / threads;
        pl->nchunks = (pl->ow + pl->chunk - 1) / pl->chunk;
    }
    pl->gp = gs * st;
    pl->groups = (pl->pairs + pl->gp - 1) / pl->gp;
    /* with passes, a unit count the threads divide */
    if (pl->passes && pl->ow > 1) {
        int64_t nc = pl->nchunks;
        while (nc < pl->nchunks + threads && nc < pl->ow && (n * pl->groups * pl->oh * nc) % threads)
            nc++;
        if ((n * pl->groups * pl->oh * nc) % threads == 0) {
            pl->chunk = (pl->ow + nc - 1) / nc;
            pl->nchunks = (pl->ow + pl->chunk - 1) / pl->chunk;
        }
    }
    pl->units = n * pl->groups * pl->oh * pl->nchunks;
}


/* A tile's work: its pixels x taps, and a little for its store. */
static int64_t tile_work(const cnn_ptile *t)
{
    return (int64_t)t->n * (t->ky1 - t->ky0) * (t->kx1 - t->kx0) + 1;
}

/* Chunks [c0, c0 + nc) over tiles [t0, t1): runs of whole tiles of about
 * equal work, each up to the tile whose middle passes its share. */
static void tiles_cut(plan *pl, int64_t t0, int64_t t1, int64_t c0, int64_t nc)
{
    int64_t work = 0, done = 0, t = t0;
    for (int64_t i = t0; i < t1; i++)
        work += tile_work(&pl->tiles[i]);
    for (int64_t c = 0; c < nc; c++) {
        pl->tcut[c0 + c] = t;
        for (int64_t w; t < t1 && 2 * done + (w = tile_work(&pl->tiles[t])) <= 2 * work * (c + 1) / nc;
             t++)
            done += w;
    }
    pl->tcut[c0 + nc] = t1;
}

/* The tiles reordered into parts of about equal work, one a thread: each
 * takes, in list order (the full tiles first), every tile that still fits
 * its share, so the light border tiles fill what the full ones leave
 * (DenseNet's 128->32 @7x7: 189:187 where cuts by work gave 228:148).
 * 0: no memory (the order stays). */
static int tiles_parts(plan *pl, int parts, int64_t *bound)
{
    cnn_ptile *src = malloc((size_t)pl->ntiles * sizeof *src);
    char *used = calloc((size_t)pl->ntiles, 1);
    if (!src || !used) {
        free(src), free(used);
        return 0;
    }
    memcpy(src, pl->tiles, (size_t)pl->ntiles * sizeof *src);
    int64_t left = 0, out = 0;
    for (int64_t t = 0; t < pl->ntiles; t++)
        left += tile_work(&src[t]);
    for (int j = 0; j < parts; j++) {
        const int64_t share = left / (parts - j);
        int64_t acc = 0;
        bound[j] = out;
        for (int64_t t = 0; t < pl->ntiles; t++) {
            const int64_t w = tile_work(&src[t]);
            if (used[t] || (j < parts - 1 && acc + w > share))
                continue;
            used[t] = 1;
            pl->tiles[out++] = src[t];
            acc += w;
        }
        left -= acc;
    }
    bound[parts] = out;
    free(src);
    free(used);
    return 1;
}

/* A tile list's units: chunks of whole tiles of about equal work (pixels x
 * taps), as many as plan_chunks made of its pixels (at most one a tile),
 * raised until the threads divide the units; where the threads share one
 * image's one group, in equal parts of the tiles, one a thread
 * (tiles_parts). */
static void plan_tile_units(plan *pl, int64_t n, int threads)
{
    if (!pl->tiles)
        return;
    int64_t nc = pl->nchunks < pl->ntiles ? pl->nchunks : pl->ntiles;
    for (int64_t c = nc; threads > 1 && c <= pl->ntiles && c < nc + threads; c++)
        if (n * pl->groups * c % threads == 0) {
            nc = c;
            break;
        }
    int64_t bound[9];
    if (threads > 1 && threads <= 8 && n * pl->groups == 1 && nc % threads == 0 &&
        tiles_parts(pl, threads, bound)) {
        for (int j = 0; j < threads; j++)
            tiles_cut(pl, bound[j], bound[j + 1], j * (nc / threads), nc / threads);
    } else {
        tiles_cut(pl, 0, pl->ntiles, 0, nc);
    }
    pl->nchunks = nc;
    pl->units = n * pl->groups * pl->oh * nc;
}

/* The kernels for 1..4 blocks, wide's where it has them, and the interior
 * output columns (every tap kx inside [0, w)). */
static void plan_kernels(plan *pl, const cnn_conv2d_nchwc *pk, const cnn_nchwc_rows *pairs,
                         const cnn_nchwc_rows *wide)
{
    const cnn_conv2d_params *p = &pl->p;
    pl->kind = pick_rows(p, pk->cb);
    pl->shape = pl->flat && pk->cb == B ? 0 : pl->tiles ? 3 : pl->span ? 1 : 2;
    for (int b = 0; b < 4; b++) {
        pl->fns[b] = wide ? table_kernel(wide, pl->shape, p->sw == 2, pl->kind, b) : NULL;
        if (!pl->fns[b] && b < 2)
            pl->fns[b] = table_kernel(pairs, pl->shape, p->sw == 2, pl->kind, b);
    }
    int64_t in_lo = (p->pl + p->sw - 1) / p->sw;
    int64_t last = pl->w - 1 + p->pl - (p->kw - 1) * p->dw;
    int64_t in_hi = last < 0 ? 0 : last / p->sw + 1;
    if (in_hi > pl->ow) in_hi = pl->ow;
    if (in_lo > in_hi) in_lo = in_hi;
    pl->in_lo = in_lo;
    pl->in_hi = in_hi;
}

/* A gated conv's scratch: each thread scales what its units read into
 * its own copy, once per image (a copy one thread made and the other read
 * cost 2 threads more than the scaling: MobileNetV3's 960->160 @7x7 gated
 * in two steps). A flat 1x1 on a plane smaller than K scales its input
 * chunks (C*H*W multiplies, not K*C), others the weights of their groups. */
static cnn_status plan_gate(plan *pl, const cnn_conv2d_nchwc *pk, int64_t n,
                            const cnn_nchwc_gate *gate, int threads)
{
    pl->gate = gate;
    pl->gbuf = NULL;
    pl->gdone = NULL;
    if (!gate)
        return CNN_OK;
    pl->gate_x = cnn_nchwc_gates_x(pl, pk, gate);
    if (gate->shift && (!pl->gate_x || !gate->affine))
        return CNN_ERR_UNSUPPORTED;
    /* an affine's chunks: a count the threads divide (DenseNet's 1x1s), so
     * that each thread normalises only its own pixels */
    if (gate->shift && threads > 1 && !pl->ncut && pl->nchunks % threads &&
        pl->ow >= 2 * (int64_t)threads) {
        const int64_t nc = (pl->nchunks + threads - 1) / threads * threads;
        pl->chunk = (pl->ow + nc - 1) / nc;
        pl->nchunks = (pl->ow + pl->chunk - 1) / pl->chunk;
        pl->units = n * pl->groups * pl->oh * pl->nchunks;
    }
    /* input chunks whole per thread (sets fastest): each thread scales
     * only its own pixels, and reads each set's weights once as before */
    if (pl->gate_x && threads > 1 && !pl->ncut && pl->nchunks % threads == 0)
        pl->gfast = 1;
    int64_t per = pl->gate_x ? pl->in_blocks * pl->h * pl->w * pk->cb : cnn_nchwc_w_count(pk);
    per = (per + 15) & ~(int64_t)15;
    pl->gper = per;
    pl->gmarks = pl->gate_x ? pl->nchunks : pl->groups;
    int64_t t;
    if (!cnn_mul_ok(per, threads, &t))
        return CNN_ERR_SHAPE;
    pl->gbuf = cnn_scratch_take(t, &pl->ghave);
    pl->gdone = calloc((size_t)(threads * pl->gmarks), sizeof(int64_t));
    return pl->gbuf && pl->gdone ? CNN_OK : CNN_ERR_OOM;
}

/* The thread's copy of unit's gated operand for image img: input pixels
 * [x0, x1) of every block, or the weights of group g (scaled when its mark
 * says another image or none); the input and weights the unit then reads. */
static void gate_unit(const plan *pl, const cnn_conv2d_nchwc *pk, int64_t img, int64_t g,
                      int64_t ck, int64_t x0, int64_t x1, float *buf, int64_t *done,
                      const float **ximg, const float **w)
{
    const cnn_nchwc_gate *gt = pl->gate;
    const float *s = gt->scale + img * gt->stride;
    if (pl->gate_x) {
        const int64_t xplane = pl->h * pl->w * pk->cb;
        if (done[ck] != img + 1) {
            if (gt->shift)
                gt->affine(*ximg + x0 * B, xplane, pl->in_blocks, x1 - x0, s, gt->shift, &gt->act,
                           buf + x0 * B);
            for (int64_t ib = 0; ib < pl->in_blocks && !gt->shift; ib++) {
                const float *src = *ximg + ib * xplane + x0 * B, *f = s + ib * B;
                float *dst = buf + ib * xplane + x0 * B;
                for (int64_t q = 0; q < (x1 - x0) * B; q += B)
                    for (int l = 0; l < B; l++)
                        dst[q + l] = src[q + l] * f[l];
            }
            done[ck] = img + 1;
        }
        *ximg = buf;
    } else {
        if (done[g] != img + 1) {
            const int64_t p0 = g * pl->gp, p1 = p0 + pl->gp < pl->pairs ? p0 + pl->gp : pl->pairs;
            if (pk->wpair)
                cnn_nchwc_scale_slabs(pk, s, buf, p0, p1);
            else
                cnn_nchwc_scale_slabs(pk, s, buf, 2 * p0, 2 * p1 < pk->ocb ? 2 * p1 : pk->ocb);
            done[g] = img + 1;
        }
        *w = buf;
    }
}

/* The weights the call on pairs [pr, nxt) of a unit prefetches into L2 for
 * the next call. Rows: the thread's next units are this group's other
 * rows, then the next group, so each row's last call takes 1/oh of the
 * next group's weights; flat and span: the next call's (up to 4) blocks. */
static void unit_prefetch(const plan *pl, const cnn_conv2d_nchwc *pk, crow *r, int64_t pr_end,
                          int64_t nxt, int64_t ck, int64_t oy)
{
    const int64_t pairs = pl->pairs, wob = pl->wob;
    r->pf = NULL;
    if (ck != 0)
        return;
    if (pl->shape == 2) {
        if (nxt == pr_end && pr_end < pairs) {
            const int64_t nend = pr_end + pl->gp < pairs ? pr_end + pl->gp : pairs;
            const int64_t b0 = cnn_nchwc_pair_block(pl, pr_end);
            const int64_t b1 = nend < pairs ? cnn_nchwc_pair_block(pl, nend) : pk->ocb;
            const int64_t bytes = (b1 - b0) * wob * (int64_t)sizeof(float);
            const int64_t share = ((bytes + pl->oh - 1) / pl->oh + 63) & ~(int64_t)63;
            if (oy * share < bytes) {
                r->pf = (const char *)(pk->w + b0 * wob) + oy * share;
                r->pf_bytes = bytes - oy * share < share ? bytes - oy * share : share;
            }
        }
    } else if (nxt < pairs) {
        const int64_t ncg = nxt / pl->gpairs, nob = cnn_nchwc_pair_block(pl, nxt);
        int64_t nnb = ncg * pl->gblocks + pl->gblocks - nob;
        if (nnb > (pl->wide ? 4 : 2))
            nnb = pl->wide ? 4 : 2;
        r->pf_bytes = nnb * wob * (int64_t)sizeof(float);
        /* span tiles reread all of a call's weights: not where this call's
         * and the next's overflow 3/4 of L2 (the next would evict them) */
        if (pl->shape == 0 || 4 * 2 * r->pf_bytes <= 3 * cnn_l2_bytes())
            r->pf = (const char *)(pk->w + nob * wob);
    }
}

/* The row descriptor of output row oy of an image, before its blocks. */
static void unit_row(const plan *pl, const cnn_conv2d_nchwc *pk, int64_t oy, crow *r)
{
    const cnn_conv2d_params *p = &pl->p;
    r->xplane = pl->h * pl->w * pk->cb;
    r->xrow = pl->w * pk->cb;
    r->icb = pk->icb;
    r->ibatch = pl->passes ? 16 : pk->icb;
    r->pf_next = pl->pf_next;
    r->kh = p->kh; r->kw = p->kw; r->sw = p->sw; r->dh = p->dh; r->dw = p->dw;
    r->iy0 = oy * p->sh - p->pt;
    r->ky0 = 0;
    r->ky1 = p->kh;
    /* rows: not the kernel rows in the input's padding, a padded copy's
     * zero rows included (pk->p's geometry; 7x1 @17x17: 1.10x) */
    const cnn_conv2d_params *o = pl->shape == 2 ? &pk->p : p;
    const int64_t iy0 = oy * o->sh - o->pt, h = pl->shape == 2 ? o->h : pl->h;
    while (r->ky0 < r->ky1 && iy0 + r->ky0 * o->dh < 0) r->ky0++;
    while (r->ky1 > r->ky0 && iy0 + (r->ky1 - 1) * o->dh >= h) r->ky1--;
    r->wob = pl->wob;
    r->yplane = pl->oh * pl->ow * B;
    r->ep = &p->ep;
}

/* Unit u: its pairs up to 4 blocks a call (the most its conv group and
 * the kernels take), then the exp-based activations over what it stored. */
static void run_unit(const plan *pl, const cnn_conv2d_nchwc *pk, int64_t u, const float *residual,
                     float *y, cnn_act_row_fn act, float *gbuf, int64_t *gdone)
{
    const cnn_conv2d_params *p = &pl->p;
    int64_t q = u, ck, oy, g, img;
    if (pl->gfast) {
        g = q % pl->groups; q /= pl->groups;
        ck = q % pl->nchunks; q /= pl->nchunks;
        oy = q % pl->oh; img = q / pl->oh;
    } else {
        ck = q % pl->nchunks; q /= pl->nchunks;
        oy = q % pl->oh; q /= pl->oh;
        g = q % pl->groups;
        img = q / pl->groups;
    }
    const int64_t x0 = ck * pl->chunk, x1 = x0 + pl->chunk < pl->ow ? x0 + pl->chunk : pl->ow;
    const int64_t xplane = pl->h * pl->w * pk->cb, yplane = pl->oh * pl->ow * B;
    const float *ximg = pl->x + img * pl->in_blocks * xplane, *wts = pk->w;
    if (gdone)
        gate_unit(pl, pk, img, g, ck, x0, x1, gbuf, gdone, &ximg, &wts);
    crow r;
    unit_row(pl, pk, oy, &r);
    const int64_t t0 = pl->tiles ? pl->tcut[ck] : 0, t1 = pl->tiles ? pl->tcut[ck + 1] : 0;
    const int64_t pr_end = (g + 1) * pl->gp < pl->pairs ? (g + 1) * pl->gp : pl->pairs;
    for (int64_t pr = g * pl->gp; pr < pr_end;) {
        const int64_t cg = pr / pl->gpairs, ob = cnn_nchwc_pair_block(pl, pr);
        const int64_t gend = (cg + 1) * pl->gpairs < pr_end ? (cg + 1) * pl->gpairs : pr_end;
        int64_t nb = cg * pl->gblocks + pl->gblocks - ob;
        if (nb > 2 * (gend - pr))
            nb = 2 * (gend - pr);
        if (nb > 4)
            nb = 4;
        while (!pl->fns[nb - 1])
            nb--;
        const int64_t nxt = pr + (nb + 1) / 2;
        r.x = ximg + cg * pk->icb * xplane;
        r.w = wts + ob * pl->wob;
        r.bias = pk->bias + ob * B;
        const int64_t yoff = (img * pk->ocb + ob) * yplane + oy * pl->ow * B;
        r.y = y + yoff;
        r.res = residual ? residual + yoff : NULL;
        unit_prefetch(pl, pk, &r, pr_end, nxt, ck, oy);
        /* scaled weights: this group's from the thread's copy; the next
         * group's are not made yet */
        if (wts != pk->w && r.pf)
            r.pf = pl->shape != 2 && nxt < pr_end
                       ? (const char *)wts + ((const char *)r.pf - (const char *)pk->w)
                       : NULL;
        r.nb = nb;
        const void *f = pl->fns[nb - 1];
        if (pl->shape == 0)
            ((cnn_pw_fn)f)(&r, x0, x1);
        else if (pl->shape == 1)
            ((cnn_span_fn)f)(&r, x0, x1, pl->span_ow);
        else if (pl->shape == 3)
            ((cnn_tiles_fn)f)(&r, pl->tiles + t0, t1 - t0);
        else
            ((cnn_row_fn)f)(&r, x0, x1, pl->in_lo, pl->in_hi, p->pl, pl->w);
        if (!cnn_act_in_tile(p->ep.act))
            for (int64_t b = 0; b < nb; b++)
                act(&p->ep, r.y + b * yplane + x0 * B, r.y + b * yplane + x0 * B, (x1 - x0) * B);
        pr = nxt;
    }
}

static void drive_unit(void *ctx, int64_t u, int slot)
{
    const plan *pl = (const plan *)ctx;   /* a gated conv: the slot's scaled copy */
    run_unit(pl, pl->pk, u, pl->residual, pl->y, pl->act,
             pl->gate ? pl->gbuf + slot * pl->gper : NULL,
             pl->gate ? pl->gdone + slot * pl->gmarks : NULL);
}

cnn_status cnn_nchwc_conv_drive(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                const float *residual, float *y, int threads,
                                const cnn_nchwc_rows *pairs, const cnn_nchwc_rows *wide,
                                cnn_act_row_fn act, const cnn_nchwc_gate *gate)
{
    plan pl;
    if (!pk->wpair)   /* the wide kernels read block-pair packs only */
        wide = NULL;
    pl.wide = wide != NULL;
    pl.tiles_ok = (wide && wide->tiles[1]) || pairs->tiles[1];
    plan_input(&pl, pk, n, x, wide, threads);
    plan_shape(&pl, pk, n, residual, y, threads, gate);
    plan_chunks(&pl, pk);
    plan_groups(&pl, pk, n, threads);
    cnn_nchwc_plan_balance(&pl, pk, n, threads);
    plan_tile_units(&pl, n, threads);
    /* A small conv (a squeeze-excitation 1x1 on one pixel) runs on one
     * thread: fork and barriers cost more than it saves. Unless its
     * weights are many: streamed from L3, two cores read them faster. */
    const int64_t taps = pl.p.kh * pl.p.kw;
    if ((double)n * pl.oh * pl.ow * pk->ocb * B * pk->icb * pk->cb * taps < 262144.0 &&
        pk->ocb * pl.wob < 32768)
        threads = 1;
    plan_kernels(&pl, pk, pairs, wide);
    if (threads > pl.units)
        threads = (int)pl.units;
    cnn_nchwc_plan_cuts(&pl, pk, n, threads, gate);
    const cnn_status st = plan_gate(&pl, pk, n, gate, threads);
    /* no stealing in a gated conv: a thief scales a whole operand for one unit */
    if (st == CNN_OK) {
        pl.pk = pk, pl.residual = residual, pl.y = y, pl.act = act;
        cnn_pool_for(threads, pl.units, pl.ncut ? pl.cut : NULL, !gate && cnn_threads_steal(),
                     drive_unit, &pl);
    }
    cnn_scratch_give(pl.gbuf, pl.ghave);
    free(pl.gdone), free(pl.xcopy), free(pl.tiles), free(pl.tcut);
    return st;
}
