/* The thread pool of pool.h: a few pools of persistent workers, one per
 * concurrent caller, each job published by one word that workers watch.
 *
 * state = generation << 1 | closed. A job bumps it to an open (even)
 * value once its fields are written, and to closed (odd) when every range
 * has been claimed and run or is being run; the caller then waits only
 * for the workers counted `inside`. A worker counts itself inside before
 * it re-reads state (both sequentially consistent), so either the caller
 * sees it and waits, or it sees the job closed and touches nothing. */
#define _GNU_SOURCE
#include "pool.h"

#include "cnnengine.h"
#include "share.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define POOLS 4                /* concurrent callers with a team of their own */
/* A worker spins this long for the next job, then sleeps: steps of a run
 * follow each other within microseconds, and a spinning worker takes a
 * core from whatever else the machine runs. */
#define IDLE_SPIN_NS 300000LL
/* The caller spins at least this long for a worker still in its last
 * unit, then sleeps: a worker not done by then has likely lost its core,
 * and a spinning caller keeps it off the one the caller holds. */
#define JOIN_SPIN_NS 50000LL

typedef struct pool {
    _Alignas(64) uint64_t state;
    _Alignas(64) int inside;       /* workers inside the current job */
    int joining;                   /* the caller sleeps until inside is 0 */
    _Alignas(64) uint64_t claimed; /* slot j taken: bit j */
    int busy;                      /* a caller holds the pool */
    int workers;                   /* started so far */
    int sleepers;                  /* workers blocked on cv */
    /* the job: written by its caller before state opens it */
    cnn_pool_fn fn;
    void *ctx;
    int threads, steal;
    cnn_share share[CNN_POOL_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool;

static pool g_pools[POOLS] = {
    [0 ... POOLS - 1] = {.state = 1, .mu = PTHREAD_MUTEX_INITIALIZER,
                         .cv = PTHREAD_COND_INITIALIZER}};

static __thread int t_in_job;    /* a pool worker, or a caller running a job */

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#ifdef __linux__
static void futex_wait(int *addr, int val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(int *addr) { syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }
#else
static void futex_wait(int *addr, int val)
{
    (void)addr, (void)val;
    sched_yield();
}
static void futex_wake(int *addr) { (void)addr; }
#endif

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A free slot of the job, claimed; -1 when all are taken. */
static int claim(pool *p)
{
    const uint64_t all = p->threads >= 64 ? ~0ULL : (1ULL << p->threads) - 1;
    uint64_t c = __atomic_load_n(&p->claimed, __ATOMIC_ACQUIRE);
    for (;;) {
        const uint64_t open = ~c & all;
        if (!open)
            return -1;
        const int s = __builtin_ctzll(open);
        if (__atomic_compare_exchange_n(&p->claimed, &c, c | 1ULL << s, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return s;
    }
}

/* Range `range` from its front, under `slot`; the units it ran. */
static int64_t run_range(pool *p, int range, int slot)
{
    int64_t done = 0;
    for (int64_t u; cnn_share_take(p->share, range, 0, &u); done++)
        p->fn(p->ctx, u, slot);
    return done;
}

/* A thread's part of a job once it holds `slot`: its range, the ranges
 * nobody claimed, then (steal) units from the back of the others'; the
 * units it ran. */
static int64_t run_job(pool *p, int slot)
{
    int64_t done = run_range(p, slot, slot);
    for (int s; (s = claim(p)) >= 0;)
        done += run_range(p, s, s);
    if (!p->steal)
        return done;
    for (int k = 1; k < p->threads; k++) {
        const int w = (slot + k) % p->threads;
        for (int64_t u; cnn_share_take(p->share, w, 1, &u); done++)
            p->fn(p->ctx, u, slot);
    }
    return done;
}

/* The next state after `seen`: spun for, then slept for. */
static uint64_t wait_change(pool *p, uint64_t seen)
{
    uint64_t s;
    long long until = 0;
    for (int i = 0;; i++) {
        if ((s = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE)) != seen)
            return s;
        relax();
        if ((i & 255) == 255) {
            const long long t = mono_ns();
            if (!until)
                until = t + IDLE_SPIN_NS;
            else if (t >= until)
                break;
        }
    }
    pthread_mutex_lock(&p->mu);
    __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
    while ((s = __atomic_load_n(&p->state, __ATOMIC_SEQ_CST)) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* The caller's wait for the workers still inside its closed job: spun
 * for while a worker may still be in a unit as long as the caller's were
 * (twice their mean, at least JOIN_SPIN_NS), then slept for. */
static void join(pool *p, long long unit_ns)
{
    long long until = 0;
    for (int i = 0; __atomic_load_n(&p->inside, __ATOMIC_SEQ_CST) > 0; i++) {
        relax();
        if ((i & 255) != 255)
            continue;
        const long long t = mono_ns();
        if (!until) {
            until = t + (2 * unit_ns > JOIN_SPIN_NS ? 2 * unit_ns : JOIN_SPIN_NS);
        } else if (t >= until) {
            __atomic_store_n(&p->joining, 1, __ATOMIC_SEQ_CST);
            for (int v; (v = __atomic_load_n(&p->inside, __ATOMIC_SEQ_CST)) > 0;)
                futex_wait(&p->inside, v);
            __atomic_store_n(&p->joining, 0, __ATOMIC_SEQ_CST);
            return;
        }
    }
}

static void *worker(void *arg)
{
    pool *p = (pool *)arg;
    t_in_job = 1;   /* a kernel a unit calls runs inline */
    uint64_t seen = ~0ULL;   /* no state: a job opened before this thread ran is still seen */
    for (;;) {
        const uint64_t s = wait_change(p, seen);
        seen = s;
        if (s & 1)
            continue;
        __atomic_add_fetch(&p->inside, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&p->state, __ATOMIC_SEQ_CST) == s) {
            const int slot = claim(p);
            if (slot >= 0)
                run_job(p, slot);
        }
        if (__atomic_sub_fetch(&p->inside, 1, __ATOMIC_SEQ_CST) == 0 &&
            __atomic_load_n(&p->joining, __ATOMIC_SEQ_CST))
            futex_wake(&p->inside);
    }
    return NULL;
}

/* At least n workers started (fewer where the OS refuses threads). */
static int ensure_workers(pool *p, int n)
{
    while (p->workers < n) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        const int rc = pthread_create(&th, &at, worker, p);
        pthread_attr_destroy(&at);
        if (rc != 0)
            break;
        pthread_setname_np(th, "cnnengine-pool");
        p->workers++;
    }
    return p->workers;
}

static pool *acquire(void)
{
    for (int i = 0; i < POOLS; i++) {
        int free = 0;
        if (__atomic_compare_exchange_n(&g_pools[i].busy, &free, 1, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return &g_pools[i];
    }
    return NULL;
}

/* A forked child has none of the parent's workers. */
static void after_fork_child(void)
{
    for (int i = 0; i < POOLS; i++) {
        pool *p = &g_pools[i];
        p->workers = p->sleepers = p->inside = p->joining = p->busy = 0;
        p->state = 1;
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
    }
    t_in_job = 0;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void register_fork(void) { pthread_atfork(NULL, NULL, after_fork_child); }

void cnn_pool_for(int threads, int64_t units, const int64_t *cut, int steal, cnn_pool_fn fn,
                  void *ctx)
{
    if (units <= 0)
        return;
    if (threads > units)
        threads = (int)units;
    if (threads > CNN_POOL_MAX)
        threads = CNN_POOL_MAX;
    pool *p = threads > 1 && !t_in_job && units <= (int64_t)UINT32_MAX ? acquire() : NULL;
    if (p) {
        pthread_once(&g_once, register_fork);
        const int have = ensure_workers(p, threads - 1) + 1;
        if (have < threads)
            threads = have;
    }
    if (!p || threads < 2) {
        for (int64_t u = 0; u < units; u++)
            fn(ctx, u, 0);
        if (p)
            __atomic_store_n(&p->busy, 0, __ATOMIC_RELEASE);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->threads = threads;
    p->steal = steal;
    const int64_t q = units / threads, r = units % threads;
    for (int64_t j = 0, lo = 0; j < threads; j++) {
        int64_t a = cut ? cut[j] : lo, b = cut ? cut[j + 1] : lo + q + (j < r);
        if (j == threads - 1)   /* fewer workers than the cut was made for: the last takes the rest */
            b = units;
        p->share[j].w = (uint64_t)b << 32 | (uint64_t)a;
        lo = b;
    }
    p->claimed = 1;   /* slot 0: the caller's */
    const uint64_t open = __atomic_load_n(&p->state, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&p->state, open, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    t_in_job = 1;
    const long long t0 = mono_ns();
    const int64_t ran = run_job(p, 0);
    const long long unit_ns = ran > 0 ? (mono_ns() - t0) / ran : 0;
    t_in_job = 0;
    __atomic_store_n(&p->state, open + 1, __ATOMIC_SEQ_CST);
    join(p, unit_ns);
    __atomic_store_n(&p->busy, 0, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------ diagnostics */

typedef struct check_job {
    int32_t *runs, *slots;
    int *held;           /* per slot: threads inside a unit under it */
    int *clashes;        /* a slot held by two threads at once */
    int64_t slow_every;  /* units u % slow_every == 0 spin slow_ns */
    long long slow_ns;
} check_job;

static void check_unit(void *ctx, int64_t u, int slot)
{
    check_job *c = (check_job *)ctx;
    if (__atomic_add_fetch(&c->held[slot], 1, __ATOMIC_ACQ_REL) != 1)
        __atomic_add_fetch(c->clashes, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->runs[u], 1, __ATOMIC_RELAXED);
    c->slots[u] = slot;
    if (c->slow_every > 0 && u % c->slow_every == 0)
        for (const long long end = mono_ns() + c->slow_ns; mono_ns() < end;)
            relax();
    __atomic_sub_fetch(&c->held[slot], 1, __ATOMIC_ACQ_REL);
}

typedef struct trip_job {
    _Alignas(64) int64_t flag;   /* 2i + 1: the caller's i-th ping; 2i + 2: the answer */
    _Alignas(64) int64_t joined; /* the worker is in its unit */
    int rounds, failed;
    long long *ns;               /* per round, the caller's */
} trip_job;

/* Waits until *addr == want, giving up after 100 ms or once the partner
 * failed: 0 on time. */
static int await_value(const int64_t *addr, int64_t want, const int *failed)
{
    long long until = 0;
    for (int i = 0; __atomic_load_n(addr, __ATOMIC_ACQUIRE) != want; i++) {
        relax();
        if ((i & 1023) == 1023) {
            const long long t = mono_ns();
            if (__atomic_load_n(failed, __ATOMIC_ACQUIRE))
                return -1;
            if (!until)
                until = t + 100000000LL;
            else if (t >= until)
                return -1;
        }
    }
    return 0;
}

/* Unit 0 is the caller's (slot 0), unit 1 a worker's: they ping-pong one
 * line. A unit 1 the caller runs (no worker came) finds unit 0 failed. */
static void trip_unit(void *ctx, int64_t u, int slot)
{
    trip_job *j = (trip_job *)ctx;
    if (u == 1) {
        if (slot == 0)
            return;
        __atomic_store_n(&j->joined, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < j->rounds; i++) {
            if (await_value(&j->flag, 2 * (int64_t)i + 1, &j->failed) != 0)
                break;
            __atomic_store_n(&j->flag, 2 * (int64_t)i + 2, __ATOMIC_RELEASE);
        }
        return;
    }
    if (await_value(&j->joined, 1, &j->failed) == 0)
        for (int i = 0; i < j->rounds; i++) {
            const long long t = mono_ns();
            __atomic_store_n(&j->flag, 2 * (int64_t)i + 1, __ATOMIC_RELEASE);
            if (await_value(&j->flag, 2 * (int64_t)i + 2, &j->failed) != 0)
                break;
            j->ns[i] = mono_ns() - t;
            if (i + 1 == j->rounds)
                return;
        }
    __atomic_store_n(&j->failed, 1, __ATOMIC_RELEASE);
}

static int cmp_ll(const void *a, const void *b)
{
    const long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

double cnn_pool_round_trip_ns(int rounds)
{
    if (rounds < 1 || rounds > 1000000 || cnn_num_cores() < 2)
        return -1.0;
    long long *ns = malloc((size_t)rounds * sizeof *ns);
    if (!ns)
        return -1.0;
    double med = -1.0;
    for (int attempt = 0; attempt < 3 && med < 0; attempt++) {   /* the first may wake the worker */
        trip_job j = {.flag = 0, .joined = 0, .rounds = rounds, .failed = 0, .ns = ns};
        const int64_t cut[3] = {0, 1, 2};
        cnn_pool_for(2, 2, cut, 0, trip_unit, &j);
        if (!j.failed) {
            qsort(ns, (size_t)rounds, sizeof *ns, cmp_ll);
            med = (double)ns[rounds / 2];
        }
    }
    free(ns);
    return med;
}

int cnn_pool_check(int threads, int64_t units, const int64_t *cut, int steal, int32_t *runs,
                   int32_t *slots, int64_t slow_every, int64_t slow_us)
{
    int held[CNN_POOL_MAX] = {0}, clashes = 0;
    check_job c = {runs, slots, held, &clashes, slow_every, (long long)slow_us * 1000};
    cnn_pool_for(threads, units, cut, steal, check_unit, &c);
    return clashes;
}
