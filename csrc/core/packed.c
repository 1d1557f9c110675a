/* Packed weights (written once at plan time, read by every run) on
 * transparent huge pages. A run streams every pack of a model through the
 * TLB (MNASNet-1.0's 12 MB of packs: some 3000 pages of 4 KiB against Zen
 * 4's 3072-entry L2 TLB), and most packs are under the 2 MiB a huge page
 * holds, so packs are carved one after another from 64 MiB regions
 * advised as huge pages: only the pages packs touch are resident, so no
 * memory is added but the last page's tail. A region whose packs are all
 * freed releases its pages and is carved again. Packs over 16 MiB get a
 * 2 MiB-aligned block of their own whose whole 2 MiB pages are advised. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

#define HUGE_PAGE ((size_t)1 << 21)
#define REGION ((size_t)1 << 26)
#define SHARED_MAX (REGION / 4)     /* larger packs: a block of their own */

typedef struct region {
    char *base;
    size_t used;            /* bytes carved from base */
    int64_t live;           /* packs alive in it */
    struct region *next;
} region;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static region *regions;

static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (p && bytes)
        (void)madvise(p, bytes, MADV_HUGEPAGE);   /* advice: failure is harmless */
#else
    (void)p, (void)bytes;
#endif
}

/* A large pack's pages faulted in by one call (Linux 5.14+) instead of one
 * trap per 4 KiB page while packing. */
static void populate(char *p, size_t bytes)
{
#ifdef MADV_POPULATE_WRITE
    const size_t page = 4096;
    const size_t lo = ((size_t)p + page - 1) & ~(page - 1), hi = ((size_t)p + bytes) & ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);   /* advice, as above */
#else
    (void)p, (void)bytes;
#endif
}

void *cnn_map_huge(size_t bytes)
{
    char *m = (char *)mmap(NULL, bytes + HUGE_PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *base = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (base > m)
        munmap(m, (size_t)(base - m));
    if (m + HUGE_PAGE > base)
        munmap(base + bytes, (size_t)(m + HUGE_PAGE - base));
    advise_huge(base, bytes);
    return base;
}

/* A new region (cnn_map_huge), or NULL. */
static region *region_new(void)
{
    region *r = (region *)malloc(sizeof *r);
    char *base = r ? (char *)cnn_map_huge(REGION) : NULL;
    if (!base) {
        free(r);
        return NULL;
    }
    r->base = base;
    r->used = 0;
    r->live = 0;
    r->next = regions;
    regions = r;
    return r;
}

float *cnn_alloc_packed(int64_t count)
{
    int64_t b;
    if (count < 0 || !cnn_mul_ok(count, (int64_t)sizeof(float), &b) ||
        (size_t)b > CNN_MAX_WORKSPACE)
        return NULL;
    const size_t bytes = b ? ((size_t)b + 63) & ~(size_t)63 : 64;
    if (bytes <= SHARED_MAX) {
        pthread_mutex_lock(&lock);
        region *r = regions;
        while (r && r->used + bytes > REGION)
            r = r->next;
        if (!r)
            r = region_new();
        char *p = NULL;
        if (r) {
            p = r->base + r->used;
            r->used += bytes;
            r->live++;
        }
        pthread_mutex_unlock(&lock);
        if (p)
            return (float *)p;
    }
    char *p = (char *)aligned_alloc(HUGE_PAGE, bytes);   /* or where no region could be mapped */
    if (p) {
        advise_huge(p, bytes & ~(HUGE_PAGE - 1));
        populate(p, bytes);
    }
    return (float *)p;
}

void cnn_free_packed(void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&lock);
    region *r = regions;
    while (r && !((char *)p >= r->base && (char *)p < r->base + REGION))
        r = r->next;
    if (r && --r->live == 0) {
        /* its pages back to the system; the range is carved again */
        (void)madvise(r->base, r->used, MADV_DONTNEED);
        r->used = 0;
    }
    pthread_mutex_unlock(&lock);
    if (!r)
        free(p);
}

void cnn_packed_stats(int64_t *live, int64_t *carved, int64_t *regions_mapped)
{
    int64_t l = 0, c = 0, n = 0;
    pthread_mutex_lock(&lock);
    for (const region *r = regions; r; r = r->next, n++) {
        l += r->live;
        c += (int64_t)r->used;
    }
    pthread_mutex_unlock(&lock);
    *live = l, *carved = c, *regions_mapped = n;
}
