/* Elementwise activations: the driver and the portable scalar kernel.
 * cnn_act_scalar (internal.h) is the definition; the AVX2 body lives in
 * csrc/x86/activation_avx2.c. */
#include "eltwise.h"
#include "pool.h"

void cnn_act_row_ref(const cnn_epilogue *ep, const float *x, float *y, int64_t n)
{
    /* one loop per activation with a constant act, so cnn_act_scalar's
     * switch folds away and the simple cases auto-vectorise (SSE2) */
    switch (ep->act) {
#define CNN_ACT_REF_CASE(ACT)                                               \
    case ACT: {                                                             \
        const cnn_epilogue e = {ACT, ep->alpha, ep->beta};                  \
        for (int64_t i = 0; i < n; i++)                                     \
            y[i] = cnn_act_scalar(&e, x[i]);                                \
        break;                                                              \
    }
    CNN_ACT_REF_CASE(CNN_ACT_RELU)
    CNN_ACT_REF_CASE(CNN_ACT_CLIP)
    CNN_ACT_REF_CASE(CNN_ACT_LEAKY)
    CNN_ACT_REF_CASE(CNN_ACT_ELU)
    CNN_ACT_REF_CASE(CNN_ACT_SIGMOID)
    CNN_ACT_REF_CASE(CNN_ACT_TANH)
    CNN_ACT_REF_CASE(CNN_ACT_SILU)
    CNN_ACT_REF_CASE(CNN_ACT_HARDSWISH)
    CNN_ACT_REF_CASE(CNN_ACT_HARDSIGMOID)
    CNN_ACT_REF_CASE(CNN_ACT_GELU)
    CNN_ACT_REF_CASE(CNN_ACT_GELU_TANH)
    CNN_ACT_REF_CASE(CNN_ACT_ERF)
#undef CNN_ACT_REF_CASE
    default:
        if (x != y)
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i];
        break;
    }
}

/* The fused epilogue of conv/gemm rows: one thread, often short runs. */
void cnn_act_inplace(const cnn_epilogue *ep, float *y, int64_t n)
{
    if (ep->act == CNN_ACT_NONE || n <= 0)
        return;
    cnn_plat()->act_row(ep, y, y, n);
}

typedef struct act_job {
    cnn_act_row_fn row;
    const cnn_epilogue *ep;
    int64_t count;
    const float *x;
    float *y;
} act_job;

/* Chunk c of CNN_ELT_CHUNK elements. */
static void act_unit(void *ctx, int64_t c, int slot)
{
    (void)slot;
    const act_job *jb = (const act_job *)ctx;
    const int64_t count = jb->count;
    int64_t off = c * CNN_ELT_CHUNK;
    int64_t len = count - off < CNN_ELT_CHUNK ? count - off : CNN_ELT_CHUNK;
    jb->row(jb->ep, jb->x + off, jb->y + off, len);
}

cnn_status cnn_activation_f32(cnn_epilogue ep, int64_t count, const float *x,
                              float *y, int threads)
{
    if (!cnn_act_valid(&ep) || count < 0)
        return CNN_ERR_ARG;
    if (count == 0)
        return CNN_OK;
    if (!x || !y)
        return CNN_ERR_ARG;
    const cnn_act_row_fn row = cnn_plat()->act_row;
    const int64_t chunks = (count + CNN_ELT_CHUNK - 1) / CNN_ELT_CHUNK;
    const int team = cnn_team(threads, chunks);
    act_job jb = {row, &ep, count, x, y};
    cnn_pool_for(team, chunks, NULL, cnn_threads_steal(), act_unit, &jb);
    return CNN_OK;
}
