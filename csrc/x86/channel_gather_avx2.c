/* Blocked channel gather for AVX2 (semantics and checks: csrc/ops/
 * channel_gather.c). Per output block: a straight copy of the block plane
 * when its lanes are one input block in order (a block-aligned Slice or
 * Concat part), else per pixel a permute and blend of each source block
 * that feeds it (ShuffleNet's shuffle: two or three). */
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include <string.h>

#include "internal.h"
#include "../ops/nchwc.h"
#include "pool.h"

#define B CNN_NCHWC

typedef struct gather_job {
    int64_t hw, c_out, obs, chunk, chunks;
    const float *const *xs;
    const int64_t *cs, *src_ch;
    const int32_t *src_in;
    float *y;
} gather_job;

/* Unit u: image, output block, pixel chunk. */
static void gather_unit(void *ctx, int64_t u, int slot)
{
    (void)slot;
    const gather_job *jb = (const gather_job *)ctx;
    const int64_t hw = jb->hw, c_out = jb->c_out, obs = jb->obs, chunk = jb->chunk,
                  chunks = jb->chunks;
    const float *const *xs = jb->xs;
    const int64_t *cs = jb->cs, *src_ch = jb->src_ch;
    const int32_t *src_in = jb->src_in;
    float *y = jb->y;
    const int64_t img = u / (obs * chunks), ob = u / chunks % obs;
    const int64_t p0 = u % chunks * chunk, p1 = p0 + chunk < hw ? p0 + chunk : hw;
    float *d = y + ((img * obs + ob) * hw) * B;
    /* one input block in lane order: copy */
    const int64_t j0 = ob * B;
    int whole = src_ch[j0] % B == 0;
    for (int64_t l = 1; whole && l < B && j0 + l < c_out; l++)
        whole = src_in[j0 + l] == src_in[j0] && src_ch[j0 + l] == src_ch[j0] + l;
    if (whole && j0 + B <= c_out) {
        const int i = src_in[j0];
        const float *s = xs[i] + ((img * cnn_nchwc_blocks(cs[i]) + src_ch[j0] / B) * hw) * B;
        memcpy(d + p0 * B, s + p0 * B, (size_t)((p1 - p0) * B) * sizeof(float));
        return;
    }
    /* Else per source block that feeds this one: its vector, its lanes
     * permuted into place, blended in (a load, a vpermps and a blend per
     * source; vgatherdps ran at about 14 cycles). Lanes past c_out stay
     * zero: no source's mask selects them. */
    const float *src[B];
    int32_t perm[B][B] = {{0}}, mask[B][B] = {{0}};
    int nsrc = 0;
    for (int64_t l = 0; l < B && j0 + l < c_out; l++) {
        const int i = src_in[j0 + l];
        const int64_t c = src_ch[j0 + l];
        const float *plane = xs[i] + ((img * cnn_nchwc_blocks(cs[i]) + c / B) * hw) * B;
        int k = 0;
        while (k < nsrc && src[k] != plane) k++;
        if (k == nsrc)
            src[nsrc++] = plane;
        perm[k][l] = (int32_t)(c % B);
        mask[k][l] = -1;
    }
    __m256i pv[B];
    __m256 mv[B];
    for (int k = 0; k < nsrc; k++) {
        pv[k] = _mm256_loadu_si256((const __m256i *)perm[k]);
        mv[k] = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)mask[k]));
    }
    for (int64_t p = p0; p < p1; p++) {
        __m256 v = _mm256_setzero_ps();
        for (int k = 0; k < nsrc; k++)
            v = _mm256_blendv_ps(v, _mm256_permutevar8x32_ps(_mm256_loadu_ps(src[k] + p * B), pv[k]),
                                 mv[k]);
        _mm256_storeu_ps(d + p * B, v);
    }
}

void cnn_nchwc_gather_avx2(int64_t n, int64_t hw, int count, const float *const *xs,
                                 const int64_t *cs, int64_t c_out, const int32_t *src_in,
                                 const int64_t *src_ch, float *y, int threads)
{
    (void)count;
    const int64_t obs = cnn_nchwc_blocks(c_out);
    /* units of about 4096 floats of output (a 16 KiB run of one block) */
    const int64_t chunk = hw < 512 ? hw : 512;
    const int64_t chunks = (hw + chunk - 1) / chunk, units = n * obs * chunks;
    gather_job jb = {hw, c_out, obs, chunk, chunks, xs, cs, src_ch, src_in, y};
    cnn_pool_for(threads, units, NULL, cnn_threads_steal(), gather_unit, &jb);
}
