/* The blocked (NCHW8c) convolution's row kernels as the portable driver
 * (csrc/ops/nchwc_drive.c) sees them: the row descriptor they read and the
 * per-ISA tables of them (csrc/x86/nchwc_avx2.c: output block pairs;
 * nchwc_avx512.c: up to two pairs), reached through the platform table.
 * No intrinsics here.
 */
#ifndef CNN_OPS_NCHWC_ROWS_H
#define CNN_OPS_NCHWC_ROWS_H

#include "nchwc.h"

/* One output row (or, for a flattened 1x1, a run of pixels) of one image. */
typedef struct crow {
    const float *x;     /* the image's first input block plane */
    int64_t xplane;     /* floats per input block plane: h * w * cb */
    int64_t xrow;       /* floats per input row: w * cb */
    int64_t icb, kh, kw, sw, dh, dw;
    int64_t ibatch;     /* input blocks per pass of a wide 1x1 (pw rows) */
    int64_t nb;         /* output blocks the wide kernels store (1..4) */
    int pf_next;        /* wide 1x1: prefetch the next tile's input */
    int64_t iy0;        /* input row of tap ky = 0 */
    int64_t ky0, ky1;   /* taps whose input row is inside the image */
    const float *w;     /* packed weights of the tile's first output block */
    int64_t wob;        /* floats per output block of packed weights */
    const float *bias;  /* at the tile's first output block */
    const float *res;   /* residual at (first block, this row's pixel 0), or NULL */
    float *y;           /* output at (first block, this row's pixel 0) */
    int64_t yplane;     /* floats per output block plane: oh * ow * 8 */
    const cnn_epilogue *ep;
    const char *pf;     /* weights the next output block pair will read, or NULL */
    int64_t pf_bytes;
} crow;

/* Pixels [x0, x1) of a row: the general kind also gets the interior
 * columns [in_lo, in_hi), the left padding and the input width. */
typedef void (*cnn_row_fn)(const crow *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
typedef void (*cnn_pw_fn)(const crow *, int64_t, int64_t);
typedef void (*cnn_span_fn)(const crow *, int64_t, int64_t, int64_t);

/* A tile of a padded small plane (the driver's tile lists): up to 12
 * output pixels anywhere in the plane that share the taps [ky0, ky1) x
 * [kx0, kx1) not wholly in the padding, the others skipped. */
typedef struct cnn_ptile {
    int32_t n, ky0, ky1, kx0, kx1;
    int32_t xo[12];     /* input offset of pixel P's tap (0, 0) in a block plane */
    int32_t q[12];      /* pixel P's index in the output plane */
} cnn_ptile;
typedef void (*cnn_tiles_fn)(const crow *, const cnn_ptile *, int64_t);

/* Row kernel kinds (pick_rows): blocked (C8) or NCHW (C1) input, with the
 * kernel size and stride fixed at compile time where named. */
enum { CNN_ROW_C8, CNN_ROW_C1, CNN_ROW_C8_K1S2, CNN_ROW_C8_K3S1, CNN_ROW_C8_K3S2,
       CNN_ROW_C1_S2, CNN_ROW_C1_K3S2, CNN_ROW_KINDS };

/* An ISA's row kernels, indexed by the output blocks a call covers, less
 * one (the AVX2 table: 1 or 2 blocks, a pair; AVX-512: up to 4, two
 * pairs). A NULL entry: the ISA has no kernel for that many blocks, and
 * the driver falls back to the AVX2 pairs. */
typedef struct cnn_nchwc_rows {
    cnn_row_fn row[CNN_ROW_KINDS][4];
    cnn_pw_fn pw[4];            /* 1x1 stride 1 over the flattened image */
    cnn_span_fn span[2][4];     /* [stride 2][blocks - 1]: small 3x3 planes */
    cnn_tiles_fn tiles[4];      /* tile lists of padded small planes, or NULL */
} cnn_nchwc_rows;

/* A zero-padded copy of x (planes of cb-lane pixels, p's geometry), or
 * NULL: no padding, or no memory (the kernels then clip border taps). */
float *cnn_nchwc_padded_input(const cnn_conv2d_params *p, const float *x, int64_t planes,
                              int64_t cb, int threads);
/* The pixels a strided 1x1 without padding reads, (planes, oh, ow, 8), or NULL. */
float *cnn_nchwc_subsampled_input(const cnn_conv2d_params *p, const float *x, int64_t planes,
                                  int threads);
/* Taps [k0, k1) of k, dilation d, whose input i0 + k * d lies in [0, n). */
void cnn_nchwc_tap_range(int64_t i0, int64_t k, int64_t d, int64_t n, int32_t *k0, int32_t *k1);

/* What a conv applies to its input per channel as it reads it: x * scale
 * (a squeeze-excitation gate, per image), or act(x * scale + shift) (a
 * BatchNormalization and activation before a flat 1x1, one for all images). */
typedef struct cnn_nchwc_gate {
    const float *scale;      /* blocked (icb * 8) floats per image */
    int64_t stride;          /* floats from one image's scale to the next's: 0 shares one */
    const float *shift;      /* NULL: a gate, which may scale the weights instead */
    cnn_epilogue act;        /* after the shift */
    cnn_nchwc_affine_span_fn affine;   /* the level's, for a shift */
} cnn_nchwc_gate;

/* The blocked convolution (not depthwise, not Winograd) of pk: pairs' row
 * kernels, wide's (NULL: none) where they cover more blocks; act the
 * exp-based activations the tiles leave to a pass over each stored row.
 * gate: NULL, or the conv of the gated input (groups 1, blocked input,
 * pk's own layout; with a shift a flat 1x1 only). */
cnn_status cnn_nchwc_conv_drive(const struct cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                const float *residual, float *y, int threads,
                                const cnn_nchwc_rows *pairs, const cnn_nchwc_rows *wide,
                                cnn_act_row_fn act, const cnn_nchwc_gate *gate);

/* The activations applied in registers as a tile is stored: short enough
 * to inline in every tile variant. The others (exp-based: sigmoid, SiLU,
 * tanh, ELU, GELU) would be calls, and a call clobbers every vector
 * register, so inside a tile's epilogue it spilled and reloaded the tile's
 * other accumulators around each vector (40->240 @28x28 1x1 + SiLU: SiLU
 * cost 0.69 ns per output, 0.30 in a separate pass). They run instead over
 * each stored row, while it is in L1/L2, by the activation pass's own
 * loop (cnn_nchwc_act_row). */
static inline int cnn_act_in_tile(int act)
{
    return act == CNN_ACT_NONE || act == CNN_ACT_RELU || act == CNN_ACT_CLIP ||
           act == CNN_ACT_LEAKY || act == CNN_ACT_HARDSWISH || act == CNN_ACT_HARDSIGMOID;
}

#endif
