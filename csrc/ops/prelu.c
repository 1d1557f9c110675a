/* PReLU with one slope per channel: driver and scalar kernel. */
#include "eltwise.h"
#include "pool.h"

void cnn_prelu_row_ref(const float *x, float *y, int64_t n, float slope)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.f ? x[i] : slope * x[i];
}

typedef struct prelu_job {
    cnn_prelu_row_fn row;
    int64_t c, hw, per_row;
    const float *x, *slope;
    float *y;
} prelu_job;

/* Chunk it % per_row of row it / per_row. */
static void prelu_unit(void *ctx, int64_t it, int slot)
{
    (void)slot;
    const prelu_job *jb = (const prelu_job *)ctx;
    const int64_t hw = jb->hw, per_row = jb->per_row;
    int64_t r = it / per_row, k = it % per_row;
    int64_t off = k * CNN_ELT_CHUNK;
    int64_t len = hw - off < CNN_ELT_CHUNK ? hw - off : CNN_ELT_CHUNK;
    jb->row(jb->x + r * hw + off, jb->y + r * hw + off, len, jb->slope[r % jb->c]);
}

cnn_status cnn_prelu_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                         const float *slope, float *y, int threads)
{
    int64_t rows, count;
    if (!cnn_mul_ok(n, c, &rows) || !cnn_mul_ok(rows, hw, &count))
        return CNN_ERR_SHAPE;
    if (count == 0)
        return CNN_OK;
    if (!x || !slope || !y)
        return CNN_ERR_ARG;
    const cnn_prelu_row_fn row = cnn_plat()->prelu_row;
    /* work item = one chunk of one (n, c) row; rows*chunks <= count, no overflow */
    const int64_t per_row = (hw + CNN_ELT_CHUNK - 1) / CNN_ELT_CHUNK;
    const int64_t items = rows * per_row;
    const int team = cnn_team(threads, count >= 2 * CNN_ELT_CHUNK ? items : 1);
    prelu_job jb = {row, c, hw, per_row, x, slope, y};
    cnn_pool_for(team, items, NULL, cnn_threads_steal(), prelu_unit, &jb);
    return CNN_OK;
}
