/* Private side of the blocked-layout (NCHW8c) kernels: csrc/ops/nchwc.c
 * (validation, packing, portable reorders) <-> csrc/x86/nchwc_avx2.c and
 * nchwc_avx512.c. */
#ifndef CNN_OPS_NCHWC_H
#define CNN_OPS_NCHWC_H

#include "internal.h"

/* Blocks of 8 channels that hold c channels. */
static inline int64_t cnn_nchwc_blocks(int64_t c) { return (c + CNN_NCHWC - 1) / CNN_NCHWC; }

struct cnn_conv2d_nchwc {
    cnn_conv2d_params p;    /* n is ignored: runs take any batch */
    int in_nchw;            /* input plain NCHW (cb = 1) instead of blocked */
    int depthwise;          /* groups == c == k */
    int64_t cb;             /* input channels per input block: 8 or 1 */
    int64_t icb;            /* input blocks per conv group: ceil(c/groups / cb) (depthwise: ocb) */
    int64_t ocb;            /* output blocks: ceil(k / 8) */
    float *w;               /* [ocb][icb][kh][kw][cb][8]; depthwise [ocb][kh][kw][8];
                             * wpair: [ocb/2][icb][kh][kw][cb][16] */
    int wpair;              /* packed for the AVX-512 tiles: each pair of output blocks
                             * (2j, 2j + 1) interleaved per input channel and tap, 16
                             * floats one zmm load (cnn_nchwc_w_at) */
    float *bias;            /* [ocb * 8], zero past k */
    float *wino;            /* Winograd U (cnn_winograd_pack_nchwc_f32) or NULL: w unused */
    int wino_m;             /* its output tile: 4 F(4x4, 3x3), 2 F(2x2, 3x3) */
    int gi;                 /* 2, 4, 8, 16: groups of gi channels each way, lanes / gi of them
                             * interleaved per vector (csrc/ops/nchwc_grouped.c); 24 to 64
                             * (whole blocks, Winograd only): one group a set; w
                             * [set][tap][gi][lanes], bias [set][lanes] in lane order; 0: no */
    int gwino;              /* gi 4 or more, 3x3 unstrided: w also holds, after the
                             * direct pack, Winograd F(2x2, 3x3) U [set][16 pos][gi][lanes]
                             * for the AVX-512 run (cnn_nchwc_grouped_wino_avx512) */
};

/* Lanes per set of a small-group pack: a group of 8 alone in a ymm,
 * groups of 4 or 2 interleaved in a zmm, a group of 16 alone in one, a
 * wider group alone in a set of its own width. */
static inline int64_t cnn_nchwc_grouped_lanes(int gi) { return gi == 8 ? 8 : gi > 16 ? gi : 16; }

/* The offset in pk->w of the 8 weights of output block ob for input
 * block ib, tap r, input channel ci of the block. */
static inline int64_t cnn_nchwc_w_at(const struct cnn_conv2d_nchwc *pk, int64_t ob, int64_t ib,
                                     int64_t r, int64_t ci)
{
    const int64_t at = ((ib * pk->p.kh * pk->p.kw + r) * pk->cb + ci) * CNN_NCHWC;
    if (pk->wpair)
        return ob / 2 * 2 * pk->icb * pk->p.kh * pk->p.kw * pk->cb * CNN_NCHWC + 2 * at +
               ob % 2 * CNN_NCHWC;
    return ob * pk->icb * pk->p.kh * pk->p.kw * pk->cb * CNN_NCHWC + at;
}

/* Floats in pk->w (not depthwise, not Winograd): a wpair pack has an even
 * block count, the last pair's second block zero where ocb is odd. */
static inline int64_t cnn_nchwc_w_count(const struct cnn_conv2d_nchwc *pk)
{
    const int64_t ocb = pk->wpair ? (pk->ocb + 1) / 2 * 2 : pk->ocb;
    return ocb * pk->icb * pk->p.kh * pk->p.kw * pk->cb * CNN_NCHWC;
}

/* Slabs [sl0, sl1) (block pairs of a wpair pack, else blocks) of pk->w
 * with input channel c scaled by s[c], into the same places of w. */
void cnn_nchwc_scale_slabs(const struct cnn_conv2d_nchwc *pk, const float *s, float *w,
                           int64_t sl0, int64_t sl1);

/* The portable reorders and channel gather (the scalar table's entries;
 * arguments validated by their cnn_*_f32 callers). */
void cnn_nchw_to_nchwc_ref(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                           int threads);
void cnn_nchwc_to_nchw_ref(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                           int threads);
void cnn_nchwc_gather_ref(int64_t n, int64_t hw, int count, const float *const *xs,
                          const int64_t *cs, int64_t c_out, const int32_t *src_in,
                          const int64_t *src_ch, float *y, int threads);

/* Interleaved small-group packs (csrc/ops/nchwc_grouped.c): the group
 * width such a pack takes for p under plat (0: none), the packing, and the
 * portable run (the oracle of the SIMD ones, and the fallback where the
 * active table has none). */
int cnn_nchwc_grouped_width(const cnn_conv2d_params *p, const cnn_platform *plat);
cnn_status cnn_nchwc_grouped_pack(struct cnn_conv2d_nchwc *pk, const float *w, const float *bias);
cnn_status cnn_nchwc_grouped_ref(const struct cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                 const float *residual, float *y, float *pool, int threads);

#if defined(__x86_64__)
/* pk->gwino packs (csrc/x86/nchwc_grouped_wino_avx512.c), act NONE or
 * RELU (cnn_nchwc_grouped_avx512 takes the others); pool as there */
cnn_status cnn_nchwc_grouped_wino_avx512(const struct cnn_conv2d_nchwc *pk, int64_t n,
                                         const float *x, const float *residual, float *y,
                                         float *pool, int threads);
cnn_status cnn_nchwc_grouped_avx512(const struct cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                    const float *residual, float *y, float *pool, int threads);
/* Depthwise packs; pool: see cnn_conv2d_nchwc_run_pooled_f32, or NULL.
 * AVX-512: block pairs for 3x3/5x5 at stride 1 or 2, AVX2 rows else. */
cnn_status cnn_conv2d_nchwc_dw_avx2(const struct cnn_conv2d_nchwc *pk, int64_t n,
                                    const float *x, const float *residual, float *y,
                                    float *pool, int threads);
cnn_status cnn_conv2d_nchwc_dw_avx512(const struct cnn_conv2d_nchwc *pk, int64_t n,
                                      const float *x, const float *residual, float *y,
                                      float *pool, int threads);
/* Depthwise output rows [oy0, oy1) of block blk of pk, activation
 * included, at y (rows of ow pixels): xb holds the block's input rows from
 * image row r0 on (those the rows' taps read inside [0, h)), rows of w
 * pixels; sums (8 floats), if not NULL, gain the rows' lane sums. The
 * streamed inverted-residual block's depthwise (csrc/ops/nchwc_block.c). */
void cnn_nchwc_dw_rows_avx2(const struct cnn_conv2d_nchwc *pk, int64_t blk, const float *xb,
                            int64_t r0, int64_t oy0, int64_t oy1, float *y, float *sums);
/* The same for nb (1 or 2) blocks from blk on as a block pair: their
 * input rows xplane floats apart, their output rows yplane apart; sums
 * 8 * nb floats. Shapes the pair kernel does not take: each block's AVX2 rows. */
void cnn_nchwc_dw_rows_avx512(const struct cnn_conv2d_nchwc *pk, int64_t blk, int nb,
                              const float *xb, int64_t xplane, int64_t r0, int64_t oy0,
                              int64_t oy1, float *y, int64_t yplane, float *sums);
/* The row kernels of the other convolutions (csrc/ops/nchwc_rows.h):
 * output block pairs in ymm, and up to two pairs in zmm. */
extern const struct cnn_nchwc_rows cnn_nchwc_pair_rows_avx2;
extern const struct cnn_nchwc_rows cnn_nchwc_wide_rows_avx512;
void cnn_nchw_to_nchwc_avx2(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                            int threads);
void cnn_nchwc_to_nchw_avx2(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                            int threads);
void cnn_nchwc_scale_avx2(int64_t n, int64_t c, int64_t hw, const float *x, const float *s,
                          float *y, int threads);
void cnn_nchwc_affine_avx2(int64_t n, int64_t c, int64_t hw, const float *x, const float *scale,
                           const float *shift, const cnn_epilogue *ep, float *y, int threads);
void cnn_nchwc_affine_span_avx2(const float *x, int64_t stride, int64_t blocks, int64_t px,
                                const float *scale, const float *shift, const cnn_epilogue *ep,
                                float *y);
void cnn_pool2d_nchwc_avx2(const cnn_pool2d_params *p, int is_max, const float *x, float *y,
                           int threads);
void cnn_nchwc_gather_avx2(int64_t n, int64_t hw, int count, const float *const *xs,
                          const int64_t *cs, int64_t c_out, const int32_t *src_in,
                          const int64_t *src_ch, float *y, int threads);
void cnn_global_pool_nchwc_avx2(int64_t n, int64_t c, int64_t hw, int is_max,
                                const float *x, float *y, int threads);
#endif

#endif
