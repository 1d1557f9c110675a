/* How the blocked conv driver's units are shared among the threads where
 * its static split would share them unevenly (csrc/ops/nchwc_drive.c):
 * a flat 1x1's pixels split instead of its sets, or runs of equal work. */
#include "nchwc_plan.h"

typedef cnn_nchwc_plan plan;

/* The largest share of pair-pixels a thread gets from the static split of
 * the units in the order run_unit decodes them (gfast: sets fastest). */
static int64_t plan_max_share(const plan *pl, int64_t n, int threads, int gfast)
{
    const int64_t units = n * pl->groups * pl->oh * pl->nchunks;
    const int64_t q = units / threads, r = units % threads;
    int64_t worst = 0, u = 0;
    for (int t = 0; t < threads; t++) {
        int64_t share = 0;
        for (const int64_t end = u + q + (t < r); u < end; u++) {
            const int64_t g = gfast ? u % pl->groups : u / (pl->oh * pl->nchunks) % pl->groups;
            const int64_t ck = gfast ? u / pl->groups % pl->nchunks : u % pl->nchunks;
            const int64_t pr = pl->pairs - g * pl->gp < pl->gp ? pl->pairs - g * pl->gp : pl->gp;
            const int64_t x0 = ck * pl->chunk;
            share += pr * ((x0 + pl->chunk < pl->ow ? x0 + pl->chunk : pl->ow) - x0);
        }
        if (share > worst)
            worst = share;
    }
    return worst;
}

/* A flat 1x1 whose sets the threads split unevenly (odd pair counts:
 * 240->40 at 28x28 as 2:1, 480->80 at 14x14 as 6:4) splits its pixels
 * instead, each thread running every set over its chunks (48 pixels or
 * more), where that cuts the largest share by over 1/8 (a 4:3 split, as
 * EfficientNet-B0's 672->112, keeps its sets: unmeasured). */
void cnn_nchwc_plan_balance(cnn_nchwc_plan *pl, const cnn_conv2d_nchwc *pk, int64_t n, int threads)
{
    if (threads < 2 || pl->gfast || !pl->flat || pk->cb != B || pl->groups < 2 ||
        pl->ow < 48 * (int64_t)threads)
        return;
    const int64_t worst = plan_max_share(pl, n, threads, 0);
    const plan keep = *pl;
    int64_t nc = (pl->nchunks + threads - 1) / threads * threads;
    while (nc > threads && pl->ow / nc < 48)
        nc -= threads;
    pl->chunk = (pl->ow + nc - 1) / nc;
    pl->nchunks = (pl->ow + pl->chunk - 1) / pl->chunk;
    if (8 * plan_max_share(pl, n, threads, 1) < 7 * worst) {
        pl->gfast = 1;
        pl->units = n * pl->groups * pl->oh * pl->nchunks;
    } else {
        *pl = keep;
    }
}

/* Tiles of up to 12 pixels the wide 1x1 runs over ow pixels in chunks of ch. */
static int64_t chunk_tiles(int64_t ow, int64_t ch)
{
    const int64_t m = (ow + ch - 1) / ch;
    return (m - 1) * ((ch + 11) / 12) + (ow - (m - 1) * ch + 11) / 12;
}

/* The units in run_unit's order (chunks fastest) cut into `threads` runs:
 * with fixed, as the static schedule cuts them; else of about equal work
 * (pair-pixels), each run up to the unit whose middle passes its share
 * (pl->cut). The largest run's work. No divisions: it runs every call. */
static int64_t cut_units(plan *pl, int64_t n, int threads, int fixed)
{
    const int64_t units = n * pl->groups * pl->oh * pl->nchunks, q = units / threads;
    const int64_t total = n * pl->oh * pl->pairs * pl->ow;
    int64_t done = 0, run = 0, most = 0, v = 0, next = q + (units % threads > 0);
    int j = 0;
    pl->cut[0] = 0;
    for (int64_t img = 0; img < n; img++)
        for (int64_t g = 0; g < pl->groups; g++) {
            const int64_t pr = pl->pairs - g * pl->gp < pl->gp ? pl->pairs - g * pl->gp : pl->gp;
            for (int64_t oy = 0; oy < pl->oh; oy++)
                for (int64_t x0 = 0; x0 < pl->ow; x0 += pl->chunk, v++) {
                    const int64_t w = pr * ((x0 + pl->chunk < pl->ow ? x0 + pl->chunk : pl->ow) - x0);
                    while (j + 1 < threads &&
                           (fixed ? v == next : 2 * done + w > 2 * total * (j + 1) / threads)) {
                        pl->cut[++j] = v;
                        next += q + (units % threads > j);
                        most = run > most ? run : most;
                        run = 0;
                    }
                    done += w;
                    run += w;
                }
        }
    while (j < threads)
        pl->cut[++j] = units;
    return run > most ? run : most;
}

/* A wide flat 1x1 whose units the static split shares unevenly (few
 * large sets on a small plane: RegNetX's 160->400 @7x7 as 13 sets of 4
 * blocks, 7:6; MobileNetV3's gated 672->112 @14x14 as 4:3 pairs): finer
 * pixel chunks, cut into runs of equal work, one a thread (a set split
 * between two threads is read by both), where that lowers the largest
 * share by over 1/32 and adds at most 1/16 to the tiles of 12. Not a
 * gated conv that scales its input chunks (plan_gate splits those). */
void cnn_nchwc_plan_cuts(cnn_nchwc_plan *pl, const cnn_conv2d_nchwc *pk, int64_t n, int threads,
                      const cnn_nchwc_gate *gate)
{
    pl->ncut = 0;
    if (threads < 2 || threads > 8 || pl->gfast || !pl->flat || !pl->wide || pk->cb != B ||
        cnn_nchwc_gates_x(pl, pk, gate) || pl->units >= 16 * threads)
        return;
    const plan keep = *pl;
    const int64_t tiles = chunk_tiles(pl->ow, pl->chunk), per = pl->units / pl->nchunks;
    int64_t best = cut_units(pl, n, threads, 1), best_ch = 0;
    for (int64_t nc = keep.nchunks; nc <= 4 * keep.nchunks && nc <= keep.ow && per * nc <= 64; nc++) {
        const int64_t ch = (keep.ow + nc - 1) / nc;
        if (16 * chunk_tiles(keep.ow, ch) > 17 * tiles)
            continue;
        pl->chunk = ch;
        pl->nchunks = (keep.ow + ch - 1) / ch;
        const int64_t s = cut_units(pl, n, threads, 0);
        if (32 * s < 31 * best) {
            best = s;
            best_ch = ch;
        }
    }
    *pl = keep;
    if (!best_ch)
        return;
    pl->chunk = best_ch;
    pl->nchunks = (pl->ow + best_ch - 1) / best_ch;
    pl->units = n * pl->groups * pl->oh * pl->nchunks;
    cut_units(pl, n, threads, 0);
    pl->ncut = threads;
}
