/* Scratch kept between kernel calls (internal.h): a conv that normalises
 * its input into per-thread copies (DenseNet: up to 3 MB a call) faulted
 * every page of a fresh block in on each call once glibc had returned the
 * last one to the OS. A few blocks are kept, one per concurrent caller;
 * a block is never shared while taken. */
#include "internal.h"

#include <pthread.h>

#define SLOTS 4

static struct {
    float *p;
    int64_t count;
} g_slots[SLOTS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

float *cnn_scratch_take(int64_t count, int64_t *have)
{
    float *p = NULL;
    int64_t n = 0;
    pthread_mutex_lock(&g_mu);
    int best = -1;   /* the smallest block that holds count, else the largest */
    for (int i = 0; i < SLOTS; i++) {
        if (!g_slots[i].p)
            continue;
        const int64_t c = g_slots[i].count, b = best < 0 ? -1 : g_slots[best].count;
        if (best < 0 || (c >= count && (b < count || c < b)) || (b < count && c > b))
            best = i;
    }
    if (best >= 0) {
        p = g_slots[best].p, n = g_slots[best].count;
        g_slots[best].p = NULL, g_slots[best].count = 0;
    }
    pthread_mutex_unlock(&g_mu);
    if (p && n < count) {
        free(p);
        p = NULL;
    }
    if (!p) {
        p = cnn_alloc_floats(count);
        n = p ? count : 0;
    }
    *have = n;
    return p;
}

void cnn_scratch_give(float *p, int64_t count)
{
    if (!p)
        return;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < SLOTS; i++)
        if (!g_slots[i].p) {
            g_slots[i].p = p, g_slots[i].count = count;
            p = NULL;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    free(p);
}
