/* Concatenate `count` inputs (OUTER, sizes[i], INNER) along the middle axis
 * into y (OUTER, sum sizes, INNER): one memcpy per (outer, input) block,
 * OpenMP over those blocks. Inputs with size 0 may pass NULL. */
#include <string.h>

#include "internal.h"

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
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t u = 0; u < units; u++) {
        const int64_t o = u / count;
        const int i = (int)(u % count);
        if (sizes[i] == 0)
            continue;
        memcpy(y + (o * total + start[i]) * inner, xs[i] + o * sizes[i] * inner,
               (size_t)(sizes[i] * inner) * sizeof(float));
    }
    free(start);
    return CNN_OK;
}
