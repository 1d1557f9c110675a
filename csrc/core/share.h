/* A parallel loop's units shared among a team with stealing at the tail:
 * thread j owns a contiguous range (the static split's, or cuts of equal
 * work) and runs it from the front, as a static schedule would; a thread
 * done with its own then takes units one at a time from the back of the
 * others' ranges. A thread that the OS or another tenant slows down (a
 * shared 2-core host: preempted workers, a core in a slow state) then
 * holds the team's barrier up by at most one unit, not its share's rest,
 * while the units still run where a static split puts them when the
 * threads keep pace. Each range is one word (front, back), taken by CAS. */
#ifndef CNN_SHARE_H
#define CNN_SHARE_H

#include <stdint.h>

#define CNN_SHARE_MAX 16   /* more threads: the callers' static schedule */

typedef struct {
    _Alignas(64) uint64_t w;  /* back << 32 | front; own line: the owner writes it every unit */
} cnn_share;

/* Ranges of units [cut[j], cut[j + 1]) for j < threads, or the static
 * schedule's (cut NULL: the first units % threads get one more); 0 where
 * the units do not fit 32 bits or threads exceeds CNN_SHARE_MAX. */
static inline int cnn_shares_init(cnn_share *s, int threads, int64_t units, const int64_t *cut)
{
    if (threads < 1 || threads > CNN_SHARE_MAX || units > (int64_t)UINT32_MAX)
        return 0;
    const int64_t q = units / threads, r = units % threads;
    for (int64_t j = 0, lo = 0; j < threads; j++) {
        const int64_t a = cut ? cut[j] : lo, b = cut ? cut[j + 1] : lo + q + (j < r);
        s[j].w = (uint64_t)b << 32 | (uint64_t)a;
        lo = b;
    }
    return 1;
}

/* One unit of range w: its front (back: from its back); 0 when it is empty. */
static inline int cnn_share_take(cnn_share *s, int w, int back, int64_t *u)
{
    uint64_t v = __atomic_load_n(&s[w].w, __ATOMIC_RELAXED);
    for (;;) {
        const uint64_t lo = v & 0xffffffffu, hi = v >> 32;
        if (lo >= hi)
            return 0;
        const uint64_t nv = back ? (hi - 1) << 32 | lo : hi << 32 | (lo + 1);
        if (__atomic_compare_exchange_n(&s[w].w, &v, nv, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *u = (int64_t)(back ? hi - 1 : lo);
            return 1;
        }
    }
}

/* A thread's walk over the ranges: its own (tid, and tid + team ... where
 * OpenMP gave a smaller team than the ranges were cut for) from the front,
 * then, with steal, the others' from the back. */
typedef struct {
    int tid, team, threads, k, steal;
} cnn_share_walk;

static inline int cnn_share_next(cnn_share *s, cnn_share_walk *it, int64_t *u)
{
    for (; it->k < (it->steal ? 2 : 1) * it->threads; it->k++) {
        const int steal = it->k >= it->threads;
        const int w = (it->tid + it->k) % it->threads;
        if ((w % it->team == it->tid) == steal)
            continue;
        if (cnn_share_take(s, w, steal, u))
            return 1;
    }
    return 0;
}

#endif
