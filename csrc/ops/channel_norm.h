/* Layer normalisation across the channels of each pixel: the driver
 * (csrc/ops/channel_norm.c) and its per-ISA pixel-range kernels. */
#ifndef CNN_CHANNEL_NORM_H
#define CNN_CHANNEL_NORM_H

#include "internal.h"

/* Pixels [p0, p1) of one image: x, y (C, HW) plain or (ceil(C/8), HW, 8)
 * blocked; gamma, beta C floats (plain) or ceil(C/8)*8 (blocked, zero past
 * C: padding lanes become 0). */
void cnn_channel_norm_plain_ref(int64_t c, int64_t hw, int64_t p0, int64_t p1, const float *x,
                                const float *gamma, const float *beta, float eps, float *y);
void cnn_channel_norm_nchwc_ref(int64_t c, int64_t hw, int64_t p0, int64_t p1, const float *x,
                                const float *gamma, const float *beta, float eps, float *y);
#if defined(__x86_64__)
void cnn_channel_norm_nchwc_avx2(int64_t c, int64_t hw, int64_t p0, int64_t p1, const float *x,
                                 const float *gamma, const float *beta, float eps, float *y);
#endif

#endif
