/* The thread pool the hot drivers run their parallel loops on.
 *
 * An OpenMP region ends at a barrier that every thread of its team must
 * reach, so a worker the OS has not yet run (a shared host, another
 * tenant, a second Python caller) holds the whole step up even when the
 * others could do its work. Here the caller takes part and no worker is
 * waited for unless it has started: a job is a set of units cut into one
 * range per slot (thread j's static share); the caller runs slot 0, a
 * worker that wakes claims a free slot, and whoever is done claims the
 * slots nobody came for, then (steal) takes units one at a time from the
 * back of the others' ranges. A worker that wakes after the job has been
 * taken finds nothing and goes back to waiting. */
#ifndef CNN_POOL_H
#define CNN_POOL_H

#include <stdint.h>

#define CNN_POOL_MAX 64   /* slots (threads) per job */

/* Unit u of a job, run by the thread holding `slot` (0 <= slot < threads,
 * unique among the threads running the job at once: index per-thread
 * scratch by it). */
typedef void (*cnn_pool_fn)(void *ctx, int64_t u, int slot);

/* Runs fn(ctx, u, slot) for every u in [0, units) on up to `threads`
 * threads, the caller's included, and returns when all have run. Slot j
 * owns units [cut[j], cut[j + 1]) (cut NULL: an even static split, the
 * first units % threads one more) and runs them in order; with steal, a
 * thread done with its ranges also runs units from the back of others'
 * ranges. Without steal a range runs wholly under its slot (per-slot
 * state carried from unit to unit stays valid). A call from inside a job
 * runs inline on its caller. */
void cnn_pool_for(int threads, int64_t units, const int64_t *cut, int steal, cnn_pool_fn fn,
                  void *ctx);

#endif
