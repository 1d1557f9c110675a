/* Thread policy: the one place that decides an OpenMP team size.
 *
 * Each call reserves a share of the cores for its duration. With one caller
 * it gets what it asked for (default: all cores); with several Python
 * threads calling at once each gets cores/active, at least one, so the
 * process never runs more busy threads than cores.
 *
 * Load-aware: the team is also capped by the cores other processes leave
 * free (kernel run-queue length, /proc/loadavg, sampled every few ms and
 * smoothed). A statically scheduled region waits at its barrier for a
 * descheduled worker, so on an oversubscribed machine a smaller team is
 * faster. CNNENGINE_LOAD_AWARE=0 turns this off; so does a real-time
 * scheduling policy (the runnable threads it preempts are no competition).
 */
#include "cnnengine.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int g_active = 0;
static int g_last_team = 1;  /* its workers may still be spinning */

int cnn_num_cores(void)
{
#ifdef _OPENMP
    int n = omp_get_num_procs();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n > 0 ? (int)n : 1;
}

#define SAMPLE_NS 4000000LL  /* re-read the run queue at most every 4 ms */

static int g_aware = -1;     /* -1: not decided, 0: off, 1: on */
static int g_loadfd = -1;
static long long g_next_ns = 0;
static int g_busy16 = 0;     /* other runnable threads, x16, smoothed */
static long g_online = 1;    /* CPUs the run queue counts over */

static long long now_ns(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Runnable threads system-wide right now ("R/T" field of /proc/loadavg),
 * -1 where unavailable. */
static int run_queue(void)
{
    char buf[128];
    ssize_t n = pread(g_loadfd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = buf;
    for (int field = 0; field < 3; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    return atoi(p);
}

/* Cores not used by other threads, smoothed; `cores` when unknown. */
static int free_cores(int cores, int callers)
{
    if (g_aware < 0) {
        const char *env = getenv("CNNENGINE_LOAD_AWARE");
        int on = !(env && env[0] == '0') && sched_getscheduler(0) == SCHED_OTHER;
        int fd = on ? open("/proc/loadavg", O_RDONLY | O_CLOEXEC) : -1;
        int expected = -1;
        __atomic_store_n(&g_online, sysconf(_SC_NPROCESSORS_ONLN), __ATOMIC_RELAXED);
        if (fd >= 0 && !__atomic_compare_exchange_n(&g_loadfd, &expected, fd, 0,
                                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            close(fd);
        __atomic_store_n(&g_aware, __atomic_load_n(&g_loadfd, __ATOMIC_ACQUIRE) >= 0,
                         __ATOMIC_RELEASE);
    }
    if (!__atomic_load_n(&g_aware, __ATOMIC_ACQUIRE))
        return cores;
    long long t = now_ns();
    long long next = __atomic_load_n(&g_next_ns, __ATOMIC_RELAXED);
    if (t >= next && __atomic_compare_exchange_n(&g_next_ns, &next, t + SAMPLE_NS, 0,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        int running = run_queue();
        if (running > 0) {
            /* ours: this thread and the last team's workers (spinning
             * between regions), one thread per other caller at least */
            int own = callers - 1 + __atomic_load_n(&g_last_team, __ATOMIC_RELAXED);
            int others = running - own;
            if (others < 0)
                others = 0;
            /* the run queue is machine-wide (a container sees the host's):
             * our cores' part of it, assuming the load spreads evenly */
            long online = __atomic_load_n(&g_online, __ATOMIC_RELAXED);
            if (online < cores)
                online = cores;
            int sample16 = (int)(16LL * others * cores / online);
            int b = __atomic_load_n(&g_busy16, __ATOMIC_RELAXED);
            /* new = 3/4 old + 1/4 sample: a few samples, ~16 ms, to react */
            __atomic_store_n(&g_busy16, (3 * b + sample16) / 4, __ATOMIC_RELAXED);
        }
    }
    int busy = (__atomic_load_n(&g_busy16, __ATOMIC_RELAXED) + 8) / 16;
    int free = cores - busy;
    return free < 1 ? 1 : free;
}

int cnn_threads_begin(int requested)
{
    int cores = cnn_num_cores();
    int active = __atomic_add_fetch(&g_active, 1, __ATOMIC_ACQ_REL);
    int free = free_cores(cores, active);
    int fair = free / active;
    if (fair < 1)
        fair = 1;
    if (requested <= 0)
        requested = cores;
    int team = requested < fair ? requested : fair;
    __atomic_store_n(&g_last_team, team, __ATOMIC_RELAXED);
    return team;
}

void cnn_threads_end(void)
{
    __atomic_sub_fetch(&g_active, 1, __ATOMIC_ACQ_REL);
}
