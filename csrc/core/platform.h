/* The platform table: one pointer per per-ISA kernel family, filled once
 * from CPUID (csrc/core/platform.c) and refilled when cnn_set_isa changes
 * the level, as ONNX Runtime MLAS's MLAS_PLATFORM. Drivers in csrc/ops/
 * call through cnn_plat() and never test the ISA; the only ISA tests are in
 * the fill function. A NULL entry: the level has no kernel of that family
 * (the driver then reports CNN_ERR_UNSUPPORTED or takes its portable path).
 */
#ifndef CNN_CORE_PLATFORM_H
#define CNN_CORE_PLATFORM_H

#include "cnnengine.h"

struct cnn_gemm_job;
struct cnn_conv2d_nchwc;
struct cnn_nchwc_rows;

/* y[i] = act(x[i]), i < n; y may equal x. */
typedef void (*cnn_act_row_fn)(const cnn_epilogue *ep, const float *x, float *y, int64_t n);
/* y[i] = x[i] >= 0 ? x[i] : slope * x[i]. */
typedef void (*cnn_prelu_row_fn)(const float *x, float *y, int64_t n, float slope);
/* y[i] = a[i*sa] op b[i*sb], i < n. */
typedef void (*cnn_binary_row_fn)(int op, int64_t n, const float *a, int64_t sa,
                                  const float *b, int64_t sb, float *y);
/* The sum or the max of one plane x[0..hw), hw >= 1. */
typedef float (*cnn_plane_fn)(const float *x, int64_t hw);
/* x (N,C,H,W), w (K,C/g,kh,kw) -> y (N,K,OH,OW); validated, threads >= 1. */
typedef cnn_status (*cnn_conv2d_fn)(const cnn_conv2d_params *p, const float *x, const float *w,
                                    const float *bias, const float *residual, float *y,
                                    int threads);
/* The same with A from w or from w_packed (cnn_gemm_pack_a layout). */
typedef cnn_status (*cnn_conv2d_gemm_fn)(const cnn_conv2d_params *p, const float *x,
                                         const float *w, const float *w_packed,
                                         int64_t packed_group_floats, const float *bias,
                                         const float *residual, float *y, int threads);
/* x (N,IN), w (OUT,IN) -> y (N,OUT) = act(x w^T + bias); validated. */
typedef cnn_status (*cnn_linear_fn)(int64_t n, int64_t in, int64_t out, const float *x,
                                    const float *w, const float *bias, cnn_epilogue ep,
                                    float *y, int threads);
/* x (N,C,H,W) -> y (N,C,OH,OW); validated, threads >= 1. */
typedef cnn_status (*cnn_pool2d_fn)(const cnn_pool2d_params *p, const float *x, float *y,
                                    int threads);
/* The GEMM jobs of csrc/ops/gemm.h with a team of `threads`. */
typedef cnn_status (*cnn_gemm_jobs_fn)(const struct cnn_gemm_job *jobs, int64_t njobs,
                                       int threads);
/* Winograd F(4x4,3x3) (and blocked F(2x2,3x3)) with transformed filters
 * (csrc/ops/winograd.h); the NCHW and the blocked variants share the signature. */
typedef cnn_status (*cnn_winograd_fn)(const cnn_conv2d_params *p, const float *packed,
                                      const float *x, const float *bias,
                                      const float *residual, float *y, int threads);
/* The Winograd filter transform of one panel of nl <= width <= 16 output
 * channels (csrc/ops/winograd_filter.h), once per packing. */
typedef void (*cnn_wino_filter_fn)(const float *w, int64_t C, int64_t nl, int64_t width,
                                   float *dst, int64_t xs);
/* Blocked (NCHW8c) element-wise: reorders, per-channel scale, global pool. */
typedef void (*cnn_nchwc_reorder_fn)(int64_t n, int64_t c, int64_t hw, const float *x,
                                     float *y, int threads);
typedef void (*cnn_nchwc_scale_fn)(int64_t n, int64_t c, int64_t hw, const float *x,
                                   const float *s, float *y, int threads);
typedef void (*cnn_nchwc_affine_fn)(int64_t n, int64_t c, int64_t hw, const float *x,
                                    const float *scale, const float *shift,
                                    const cnn_epilogue *ep, float *y, int threads);
/* The same on px pixels of each of `blocks` block planes stride floats
 * apart, x's and y's alike, on the calling thread (a conv's input chunk). */
typedef void (*cnn_nchwc_affine_span_fn)(const float *x, int64_t stride, int64_t blocks,
                                         int64_t px, const float *scale, const float *shift,
                                         const cnn_epilogue *ep, float *y);
typedef void (*cnn_nchwc_gpool_fn)(int64_t n, int64_t c, int64_t hw, int is_max,
                                   const float *x, float *y, int threads);
typedef void (*cnn_nchwc_pool2d_fn)(const cnn_pool2d_params *p, int is_max, const float *x,
                                    float *y, int threads);
typedef void (*cnn_nchwc_gather_fn)(int64_t n, int64_t hw, int count, const float *const *xs,
                                    const int64_t *cs, int64_t c_out, const int32_t *src_in,
                                    const int64_t *src_ch, float *y, int threads);
/* Layer norm across channels of pixels [p0, p1) of one image (channel_norm.h). */
typedef void (*cnn_channel_norm_fn)(int64_t c, int64_t hw, int64_t p0, int64_t p1, const float *x,
                                    const float *gamma, const float *beta, float eps, float *y);
/* A packed depthwise blocked convolution (pool: its fused plane means, or NULL). */
/* A column block [c0, c1) of the rows product (csrc/ops/rows_gemm.h), one thread. */
typedef void (*cnn_rows_gemm_block_fn)(int64_t m, int64_t c0, int64_t c1, int64_t k, float alpha,
                                       const float *d, int64_t ldd, const int64_t *rows,
                                       const float *w, int64_t ldw, float *y, int64_t ldy);
typedef cnn_status (*cnn_nchwc_conv_fn)(const struct cnn_conv2d_nchwc *pk, int64_t n,
                                        const float *x, const float *residual, float *y,
                                        float *pool, int threads);

/* Depthwise rows of one block from a window of its input rows
 * (cnn_nchwc_dw_rows_avx2, csrc/ops/nchwc.h). */
typedef void (*cnn_nchwc_dw_rows_fn)(const struct cnn_conv2d_nchwc *pk, int64_t blk,
                                     const float *xb, int64_t r0, int64_t oy0, int64_t oy1,
                                     float *y, float *sums);

/* The same for nb (1 or 2) blocks from blk on, their input planes xplane
 * and output planes yplane floats apart (cnn_nchwc_dw_rows_avx512). */
typedef void (*cnn_nchwc_dw_pair_rows_fn)(const struct cnn_conv2d_nchwc *pk, int64_t blk, int nb,
                                          const float *xb, int64_t xplane, int64_t r0, int64_t oy0,
                                          int64_t oy1, float *y, int64_t yplane, float *sums);

typedef struct cnn_platform {
    cnn_isa isa;                        /* the level this table was filled for */
    /* element-wise rows and plane reductions (the scalar bodies are oracles) */
    cnn_act_row_fn act_row;
    cnn_prelu_row_fn prelu_row;
    cnn_binary_row_fn binary_row;
    cnn_plane_fn global_sum, global_max;
    /* plain-layout ops */
    cnn_conv2d_fn conv2d;
    cnn_conv2d_gemm_fn conv2d_gemm;     /* im2col + packed GEMM; NULL: none */
    cnn_conv2d_fn conv2d_depthwise;     /* groups == c == k direct; NULL: none */
    cnn_linear_fn linear;
    cnn_rows_gemm_block_fn rows_gemm_block;
    cnn_pool2d_fn max_pool2d, avg_pool2d;
    cnn_gemm_jobs_fn gemm_jobs;
    int gemm_fast;                      /* the GEMM engine is vectorised, so GEMM-based
                                         * algorithms beat the direct loops */
    cnn_winograd_fn winograd;
    double (*fma_peak_gflops)(int threads);   /* NULL: no FMA */
    /* blocked layout (NCHW8c): reorders and gather everywhere, the rest NULL
     * where the level has no blocked kernels */
    cnn_nchwc_reorder_fn nchw_to_nchwc, nchwc_to_nchw;
    cnn_nchwc_gpool_fn nchwc_global_pool;
    cnn_nchwc_scale_fn nchwc_scale;
    cnn_nchwc_affine_fn nchwc_affine;
    cnn_nchwc_affine_span_fn nchwc_affine_span;
    cnn_nchwc_pool2d_fn nchwc_pool2d;
    cnn_nchwc_gather_fn nchwc_gather;
    cnn_channel_norm_fn nchwc_channel_norm;
    const struct cnn_nchwc_rows *nchwc_pair_rows;  /* row kernels over block pairs */
    const struct cnn_nchwc_rows *nchwc_wide_rows;  /* over up to two pairs, or NULL */
    cnn_nchwc_conv_fn nchwc_depthwise;
    cnn_nchwc_conv_fn nchwc_grouped;    /* groups of 2/4/8 channels interleaved, or NULL */
    cnn_winograd_fn winograd_nchwc;
    cnn_winograd_fn winograd2_nchwc;    /* F(2x2, 3x3) blocked (csrc/ops/winograd2.c) */
    int nchwc_wpair;                    /* pack output block pairs interleaved (the
                                         * wide rows' format, csrc/ops/nchwc.h) */
    cnn_wino_filter_fn winograd_filter;
    cnn_nchwc_dw_rows_fn nchwc_dw_rows;  /* a streamed block's depthwise rows, or NULL */
    cnn_nchwc_dw_pair_rows_fn nchwc_dw_pair_rows;  /* ... of a block pair, or NULL */
} cnn_platform;

/* The table of the active level (detected, or forced by CNNENGINE_ISA or
 * cnn_set_isa). Never NULL. */
const cnn_platform *cnn_plat(void);

#endif
