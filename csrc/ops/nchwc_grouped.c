/* Grouped convolutions with small groups (2, 4 or 8 channels each way,
 * and unstrided 16) in the blocked layout: the packing and the portable run.
 *
 * One group of 8 fills half a zmm, and a group of 4 a quarter: the pair
 * tiles ran them one 8-lane block at a time with a broadcast and an FMA
 * per input channel and pixel (RegNetY's 8-channel groups: 47-70 GFLOP/s
 * on Zen 4, where the 1x1s reach 100-108), and groups of 4 as 8-channel
 * groups with block-diagonal weights (twice the multiplies, 35 GFLOP/s).
 * Here a set of channels shares one vector: a group of 8 a ymm (8 lanes,
 * the FMA's broadcast embedded), G = 16 / gi groups of 4 or 2 a zmm with
 * their lanes interleaved (lane o * G + g holds output o of group g; one
 * broadcast of G floats, input channel ci of each group side by side in
 * a re-laid-out copy of the input, feeds all 16), a group of 16 a zmm.
 *
 * Layout of a pack (pk->gi = gi, lanes = cnn_nchwc_grouped_lanes): sets of
 * lanes / 8 output blocks (a zmm set's second block zero groups where the
 * block count is odd), w [set][tap][ci < gi][lanes], bias [set][lanes].
 * The SIMD run (csrc/x86/nchwc_grouped_avx512.c) copies each set's input
 * padded, split into stride phases and interleaved, and de-interleaves
 * each output pixel with one permute as it stores it.
 *
 * Unstrided 3x3s with groups of 4, 8 or 16 (pk->gwino) also get Winograd
 * F(2x2, 3x3) filters after the direct pack, [set][pos][ci][lanes] in the
 * same lane order, for csrc/x86/nchwc_grouped_wino_avx512.c (2.25x fewer
 * multiplies); the direct pack stays for the portable run. Groups of 24 to
 * 64 channels (whole blocks: RegNet's 24, 48, 56, which the single-block
 * tiles ran well below the 1x1s beside them) take the same packs with one
 * group a set of gi lanes, for Winograd only.
 */
#include <stdlib.h>
#include <string.h>

#include "conv2d.h"
#include "eltwise.h"
#include "nchwc.h"
#include "pool.h"

#define B CNN_NCHWC

/* CNNENGINE_GROUPED=0 (read when a conv is packed): no interleaved packs,
 * for A/B timing against the pair and wide tiles. */
static int grouped_wanted(void)
{
    const char *env = getenv("CNNENGINE_GROUPED");
    return !(env && !strcmp(env, "0"));
}

/* Winograd for unstrided 3x3s of groups of 4, 8, 16 or 24 to 64 (whole
 * blocks) on maps of 16 tiles (7x7) or more, where whole models measured
 * it faster; smaller maps keep the direct tiles. CNNENGINE_GROUPED_WINO
 * (read when a conv is packed): 0 none (A/B timing), 1 whatever the map
 * (tests). */
static int wino_wanted(const cnn_conv2d_params *p, int gi)
{
    const char *env = getenv("CNNENGINE_GROUPED_WINO");
    const int width = gi == 16 || gi == 8 || gi == 4 || (gi > 16 && gi <= 64 && gi % B == 0);
    const int shape = width && p->kh == 3 && p->kw == 3 && p->sh == 1 && p->sw == 1 &&
                      p->dh == 1 && p->dw == 1;
    if (env && (!strcmp(env, "0") || !strcmp(env, "1")))
        return shape && env[0] == '1';
    return shape && (p->oh + 1) / 2 * ((p->ow + 1) / 2) >= 16;
}

int cnn_nchwc_grouped_width(const cnn_conv2d_params *p, const cnn_platform *plat)
{
    if (!plat->nchwc_grouped || p->groups <= 1 || p->c != p->k || p->c % p->groups)
        return 0;
    const int64_t cg = p->c / p->groups;
    /* c % 8: whole blocks, so a pair's second block is whole groups too.
     * Groups of 16 (RegNetX, ResNeXt's third stage) have the wide tiles
     * too: these only where unstrided (0.93-0.98x their time; strided, the
     * copy of a 4x larger input made them 1.14-1.18x at 56x56 and up). */
    const int small = (cg == 2 || cg == 4 || cg == 8) && p->c % B == 0;
    const int wide = cg == 16 && p->sh == 1 && p->sw == 1;
    /* Wider groups of whole blocks (RegNet's 24, 48, 56) only by Winograd,
     * which applies ReLU or nothing: the pair and single-block tiles run
     * the rest. */
    const int act = p->ep.act == CNN_ACT_NONE || p->ep.act == CNN_ACT_RELU;
    const int wider = cg > 16 && p->c % B == 0 && act && wino_wanted(p, (int)cg);
    return (small || wide || wider) && grouped_wanted() ? (int)cg : 0;
}

/* Winograd F(2x2, 3x3) U = G g G^T of each group's s x s filters, after
 * the direct pack, in its lane order: u [set][pos 4x4][ci < s][lanes] */
static void wino_pack(const cnn_conv2d_params *p, int64_t s, int64_t lanes, int64_t sets,
                      const float *w, float *u)
{
    static const float G[4][3] = {{1.f, 0.f, 0.f}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0.f, 0.f, 1.f}};
    const int64_t g = lanes / s;
    for (int64_t j = 0; j < sets; j++)
        for (int64_t l = 0; l < lanes; l++) {
            const int64_t grp = j * g + l % g, o = l / g;   /* lane l: output o of group grp */
            for (int64_t ci = 0; ci < s; ci++) {
                float t[4][3] = {{0.f}};
                const float *f = w + ((grp * s + o) * s + ci) * 9;
                for (int i = 0; i < 4 && grp < p->groups; i++)
                    for (int c = 0; c < 3; c++)
                        t[i][c] = G[i][0] * f[c] + G[i][1] * f[3 + c] + G[i][2] * f[6 + c];
                for (int i = 0; i < 4; i++)
                    for (int k = 0; k < 4; k++)
                        u[((j * 16 + i * 4 + k) * s + ci) * lanes + l] =
                            t[i][0] * G[k][0] + t[i][1] * G[k][1] + t[i][2] * G[k][2];
            }
        }
}

cnn_status cnn_nchwc_grouped_pack(struct cnn_conv2d_nchwc *pk, const float *w, const float *bias)
{
    const cnn_conv2d_params *p = &pk->p;
    const int64_t s = pk->gi, lanes = cnn_nchwc_grouped_lanes(pk->gi), g = lanes / s;
    const int64_t taps = p->kh * p->kw, sets = (pk->ocb * B + lanes - 1) / lanes;
    /* the direct pack stays: the portable run reads it where the level drops */
    pk->gwino = wino_wanted(p, pk->gi);
    pk->w = cnn_alloc_packed(sets * taps * s * lanes + (pk->gwino ? sets * 16 * s * lanes : 0));
    free(pk->bias);
    pk->bias = cnn_alloc_floats(sets * lanes);
    if (!pk->w || !pk->bias)
        return CNN_ERR_OOM;
    for (int64_t j = 0; j < sets; j++)
        for (int64_t l = 0; l < lanes; l++) {
            const int64_t grp = j * g + l % g, o = l / g;   /* lane l: output o of group grp */
            const int have = grp < p->groups;
            pk->bias[j * lanes + l] = have && bias ? bias[grp * s + o] : 0.f;
            for (int64_t t = 0; t < taps; t++)
                for (int64_t ci = 0; ci < s; ci++)
                    pk->w[((j * taps + t) * s + ci) * lanes + l] =
                        have ? w[((grp * s + o) * s + ci) * taps + t] : 0.f;
        }
    if (pk->gwino)
        wino_pack(p, s, lanes, sets, w, pk->w + sets * taps * s * lanes);
    return CNN_OK;
}

typedef struct grouped_job {
    const struct cnn_conv2d_nchwc *pk;
    const float *x, *residual;
    float *y;
    cnn_act_row_fn act;
} grouped_job;

/* Output row q: image, output block, output row. */
static void grouped_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const grouped_job *jb = (const grouped_job *)ctx;
    const struct cnn_conv2d_nchwc *pk = jb->pk;
    const cnn_conv2d_params *p = &pk->p;
    const float *x = jb->x, *residual = jb->residual;
    float *y = jb->y;
    const int64_t s = pk->gi, lanes = cnn_nchwc_grouped_lanes(pk->gi), g = lanes / s;
    const int64_t taps = p->kh * p->kw, blocks = pk->ocb;
    const int64_t xplane = p->h * p->w * B, yplane = p->oh * p->ow * B;
    const int64_t img = q / (blocks * p->oh), ob = q / p->oh % blocks, oy = q % p->oh;
    const int64_t j = ob * B / lanes;
    float *yr = y + (img * blocks + ob) * yplane + oy * p->ow * B;
    for (int64_t ox = 0; ox < p->ow; ox++)
        for (int64_t m = 0; m < B; m++) {
            /* channel mm of the set: output o of its group gl */
            const int64_t mm = ob * B % lanes + m, gl = mm / s, o = mm % s, l = o * g + gl;
            const int64_t grp = j * g + gl;
            float acc = pk->bias[j * lanes + l];
            for (int64_t ky = 0; ky < p->kh; ky++) {
                const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                if (iy < 0 || iy >= p->h)
                    continue;
                for (int64_t kx = 0; kx < p->kw; kx++) {
                    const int64_t ix = ox * p->sw - p->pl + kx * p->dw;
                    if (ix < 0 || ix >= p->w || grp >= p->groups)
                        continue;
                    for (int64_t ci = 0; ci < s; ci++) {
                        const int64_t ch = grp * s + ci;
                        acc += pk->w[((j * taps + ky * p->kw + kx) * s + ci) * lanes + l] *
                               x[(img * blocks + ch / B) * xplane + (iy * p->w + ix) * B + ch % B];
                    }
                }
            }
            yr[ox * B + m] = acc;
        }
    if (residual) {
        const float *rr = residual + (yr - y);
        for (int64_t i = 0; i < p->ow * B; i++)
            yr[i] += rr[i];
    }
    jb->act(&p->ep, yr, yr, p->ow * B);
}

/* The portable run: from the blocked input directly, output channel by
 * output channel, as the definition reads (the SIMD runs' oracle). */
cnn_status cnn_nchwc_grouped_ref(const struct cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                 const float *residual, float *y, float *pool, int threads)
{
    const cnn_conv2d_params *p = &pk->p;
    const int64_t blocks = pk->ocb, yplane = p->oh * p->ow * B;
    grouped_job jb = {pk, x, residual, y, cnn_plat()->act_row};
    cnn_pool_for(threads, n * blocks * p->oh, NULL, cnn_threads_steal(), grouped_unit, &jb);
    /* the plane means (a squeeze-excitation's squeeze), in pixel order */
    for (int64_t q = 0; pool && q < n * blocks * B; q++) {
        const float *yp = y + q / B * yplane + q % B;
        double sum = 0.0;
        for (int64_t i = 0; i < p->oh * p->ow; i++)
            sum += yp[i * B];
        pool[q] = (float)(sum / (double)(p->oh * p->ow));
    }
    return CNN_OK;
}
