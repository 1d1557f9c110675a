/* Winograd F(2x2, 3x3) on the blocked layout (NCHW8c): filter packing and
 * the portable scalar run, the oracle of the AVX2/AVX-512 runs (the F(4x4)
 * blocked driver of csrc/x86/winograd_nchwc_avx2.c with m = 2). Matrices in
 * csrc/ops/winograd.h. F(2x2) multiplies 16/4 = 4 per output against 36/16
 * = 2.25 for F(4x4), but its U is 16/36 the size and a 7x7 map holds 16 of
 * its tiles against 4: on small maps with many channels the GEMMs reuse
 * each U element 4x as often, and its transforms scale inputs by at most 2
 * (F(4x4): 5 and 8), so it loses less precision.
 */
#include <string.h>

#include "../core/platform.h"
#include "winograd.h"
#include "../core/pool.h"

#define B 8
#define NXI 16

static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

/* U = G g G^T of one 3x3 filter g, in double, rounded once: u[4*row + col]. */
static void filter_tile2(const float *g, float u[NXI])
{
    double gt[4][3];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            gt[i][j] = G2[i][0] * g[j] + G2[i][1] * g[3 + j] + G2[i][2] * g[6 + j];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            u[i * 4 + j] = (float)(gt[i][0] * G2[j][0] + gt[i][1] * G2[j][1] + gt[i][2] * G2[j][2]);
}

/* Panels of 16 output lanes (8 for an odd last block), zero past K and C. */
cnn_status cnn_winograd2_pack_nchwc_f32(const cnn_conv2d_params *p, const float *w,
                                        float **packed)
{
    if (packed)
        *packed = NULL;
    const cnn_status st = cnn_wino_args(p, w, packed);
    if (st != CNN_OK)
        return st;
    const int64_t K = p->k, C = p->c, kp = cnn_wino_nchwc_pad(K), cp = cnn_wino_nchwc_pad(C);
    int64_t count;
    if (!cnn_mul_ok(kp, cp, &count) || !cnn_mul_ok(count, NXI, &count))
        return CNN_ERR_SHAPE;
    float *u = cnn_alloc_packed(count);
    if (!u)
        return CNN_ERR_OOM;
    memset(u, 0, (size_t)count * sizeof(float));
    for (int64_t k = 0; k < K; k++) {
        const int64_t p0 = k / 16 * 16, pw = kp - p0 < 16 ? kp - p0 : 16;
        for (int64_t c = 0; c < C; c++) {
            float t[NXI];
            filter_tile2(w + (k * C + c) * 9, t);
            for (int xi = 0; xi < NXI; xi++)
                u[xi * kp * cp + p0 * cp + c * pw + k - p0] = t[xi];
        }
    }
    *packed = u;
    return CNN_OK;
}

typedef struct wino2_job {
    const cnn_conv2d_params *p;
    const float *packed, *x, *bias, *residual;
    float *y, *ws;
    int64_t cp, kp, th, tw;
} wino2_job;

/* Tile g, through the slot's V. */
static void wino2_unit(void *ctx, int64_t g, int slot)
{
    const wino2_job *jb = (const wino2_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const float *packed = jb->packed, *x = jb->x, *bias = jb->bias, *residual = jb->residual;
    float *y = jb->y;
    const int64_t H = p->h, W = p->w, OH = p->oh, OW = p->ow;
    const int64_t cp = jb->cp, kp = jb->kp, th = jb->th, tw = jb->tw;
    float *V = jb->ws + NXI * cp * slot;
    const int64_t img = g / (th * tw), ty = g / tw % th, tx = g % tw;
    const int64_t iy0 = 2 * ty - p->pt, ix0 = 2 * tx - p->pl;
    for (int64_t c = 0; c < cp; c++) {
        const float *xp = x + (img * (cp / B) + c / B) * H * W * B + c % B;
        float d[4][4], r[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                const int64_t iy = iy0 + i, ix = ix0 + j;
                d[i][j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? xp[(iy * W + ix) * B]
                                                                : 0.f;
            }
        for (int j = 0; j < 4; j++) {   /* columns: r = B^T d */
            r[0][j] = d[0][j] - d[2][j];
            r[1][j] = d[1][j] + d[2][j];
            r[2][j] = d[2][j] - d[1][j];
            r[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) {   /* rows: v = r B */
            V[(i * 4 + 0) * cp + c] = r[i][0] - r[i][2];
            V[(i * 4 + 1) * cp + c] = r[i][1] + r[i][2];
            V[(i * 4 + 2) * cp + c] = r[i][2] - r[i][1];
            V[(i * 4 + 3) * cp + c] = r[i][1] - r[i][3];
        }
    }
    for (int64_t k = 0; k < kp; k++) {
        const int64_t p0 = k / 16 * 16, pw = kp - p0 < 16 ? kp - p0 : 16;
        float m[NXI], s[2][4];
        for (int xi = 0; xi < NXI; xi++) {
            const float *u = packed + xi * kp * cp + p0 * cp + k - p0;
            float acc = 0.f;
            for (int64_t c = 0; c < cp; c++)
                acc += u[c * pw] * V[xi * cp + c];
            m[xi] = acc;
        }
        for (int j = 0; j < 4; j++) {   /* columns: s = A^T m */
            s[0][j] = m[j] + m[4 + j] + m[8 + j];
            s[1][j] = m[4 + j] - m[8 + j] - m[12 + j];
        }
        const float b = bias ? bias[k] : 0.f;
        const int64_t plane = (img * (kp / B) + k / B) * OH * OW * B + k % B;
        for (int a = 0; a < 2 && 2 * ty + a < OH; a++)
            for (int q = 0; q < 2 && 2 * tx + q < OW; q++) {
                const float o = q == 0 ? s[a][0] + s[a][1] + s[a][2]
                                       : s[a][1] - s[a][2] - s[a][3];
                const int64_t at = plane + ((2 * ty + a) * OW + 2 * tx + q) * B;
                float v = o + b;
                if (residual)
                    v += residual[at];
                y[at] = cnn_act_scalar(&p->ep, v);
            }
    }
}

/* Tile by tile: V (16, cp) of the tile, then every output lane k < kp. */
cnn_status cnn_winograd2_nchwc_run_ref(const cnn_conv2d_params *p, const float *packed,
                                       const float *x, const float *bias,
                                       const float *residual, float *y, int threads)
{
    const int64_t OH = p->oh, OW = p->ow;
    const int64_t cp = cnn_wino_nchwc_pad(p->c), kp = cnn_wino_nchwc_pad(p->k);
    const int64_t th = (OH + 1) / 2, tw = (OW + 1) / 2, ntiles = p->n * th * tw;
    if (threads < 1)
        threads = 1;
    if (threads > ntiles)
        threads = (int)ntiles;
    float *ws = cnn_alloc_floats(NXI * cp * threads);
    if (!ws)
        return CNN_ERR_OOM;
    wino2_job jb = {p, packed, x, bias, residual, y, ws, cp, kp, th, tw};
    cnn_pool_for(threads, ntiles, NULL, cnn_threads_steal(), wino2_unit, &jb);
    free(ws);
    return CNN_OK;
}
