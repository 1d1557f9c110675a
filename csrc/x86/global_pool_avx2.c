#pragma GCC target("avx2,fma")
/* Global pooling of one plane, AVX2: four 8-lane accumulators. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "internal.h"
#include "../ops/global_pool.h"

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float cnn_global_sum_avx2(const float *x, int64_t hw)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= hw; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= hw; i += 8)
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < hw; i++)
        s += x[i];
    return s;
}

float cnn_global_max_avx2(const float *x, int64_t hw)
{
    if (hw < 8) {
        float m = x[0];
        for (int64_t i = 1; i < hw; i++)
            m = x[i] > m ? x[i] : m;
        return m;
    }
    __m256 a0 = _mm256_loadu_ps(x), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 8;
    for (; i + 32 <= hw; i += 32) {
        a0 = _mm256_max_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_max_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_max_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_max_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= hw; i += 8)
        a0 = _mm256_max_ps(a0, _mm256_loadu_ps(x + i));
    float m = hmax8(_mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3)));
    for (; i < hw; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

#endif
