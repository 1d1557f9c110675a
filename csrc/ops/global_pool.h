/* Private to global_pool.c and x86/global_pool_avx2.c. */
#ifndef CNN_GLOBAL_POOL_H
#define CNN_GLOBAL_POOL_H

#include "cnnengine.h"

/* One plane: sum / max of x[0..hw). hw >= 1. The scalar sum in double. */
float cnn_global_sum_ref(const float *x, int64_t hw);
float cnn_global_max_ref(const float *x, int64_t hw);
float cnn_global_sum_avx2(const float *x, int64_t hw);
float cnn_global_max_avx2(const float *x, int64_t hw);

#endif
