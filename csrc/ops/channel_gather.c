/* Blocked channel gather: every output channel copied from one channel of
 * one of several blocked inputs. One kernel for the channel-only data
 * movement of the blocked graph (runtime/layout.py): a Concat whose parts
 * are not whole blocks, a Slice or Split along channels, and a channel
 * shuffle (Reshape -> Transpose -> Reshape, ShuffleNet), alone or composed.
 * Without it those ran in NCHW between two reorders.
 *
 * The portable loop below is the oracle; AVX2 permutes and blends whole
 * source vectors (csrc/x86/channel_gather_avx2.c). */
#include <string.h>

#include "internal.h"
#include "nchwc.h"
#include "pool.h"

#define B CNN_NCHWC

cnn_status cnn_nchwc_gather_f32(int64_t n, int64_t hw, int count, const float *const *xs,
                                const int64_t *cs, int64_t c_out, const int32_t *src_in,
                                const int64_t *src_ch, float *y, int threads)
{
    int64_t t;
    if (count < 1 || !xs || !cs || !src_in || !src_ch || !y)
        return CNN_ERR_ARG;
    if (n < 1 || hw < 1 || c_out < 1)
        return CNN_ERR_SHAPE;
    if (!cnn_mul_ok(n, cnn_nchwc_blocks(c_out), &t) || !cnn_mul_ok(t, hw, &t) || !cnn_mul_ok(t, B, &t))
        return CNN_ERR_SHAPE;
    for (int i = 0; i < count; i++) {
        if (!xs[i])
            return CNN_ERR_ARG;
        if (cs[i] < 1 || !cnn_mul_ok(n, cnn_nchwc_blocks(cs[i]), &t) || !cnn_mul_ok(t, hw, &t) ||
            !cnn_mul_ok(t, B, &t))
            return CNN_ERR_SHAPE;
    }
    for (int64_t j = 0; j < c_out; j++)
        if (src_in[j] < 0 || src_in[j] >= count || src_ch[j] < 0 || src_ch[j] >= cs[src_in[j]])
            return CNN_ERR_ARG;
    if (threads < 1)
        threads = 1;
    cnn_plat()->nchwc_gather(n, hw, count, xs, cs, c_out, src_in, src_ch, y, threads);
    return CNN_OK;
}

typedef struct gather_job {
    int64_t hw, c_out, obs;
    const float *const *xs;
    const int64_t *cs, *src_ch;
    const int32_t *src_in;
    float *y;
} gather_job;

/* Output block q (image q / obs). */
static void gather_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const gather_job *jb = (const gather_job *)ctx;
    const int64_t hw = jb->hw, img = q / jb->obs, ob = q % jb->obs;
    float *d = jb->y + q * hw * B;
    for (int64_t l = 0; l < B; l++) {
        const int64_t j = ob * B + l;
        if (j >= jb->c_out) {
            for (int64_t p = 0; p < hw; p++)
                d[p * B + l] = 0.f;
            continue;
        }
        const int i = jb->src_in[j];
        const int64_t c = jb->src_ch[j];
        const float *s = jb->xs[i] + ((img * cnn_nchwc_blocks(jb->cs[i]) + c / B) * hw) * B + c % B;
        for (int64_t p = 0; p < hw; p++)
            d[p * B + l] = s[p * B];
    }
}

void cnn_nchwc_gather_ref(int64_t n, int64_t hw, int count, const float *const *xs,
                          const int64_t *cs, int64_t c_out, const int32_t *src_in,
                          const int64_t *src_ch, float *y, int threads)
{
    (void)count;
    const int64_t obs = cnn_nchwc_blocks(c_out);
    gather_job jb = {hw, c_out, obs, xs, cs, src_ch, src_in, y};
    cnn_pool_for(threads, n * obs, NULL, cnn_threads_steal(), gather_unit, &jb);
}
