/* A dense layer over gathered weight rows, and the blocked transpose that
 * makes those rows: incremental occlusion (cnnengine/occlusion/dense.py)
 * multiplies only the input columns a batch of patch positions changed,
 *     y (M,N) += alpha * d (M,K) w[rows] (K,N),
 * reading each chosen row of w (its weights stored as (inputs, outputs))
 * in place: a GEMM would first copy the rows out, then pack them again.
 * The driver splits the output columns among the threads; the kernels
 * (platform table: scalar here, AVX2 in csrc/x86/) run one column block. */
#include "rows_gemm.h"

#include "../core/platform.h"
#include "../core/pool.h"

/* output columns per unit: up to 8 KiB of each weight row, in one piece */
#define COL_BLOCK 2048

void cnn_rows_gemm_block_ref(int64_t m, int64_t c0, int64_t c1, int64_t k, float alpha,
                             const float *d, int64_t ldd, const int64_t *rows, const float *w,
                             int64_t ldw, float *y, int64_t ldy)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = c0; c < c1; c++) {
            float s = 0.f;
            for (int64_t j = 0; j < k; j++)
                s += d[i * ldd + j] * w[rows[j] * ldw + c];
            y[i * ldy + c] += alpha * s;
        }
}

typedef struct rg_job {
    cnn_rows_gemm_block_fn fn;
    int64_t m, n, k, width;
    float alpha;
    const float *d, *w;
    const int64_t *rows;
    float *y;
} rg_job;

/* Column block b. */
static void rg_unit(void *ctx, int64_t b, int slot)
{
    (void)slot;
    const rg_job *jb = (const rg_job *)ctx;
    const int64_t c0 = b * jb->width, c1 = c0 + jb->width < jb->n ? c0 + jb->width : jb->n;
    jb->fn(jb->m, c0, c1, jb->k, jb->alpha, jb->d, jb->k, jb->rows, jb->w, jb->n, jb->y, jb->n);
}

cnn_status cnn_rows_gemm_f32(int64_t m, int64_t n, int64_t k, float alpha, const float *d,
                             const int64_t *rows, int64_t w_rows, const float *w, float *y,
                             int threads)
{
    int64_t t;
    if (m < 0 || n < 1 || k < 0 || w_rows < 1)
        return CNN_ERR_SHAPE;
    if (m == 0 || k == 0)
        return CNN_OK;
    if (!d || !rows || !w || !y)
        return CNN_ERR_ARG;
    if (!cnn_mul_ok(m, k, &t) || !cnn_mul_ok(m, n, &t) || !cnn_mul_ok(w_rows, n, &t))
        return CNN_ERR_SHAPE;
    for (int64_t j = 0; j < k; j++)
        if (rows[j] < 0 || rows[j] >= w_rows)
            return CNN_ERR_SHAPE;
    cnn_rows_gemm_block_fn fn = cnn_plat()->rows_gemm_block;
    if (threads < 1)
        threads = 1;
    /* a block per thread (16 columns apart), at most COL_BLOCK wide */
    int64_t width = ((n + threads - 1) / threads + 15) / 16 * 16;
    width = width < COL_BLOCK ? width : COL_BLOCK;
    const int64_t blocks = (n + width - 1) / width;
    rg_job jb = {fn, m, n, k, width, alpha, d, w, rows, y};
    cnn_pool_for(threads, blocks, NULL, cnn_threads_steal(), rg_unit, &jb);
    return CNN_OK;
}

#define TILE 32         /* a 32x32 tile: 4 KiB read, 4 KiB written, both in L1 */

typedef struct tr_job {
    int64_t rows, cols;
    const float *x;
    float *y;
} tr_job;

/* Rows [tr * TILE, +TILE) of x, tile by tile. */
static void tr_unit(void *ctx, int64_t tr, int slot)
{
    (void)slot;
    const tr_job *jb = (const tr_job *)ctx;
    const int64_t rows = jb->rows, cols = jb->cols;
    const int64_t r0 = tr * TILE, r1 = r0 + TILE < rows ? r0 + TILE : rows;
    for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
        const int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++)
                jb->y[c * rows + r] = jb->x[r * cols + c];
    }
}

cnn_status cnn_transpose_f32(int64_t rows, int64_t cols, const float *x, float *y, int threads)
{
    int64_t t;
    if (rows < 1 || cols < 1 || !cnn_mul_ok(rows, cols, &t))
        return CNN_ERR_SHAPE;
    if (!x || !y)
        return CNN_ERR_ARG;
    const int64_t tiles = (rows + TILE - 1) / TILE;
    if (threads < 1)
        threads = 1;
    tr_job jb = {rows, cols, x, y};
    cnn_pool_for(threads, tiles, NULL, cnn_threads_steal(), tr_unit, &jb);
    return CNN_OK;
}
