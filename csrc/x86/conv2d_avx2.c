#pragma GCC target("avx2,fma")
/* conv2d on AVX2: every non-depthwise convolution is one packed GEMM per
 * (image, group), all run in one OpenMP region by the GEMM engine:
 *     Y_g (K/g, OH*OW) = W_g (K/g, C/g*kh*kw) x Col_g (C/g*kh*kw, OH*OW)
 * 1x1/stride 1/no padding: Col_g is X_g itself (C/g, H*W), no copy.
 * Otherwise im2col is fused into the B packing: pack_b_im2col writes the
 * KC x 16 panels straight from the input, so the only workspace is the
 * engine's per-thread pack buffers (bounded, allocated once per call).
 * Bias, residual and activation are applied as each output tile is stored.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/conv2d.h"
#include "../ops/gemm.h"

/* Rows [k0, k0+kc) (c, ky, kx) x output positions [n0, n0+nc) of the im2col
 * matrix of one (image, group): job->b is that group's first input plane.
 * A panel's 16 columns split into runs along output rows; each run of each
 * row of the panel is one masked load (stride 1) or masked gather (stride
 * > 1) whose mask drops the padding, so a 16-float panel row costs a few
 * vector instructions and padding never reads memory. */
static void pack_b_im2col(const cnn_gemm_job *j, int64_t k0, int64_t kc, int64_t n0,
                          int64_t nc, float *dst)
{
    const cnn_conv2d_params *p = (const cnn_conv2d_params *)j->ctx;
    const int64_t H = p->h, W = p->w, OW = p->ow, hw = p->h * p->w, sw = p->sw;
    const __m256i lane0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lane1 = _mm256_add_epi32(lane0, _mm256_set1_epi32(8));
    const __m256i gidx = _mm256_mullo_epi32(lane0, _mm256_set1_epi32((int)sw));
    const __m256i gidx8 = _mm256_add_epi32(gidx, _mm256_set1_epi32((int)(8 * sw)));
    for (int64_t jr = 0; jr < nc; jr += CNN_GEMM_NR) {
        const int64_t nr = nc - jr < CNN_GEMM_NR ? nc - jr : CNN_GEMM_NR;
        int64_t st[CNN_GEMM_NR], sl[CNN_GEMM_NR], sy[CNN_GEMM_NR], sx[CNN_GEMM_NR];
        int ns = 0;
        for (int64_t t = 0, col = n0 + jr; t < nr; ns++) {
            const int64_t oy = col / OW, ox = col % OW;
            const int64_t len = nr - t < OW - ox ? nr - t : OW - ox;
            st[ns] = t;
            sl[ns] = len;
            sy[ns] = oy * p->sh - p->pt;
            sx[ns] = ox * sw - p->pl;
            t += len;
            col += len;
        }
        float *d = dst + jr * kc;
        int64_t ci = k0 / (p->kh * p->kw), r = k0 % (p->kh * p->kw);
        int64_t ky = r / p->kw, kx = r % p->kw;
        for (int64_t q = 0; q < kc; q++, d += CNN_GEMM_NR) {
            const float *xp = j->b + ci * hw;
            __m256 v0 = _mm256_setzero_ps(), v1 = _mm256_setzero_ps();
            for (int s = 0; s < ns; s++) {
                const int64_t iy = sy[s] + ky * p->dh;
                if (iy < 0 || iy >= H)
                    continue;
                const int64_t len = sl[s], ix0 = sx[s] + kx * p->dw;
                /* in-bounds u in [lo, hi): 0 <= ix0 + u*sw < W */
                int64_t lo = ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw;
                int64_t hi = ix0 >= W ? 0 : (W - 1 - ix0) / sw + 1;
                if (hi > len) hi = len;
                if (hi <= lo)
                    continue;
                const __m256i a = _mm256_set1_epi32((int)(st[s] + lo - 1));
                const __m256i b = _mm256_set1_epi32((int)(st[s] + hi));
                const __m256i m0 = _mm256_and_si256(_mm256_cmpgt_epi32(lane0, a),
                                                    _mm256_cmpgt_epi32(b, lane0));
                const __m256i m1 = _mm256_and_si256(_mm256_cmpgt_epi32(lane1, a),
                                                    _mm256_cmpgt_epi32(b, lane1));
                /* lane L reads xp[iy*W + ix0 + (L - st)*sw]; masked lanes don't. */
                const float *base = xp + iy * W + ix0 - st[s] * sw;
                /* the same input row 4 panels on: a cold input (the stem's,
                 * evicted by the rest of the network) otherwise costs a
                 * miss per row per panel, as the prefetchers don't follow
                 * these many slow streams (stem, cold: 0.87 -> 0.68 ms) */
                if (kx == 0)
                    for (int64_t f = 0; f < CNN_GEMM_NR * sw; f += 16)
                        _mm_prefetch((const char *)(base + (st[s] + 4 * CNN_GEMM_NR) * sw + f),
                                     _MM_HINT_T0);
                if (sw == 1) {
                    v0 = _mm256_or_ps(v0, _mm256_maskload_ps(base, m0));
                    v1 = _mm256_or_ps(v1, _mm256_maskload_ps(base + 8, m1));
                } else if (sw == 2) {
                    /* Stride 2 (stems, downsampling 3x3): lanes [A, B) need
                     * source elements 2A, 2A+2, ..., 2B-2 of base; load the
                     * contiguous elements [2A, 2B-1) with four masked loads
                     * (nothing outside is read) and keep the even ones with
                     * a shuffle + permute (the de-interleave of
                     * depthwise_avx2.c's load_strided); cheaper than two
                     * 8-lane gathers on Zen. */
                    const __m256i ea = _mm256_set1_epi32((int)(2 * (st[s] + lo) - 1));
                    const __m256i eb = _mm256_set1_epi32((int)(2 * (st[s] + hi) - 1));
                    __m256 q[4];
                    for (int h = 0; h < 4; h++) {
                        const __m256i e = _mm256_add_epi32(lane0, _mm256_set1_epi32(8 * h));
                        const __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(e, ea),
                                                           _mm256_cmpgt_epi32(eb, e));
                        q[h] = _mm256_maskload_ps(base + 8 * h, m);
                    }
                    __m256 e0 = _mm256_shuffle_ps(q[0], q[1], _MM_SHUFFLE(2, 0, 2, 0));
                    __m256 e1 = _mm256_shuffle_ps(q[2], q[3], _MM_SHUFFLE(2, 0, 2, 0));
                    v0 = _mm256_or_ps(v0, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                              _mm256_castps_pd(e0), _MM_SHUFFLE(3, 1, 2, 0))));
                    v1 = _mm256_or_ps(v1, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                              _mm256_castps_pd(e1), _MM_SHUFFLE(3, 1, 2, 0))));
                } else {
                    v0 = _mm256_or_ps(v0, _mm256_mask_i32gather_ps(
                                              _mm256_setzero_ps(), base, gidx,
                                              _mm256_castsi256_ps(m0), 4));
                    v1 = _mm256_or_ps(v1, _mm256_mask_i32gather_ps(
                                              _mm256_setzero_ps(), base, gidx8,
                                              _mm256_castsi256_ps(m1), 4));
                }
            }
            _mm256_store_ps(d, v0);
            _mm256_store_ps(d + 8, v1);
            if (++kx == p->kw) {
                kx = 0;
                if (++ky == p->kh) {
                    ky = 0;
                    ci++;
                }
            }
        }
    }
}

cnn_status cnn_conv2d_f32_avx2(const cnn_conv2d_params *p, const float *x, const float *w,
                               const float *bias, const float *residual, float *y,
                               int threads)
{
    if (p->sw > ((int64_t)1 << 26))  /* keep 16 * stride in gather indices */
        return cnn_conv2d_f32_ref(p, x, w, bias, residual, y, threads);
    if (p->groups == p->c && p->k == p->c)
        return cnn_conv2d_depthwise_f32_avx2(p, x, w, bias, residual, y, threads);
    return cnn_conv2d_gemm_f32_avx2(p, x, w, NULL, 0, bias, residual, y, threads);
}

cnn_status cnn_conv2d_gemm_f32_avx2(const cnn_conv2d_params *p, const float *x,
                                    const float *w, const float *w_packed,
                                    int64_t packed_group_floats, const float *bias,
                                    const float *residual, float *y, int threads)
{
    const int64_t g = p->groups, cg = p->c / g, kg = p->k / g;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, kdim = cg * p->kh * p->kw;
    const int direct = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
                       p->pt == 0 && p->pl == 0 && p->pb == 0 && p->pr == 0;
    int64_t njobs;
    if (!cnn_mul_ok(p->n, g, &njobs))
        return CNN_ERR_SHAPE;
    cnn_gemm_job *jobs = (cnn_gemm_job *)malloc((size_t)njobs * sizeof(cnn_gemm_job));
    if (!jobs)
        return CNN_ERR_OOM;
    for (int64_t img = 0; img < p->n; img++) {
        for (int64_t gi = 0; gi < g; gi++) {
            cnn_gemm_job *j = &jobs[img * g + gi];
            *j = cnn_gemm_job_plain();
            j->m = kg;
            j->n = ohw;
            j->k = kdim;
            j->a = w ? w + gi * kg * kdim : NULL;
            j->lda = kdim;
            j->a_packed = w_packed ? w_packed + gi * packed_group_floats : NULL;
            j->b = x + (img * p->c + gi * cg) * hw;
            j->ldb = hw;
            if (!direct) {
                j->pack_b = pack_b_im2col;
                j->ctx = p;
            }
            j->c = y + (img * p->k + gi * kg) * ohw;
            j->ldc = ohw;
            j->bias_row = bias ? bias + gi * kg : NULL;
            j->residual = residual ? residual + (img * p->k + gi * kg) * ohw : NULL;
            j->ldr = ohw;
            j->ep = p->ep;
        }
    }
    cnn_status st = cnn_gemm_jobs_f32_avx2(jobs, njobs, threads);
    free(jobs);
    return st;
}
#endif
