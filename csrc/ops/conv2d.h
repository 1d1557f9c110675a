/* Private prototypes of the conv2d family (csrc/ops/conv2d.c <-> csrc/x86/). */
#ifndef CNN_OPS_CONV2D_H
#define CNN_OPS_CONV2D_H

#include "internal.h"

/* The shape rules of cnn_conv2d_f32 (every dimension >= 1, groups divide c
 * and k, oh/ow consistent, sizes fit int64); CNN_OK or CNN_ERR_*. */
cnn_status cnn_conv2d_check_params(const cnn_conv2d_params *p);

/* The scalar loops of cnn_conv2d_f32_ref on validated arguments, threads >= 1. */
cnn_status cnn_conv2d_direct_f32_ref(const cnn_conv2d_params *p, const float *x, const float *w,
                                     const float *bias, const float *residual, float *y,
                                     int threads);
/* x (N,IN), w (OUT,IN) -> y (N,OUT): the scalar loops, validated arguments. */
cnn_status cnn_linear_f32_ref(int64_t n, int64_t in, int64_t out, const float *x,
                              const float *w, const float *bias, cnn_epilogue ep,
                              float *y, int threads);

#if defined(__x86_64__)
/* Non-depthwise conv as packed GEMMs (one job per image x group). A comes
 * from w, or from w_packed (cnn_gemm_pack_a layout, packed_group_floats per
 * group) when that is not NULL. Validated arguments, sw <= 2^26. */
cnn_status cnn_conv2d_gemm_f32_avx2(const cnn_conv2d_params *p, const float *x,
                                    const float *w, const float *w_packed,
                                    int64_t packed_group_floats, const float *bias,
                                    const float *residual, float *y, int threads);
/* Arguments already validated by cnn_conv2d_f32; threads >= 1. */
cnn_status cnn_conv2d_f32_avx2(const cnn_conv2d_params *p, const float *x, const float *w,
                               const float *bias, const float *residual, float *y,
                               int threads);
/* groups == c == k (channel multiplier 1): direct kernel along output rows. */
cnn_status cnn_conv2d_depthwise_f32_avx2(const cnn_conv2d_params *p, const float *x,
                                         const float *w, const float *bias,
                                         const float *residual, float *y, int threads);
/* x (N,IN), w (OUT,IN) -> y (N,OUT) = act(x w^T + bias); validated. */
cnn_status cnn_linear_f32_avx2(int64_t n, int64_t in, int64_t out, const float *x,
                               const float *w, const float *bias, cnn_epilogue ep,
                               float *y, int threads);
#endif

#endif
