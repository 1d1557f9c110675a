/* Concatenate `count` inputs (OUTER, sizes[i], INNER) along the middle axis
 * into y (OUTER, sum sizes, INNER): one memcpy per (outer, input) block,
 * the pool over those blocks. Inputs with size 0 may pass NULL. */
#include <string.h>

#include "internal.h"
#include "pool.h"

typedef struct concat_job {
    const float *const *xs;
    const int64_t *sizes, *start;
    int64_t total, inner;
    int count;
    float *y;
} concat_job;

static void concat_unit(void *ctx, int64_t u, int slot)
{
    (void)slot;
    const concat_job *jb = (const concat_job *)ctx;
    const int64_t o = u / jb->count;
    const int i = (int)(u % jb->count);
    const int64_t sz = jb->sizes[i], inner = jb->inner;
    if (sz == 0)
        return;
    memcpy(jb->y + (o * jb->total + jb->start[i]) * inner, jb->xs[i] + o * sz * inner,
           (size_t)(sz * inner) * sizeof(float));
}

cnn_status cnn_concat_f32(int count, const float *const *xs,
                          const int64_t *sizes, int64_t outer, int64_t inner,
                          float *y, int threads)
{
    int64_t total = 0, t, units;
    if (count < 1 || !xs || !sizes || !y)
        return CNN_ERR_ARG;
    if (outer < 1 || inner < 1)
        return CNN_ERR_SHAPE;
    for (int i = 0; i < count; i++) {
        if (sizes[i] < 0 || __builtin_add_overflow(total, sizes[i], &total))
            return CNN_ERR_SHAPE;
        if (sizes[i] > 0 && !xs[i])
            return CNN_ERR_ARG;
    }
    if (total < 1 || !cnn_mul_ok(outer, total, &t) || !cnn_mul_ok(t, inner, &t) ||
        !cnn_mul_ok(t, (int64_t)sizeof(float), &t) || !cnn_mul_ok(outer, count, &units))
        return CNN_ERR_SHAPE;
    if (threads < 1)
        threads = 1;
    int64_t *start = (int64_t *)malloc((size_t)count * sizeof(int64_t));
    if (!start)
        return CNN_ERR_OOM;
    int64_t acc = 0;
    for (int i = 0; i < count; i++) {
        start[i] = acc;
        acc += sizes[i];
    }
    concat_job jb = {xs, sizes, start, total, inner, count, y};
    cnn_pool_for(threads, units, NULL, cnn_threads_steal(), concat_unit, &jb);
    free(start);
    return CNN_OK;
}
