/* Winograd F(4x4, 3x3) convolution for 3x3, stride 1, dilation 1, groups 1
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016;
 * interpolation points 0, +-1, +-2 and infinity).
 *
 * Per 6x6 input tile d (stride 4) of one channel and 3x3 filter g:
 *     U = G g G^T (6x6, once at pack time), V = B^T d B (6x6),
 *     M[xi] = sum_c U[xi][k][c] V[xi][c][tile]   (36 batched GEMMs),
 *     Y = A^T M A (4x4 outputs), then bias + residual + activation.
 * The output is cut in ceil(OH/4) x ceil(OW/4) tiles; tiles past the right or
 * bottom edge read zero padding and store only their valid outputs.
 *
 * Packed filter layout (shared by the scalar and AVX2 paths): for each xi in
 * 0..35 (xi = 6*row + col of the 6x6 transform), ceil(K/6) panels of C x 6
 * floats: packed[((xi * ceil(K/6) + k/6) * C + c) * 6 + k%6] = U[xi][k][c],
 * zero for k >= K (the 6-row broadcast operand of the 6x16 micro-kernel).
 *
 * Private to the conv2d family: the prepacked conv dispatch (conv2d_packed.c)
 * calls these; cnnengine/_k_winograd.pxi binds them for tests/benchmarks.
 */
#ifndef CNN_OPS_WINOGRAD_H
#define CNN_OPS_WINOGRAD_H

#include "internal.h"

#define CNN_WINO_MR 6   /* output channels per packed filter panel */

/* True when *p is a 3x3/s1/d1/g1 convolution on which Winograd beats the
 * im2col GEMM path on this machine (AVX2 active; thresholds measured, see
 * benchmarks/bench_winograd.py). cnn_winograd_run_f32 serves any 3x3/s1/d1/g1
 * shape; this only says whether it should be chosen. */
int cnn_winograd_eligible(const cnn_conv2d_params *p);

/* Transform w (K,C,3,3) once: *packed (cnn_free_packed it) holds 36 * 6*ceil(K/6) * C
 * floats (*packed_floats) in the layout above. Only p->k, p->c (and the
 * 3x3/s1/d1/g1 form) are used. */
cnn_status cnn_winograd_pack_f32(const cnn_conv2d_params *p, const float *w,
                                 float **packed, size_t *packed_floats);

/* y = act(conv(x, w) + bias + residual) with the packed filter of the same
 * K and C; any n, h, w and padding (asymmetric included). bias (K) and
 * residual (N,K,OH,OW) may be NULL. Runs the platform table's kernel. */
cnn_status cnn_winograd_run_f32(const cnn_conv2d_params *p, const float *packed,
                                const float *x, const float *bias,
                                const float *residual, float *y, int threads);

/* Paths behind cnn_winograd_run_f32 (arguments validated, threads >= 1). */
cnn_status cnn_winograd_run_f32_ref(const cnn_conv2d_params *p, const float *packed,
                                    const float *x, const float *bias,
                                    const float *residual, float *y, int threads);
#if defined(__x86_64__)
cnn_status cnn_winograd_run_f32_avx2(const cnn_conv2d_params *p, const float *packed,
                                     const float *x, const float *bias,
                                     const float *residual, float *y, int threads);
#endif

/* U of a panel of output channels (csrc/ops/winograd_filter.h): the
 * scalar oracle (filter_tile per lane) and the vectorised variants. */
void cnn_wino_filter_ref(const float *w, int64_t C, int64_t nl, int64_t width, float *dst,
                         int64_t xs);
void cnn_wino_filter_avx2(const float *w, int64_t C, int64_t nl, int64_t width, float *dst,
                          int64_t xs);
void cnn_wino_filter_avx512(const float *w, int64_t C, int64_t nl, int64_t width, float *dst,
                            int64_t xs);

/* The arguments a Winograd packer takes: a dense 3x3, stride 1, no
 * dilation, at least one channel each way (F(4x4) and F(2x2) alike). */
static inline cnn_status cnn_wino_args(const cnn_conv2d_params *p, const float *w, float **packed)
{
    if (!p || !w || !packed)
        return CNN_ERR_ARG;
    if (p->kh != 3 || p->kw != 3 || p->sh != 1 || p->sw != 1 || p->dh != 1 || p->dw != 1 ||
        p->groups != 1)
        return CNN_ERR_UNSUPPORTED;
    if (p->k < 1 || p->c < 1)
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

/* The blocked-layout (NCHW8c) variant, for cnn_conv2d_nchwc: U packed as,
 * for each xi, panels of 16 output channels (8 for an odd last block of 8)
 * of [cp][16]: packed[xi*kp*cp + p0*cp + c*pw + k-p0] = U[xi][k][c] with
 * kp, cp = K, C rounded up to 8, p0 = k/16*16, pw the panel width; zero
 * past K and C. The 16-wide row is the loaded operand of a 6x16 micro-
 * kernel whose broadcast operand is 6 tiles of the transformed input. */
static inline int64_t cnn_wino_nchwc_pad(int64_t c)
{
    return (c + 7) / 8 * 8;
}
cnn_status cnn_winograd_pack_nchwc_f32(const cnn_conv2d_params *p, const float *w,
                                       float **packed);
#if defined(__x86_64__)
/* y (N, kp/8, OH, OW, 8) = act(conv(x (N, cp/8, H, W, 8)) + bias (kp) +
 * residual (as y, or NULL)); p->n images. Arguments already validated. */
cnn_status cnn_winograd_nchwc_run_avx2(const cnn_conv2d_params *p, const float *packed,
                                       const float *x, const float *bias,
                                       const float *residual, float *y, int threads);
cnn_status cnn_winograd_nchwc_run_avx512(const cnn_conv2d_params *p, const float *packed,
                                         const float *x, const float *bias,
                                         const float *residual, float *y, int threads);

cnn_status cnn_winograd2_nchwc_run_avx2(const cnn_conv2d_params *p, const float *packed,
                                        const float *x, const float *bias,
                                        const float *residual, float *y, int threads);
cnn_status cnn_winograd2_nchwc_run_avx512(const cnn_conv2d_params *p, const float *packed,
                                          const float *x, const float *bias,
                                          const float *residual, float *y, int threads);

/* The GEMM stage of one task of the blocked Winograd driver: for each of
 * the nxi (36 or 16) xi, M[xi] rows [l0, l1) - l0, columns [k0, k1) - k0 (ldm apart,
 * mstride per xi) = V[xi] rows [l0, l1) (ldv apart, vstride per xi, cp
 * channels) x U[xi] (packed, kp x cp); k0 a multiple of 16. Rows past
 * l1 are neither read nor written. */
typedef void (*cnn_wino_gemm_fn)(int nxi, const float *V, int64_t vstride, int64_t ldv,
                                 const float *U, int64_t kp, int64_t cp, float *M,
                                 int64_t mstride, int64_t ldm, int64_t l0, int64_t l1,
                                 int64_t k0, int64_t k1);
/* The blocked Winograd driver (csrc/x86/winograd_nchwc_avx2.c): transforms
 * and work split, with the ISA's GEMM stage; align is its micro-kernel's
 * rows, pstep its columns / 16; m the output tile: 4 for F(4x4, 3x3), 2
 * for F(2x2, 3x3). */
cnn_status cnn_winograd_nchwc_drive(const cnn_conv2d_params *p, const float *packed,
                                    const float *x, const float *bias, const float *residual,
                                    float *y, int threads, cnn_wino_gemm_fn gemm, int align,
                                    int pstep, int m);
#endif

/* Winograd F(2x2, 3x3) on the blocked layout (csrc/ops/winograd2.c), for
 * small maps with many channels where F(4x4, 3x3) has too few tiles to
 * amortise streaming its 36-position U (ResNet layer4's 512->512 @7x7):
 * 4x4 input tiles at stride 2, 16 positions, with (points 0, +-1, inf)
 *   B^T = [1  0 -1  0]   G = [  1    0    0]   A^T = [1 1  1  0]
 *         [0  1  1  0]       [1/2  1/2  1/2]         [0 1 -1 -1]
 *         [0 -1  1  0]       [1/2 -1/2  1/2]
 *         [0  1  0 -1]       [  0    0    1]
 * U packed as the F(4x4) blocked layout with 16 xi in place of 36:
 * packed[xi*kp*cp + p0*cp + c*pw + k-p0]. Runs take the F(4x4) blocked
 * runs' arguments. */
cnn_status cnn_winograd2_pack_nchwc_f32(const cnn_conv2d_params *p, const float *w,
                                        float **packed);
/* The scalar oracle of the blocked F(2x2, 3x3) runs: tile by tile, every
 * lane of the kp output channels (zeros past K take bias, residual and the
 * activation as the SIMD runs do). */
cnn_status cnn_winograd2_nchwc_run_ref(const cnn_conv2d_params *p, const float *packed,
                                       const float *x, const float *bias,
                                       const float *residual, float *y, int threads);

/* Rows of the packed filter: 6 * ceil(K/6). */
static inline int64_t cnn_wino_kpad(int64_t k)
{
    return (k + CNN_WINO_MR - 1) / CNN_WINO_MR * CNN_WINO_MR;
}

#endif
