/* The blocked conv driver's plan of one call (csrc/ops/nchwc_drive.c),
 * shared with its thread-share planning (csrc/ops/nchwc_cuts.c). Private
 * to the driver: no other file includes it. */
#ifndef CNN_NCHWC_PLAN_H
#define CNN_NCHWC_PLAN_H

#include "nchwc_rows.h"

#define B CNN_NCHWC

/* One call's plan: the geometry the kernels see, the unit split, the kernels. */
typedef struct cnn_nchwc_plan {
    cnn_conv2d_params p;    /* pk->p with the geometry of the input read (a copy's) */
    const float *x;         /* the input read */
    float *xcopy;           /* the padded or subsampled copy to free, or NULL */
    int64_t in_blocks;      /* input block planes per image */
    int64_t h, w, oh, ow;   /* as the kernels see them: a flat 1x1 or span conv is one row */
    int64_t span_ow;        /* a span conv's real output width */
    int flat, span, passes, pf_next, gfast, wide, shape, kind, threads;
    int tiles_ok;           /* the kernels take tile lists (shape 3) */
    cnn_ptile *tiles;       /* a padded small plane's tiles (shape 3), or NULL */
    int64_t *tcut;          /* chunk c's tiles: [tcut[c], tcut[c + 1]) */
    int64_t ntiles;
    int64_t wob;            /* floats per output block of packed weights */
    int64_t gblocks, gpairs, pairs;   /* blocks and pairs per conv group; pairs in all */
    int64_t chunk, nchunks; /* output pixels per unit; units per row */
    int64_t gp, groups;     /* pairs per unit; units per (image, row, chunk) */
    int64_t units;
    int64_t in_lo, in_hi;   /* interior output columns: every tap kx inside [0, w) */
    const void *fns[4];     /* the kernels for 1..4 blocks */
    const cnn_nchwc_gate *gate;   /* applied to the input, or NULL (plan_gate) */
    int gate_x;             /* the gate scales the input (else the weights) */
    int64_t gper, gmarks;   /* floats of a thread's scaled copy; chunks or groups it marks */
    float *gbuf;            /* the threads' copies (cnn_scratch_take: ghave floats) */
    int64_t ghave;
    int64_t *gdone;         /* per thread and chunk/group: image + 1 its copy holds */
    int ncut;               /* threads the units are cut for (plan_cuts), or 0: static */
    int64_t cut[9];         /* thread j runs units [cut[j], cut[j + 1]) */
    /* the call's arguments, for the pool's units (drive_unit) */
    const cnn_conv2d_nchwc *pk;
    const float *residual;
    float *y;
    cnn_act_row_fn act;
} cnn_nchwc_plan;

/* The first output block of pair q: pairs never straddle two conv groups. */
static inline int64_t cnn_nchwc_pair_block(const cnn_nchwc_plan *pl, int64_t q)
{
    return q / pl->gpairs * pl->gblocks + 2 * (q % pl->gpairs);
}

/* The gate applies to the input chunks (plan_gate): a flat 1x1 on a plane
 * smaller than K (C*H*W multiplies, not K*C), and always with a shift. */
static inline int cnn_nchwc_gates_x(const cnn_nchwc_plan *pl, const cnn_conv2d_nchwc *pk, const cnn_nchwc_gate *gate)
{
    return gate && pl->flat && (pl->ow < pk->p.k || gate->shift);
}

/* A flat 1x1 whose sets the threads split unevenly: its pixels instead (gfast). */
void cnn_nchwc_plan_balance(cnn_nchwc_plan *pl, const cnn_conv2d_nchwc *pk, int64_t n, int threads);
/* A wide flat 1x1 the static split shares unevenly: runs of equal work (pl->cut). */
void cnn_nchwc_plan_cuts(cnn_nchwc_plan *pl, const cnn_conv2d_nchwc *pk, int64_t n, int threads,
                         const cnn_nchwc_gate *gate);

#endif
