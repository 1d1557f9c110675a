/* Scratch kept between kernel calls (internal.h): a conv that normalises
 * its input into per-thread copies (DenseNet: up to 3 MB a call) faulted
 * every page of a fresh block in on each call once glibc had returned the
 * last one to the OS. A few blocks are kept, one per concurrent caller;
 * a block is never shared while taken. Blocks from 1 MiB are maps of
 * their own on huge pages (on 4 KiB pages DenseNet-121's 1x1s read their
 * normalised 56x56 input 1.5-2 % slower than the arena's; carved with the
 * packed weights, each outgrown block stayed resident: +25 MB peak). */
#include "internal.h"

#include <pthread.h>
#include <sys/mman.h>

#define SLOTS 4
#define HUGE_FROM (1 << 18)     /* floats */
#define HUGE_PAGE ((size_t)1 << 21)

static size_t huge_bytes(int64_t count)
{
    return ((size_t)count * sizeof(float) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

/* From 1 MiB: a huge-page map of its own, so that freeing it returns
 * every page. */
static float *block_new(int64_t count)
{
    if (count < HUGE_FROM)
        return cnn_alloc_floats(count);
    if ((size_t)count > CNN_MAX_WORKSPACE / sizeof(float))
        return NULL;
    return (float *)cnn_map_huge(huge_bytes(count));
}

static void block_free(float *p, int64_t count)
{
    if (count >= HUGE_FROM)
        munmap(p, huge_bytes(count));
    else
        free(p);
}

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
    int64_t want = count;
    if (p && n < count) {
        /* outgrown: half as much again, so that a run of growing inputs
         * (a dense block's concatenations) maps a few times, not at each */
        if (n + n / 2 > want)
            want = n + n / 2;
        block_free(p, n);
        p = NULL;
    }
    if (!p) {
        if (want >= HUGE_FROM)    /* whole huge pages are mapped anyway */
            want = (int64_t)(huge_bytes(want) / sizeof(float));
        p = block_new(want);
        if (!p && want > count)
            p = block_new(want = count);
        n = p ? want : 0;
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
    if (p)
        block_free(p, count);
}
