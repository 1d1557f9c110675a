/* Helpers shared by the C drivers; not part of the public API. */
#ifndef CNN_INTERNAL_H
#define CNN_INTERNAL_H

#include "cnnengine.h"
#include "platform.h"

#include <math.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Overflow-checked product of sizes; 0 on overflow or a negative factor. */
static inline int cnn_mul_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return 0;
    return !__builtin_mul_overflow(a, b, out);
}

/* Workspace allocation, 64-byte aligned, refused above CNN_MAX_WORKSPACE. */
static inline float *cnn_alloc_floats(int64_t count)
{
    int64_t bytes;
    if (count < 0 || !cnn_mul_ok(count, (int64_t)sizeof(float), &bytes) ||
        (size_t)bytes > CNN_MAX_WORKSPACE)
        return NULL;
    size_t rounded = ((size_t)bytes + 63) & ~(size_t)63;
    return (float *)aligned_alloc(64, rounded ? rounded : 64);
}

/* A block of at least count floats kept from an earlier call
 * (csrc/core/scratch.c), or a new one; *have: its size. Give it back with
 * cnn_scratch_give (NULL: no memory). */
float *cnn_scratch_take(int64_t count, int64_t *have);
/* A private anonymous map of bytes (whole 2 MiB pages), 2 MiB aligned (one
 * more huge page mapped, then trimmed) and advised as transparent huge
 * pages, or NULL; release with munmap (csrc/core/packed.c). */
void *cnn_map_huge(size_t bytes);
void cnn_scratch_give(float *p, int64_t have);

/* Packed weights (written once at plan time, read by every run), 64-byte
 * aligned, on transparent huge pages (csrc/core/packed.c); not zeroed.
 * Release with cnn_free_packed. */
float *cnn_alloc_packed(int64_t count);

/* Scalar epilogue: the definition every SIMD epilogue must match. */
static inline float cnn_act_scalar(const cnn_epilogue *ep, float v)
{
    switch (ep->act) {
    case CNN_ACT_RELU: return v < 0.f ? 0.f : v; /* NaN stays NaN, as ONNX Runtime */
    case CNN_ACT_CLIP: return v < ep->alpha ? ep->alpha : (v > ep->beta ? ep->beta : v);
    case CNN_ACT_LEAKY: return v >= 0.f ? v : ep->alpha * v;
    case CNN_ACT_ELU: return v > 0.f ? v : ep->alpha * expm1f(v);
    case CNN_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case CNN_ACT_TANH: return tanhf(v);
    case CNN_ACT_SILU: return v / (1.f + expf(-v));
    case CNN_ACT_HARDSWISH: {
        float t = v + 3.f;
        t = t < 0.f ? 0.f : (t > 6.f ? 6.f : t);
        return v * t * (1.f / 6.f);
    }
    case CNN_ACT_HARDSIGMOID: {
        float t = ep->alpha * v + ep->beta;
        return t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
    }
    case CNN_ACT_GELU: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case CNN_ACT_GELU_TANH:
        return 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case CNN_ACT_ERF: return erff(v);
    default: return v;
    }
}

static inline int cnn_act_valid(const cnn_epilogue *ep)
{
    return ep->act >= CNN_ACT_NONE && ep->act <= CNN_ACT_ERF;
}

/* Apply an epilogue in place to one contiguous run, on the calling thread,
 * by the platform table's act_row. Kernels call it per output row
 * so bias/residual/activation fuse into the store (csrc/ops/activation.c). */
void cnn_act_inplace(const cnn_epilogue *ep, float *y, int64_t n);

#endif
