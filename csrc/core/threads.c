/* Thread policy: the one place that decides an OpenMP team size.
 *
 * Each call reserves a share of the cores for its duration. With one caller
 * it gets what it asked for (default: all cores); with several Python
 * threads calling at once each gets cores/active, at least one, so the
 * process never runs more busy threads than cores.
 *
 * Load-aware: the team is also capped by the cores other processes leave
 * free. A statically scheduled region waits at its barrier for a
 * descheduled worker, so on an oversubscribed machine a smaller team is
 * faster. "Other processes' load" is the smaller of two estimates, so that
 * neither a brief spike nor load that has already stopped costs a thread:
 *  - now: runnable threads machine-wide (/proc/loadavg, every 4 ms at most)
 *    less our own team, in both of the last two samples;
 *  - sustained: CPU time the machine spent busy (/proc/stat, niced time
 *    left out) less this process's own CPU time (all its threads: a
 *    peer runtime's or a GUI's included), over the last >= 100 ms window.
 * CNNENGINE_LOAD_AWARE=0 turns this off; so does a real-time scheduling
 * policy (the runnable threads it preempts are no competition).
 */
#include "cnnengine.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int g_active = 0;
static int g_last_team = 1;  /* its workers may still be spinning */
/* calls, and calls the load-aware cap gave fewer threads than asked
 * (diagnostics: cnnengine._kernels.team_stats) */
static long long g_calls = 0, g_capped = 0;

static long long now_ns(void);

static int g_cores = 0;
static long long g_cores_next_ns = 0;

int cnn_num_cores(void)
{
    /* omp_get_num_procs is a sched_getaffinity syscall (~0.4 us, once per
     * kernel call): re-read every 100 ms, enough to follow an affinity change */
    long long t = now_ns();
    int c = __atomic_load_n(&g_cores, __ATOMIC_RELAXED);
    if (c > 0 && t < __atomic_load_n(&g_cores_next_ns, __ATOMIC_RELAXED))
        return c;
#ifdef _OPENMP
    int n = omp_get_num_procs();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    c = n > 0 ? (int)n : 1;
    __atomic_store_n(&g_cores, c, __ATOMIC_RELAXED);
    __atomic_store_n(&g_cores_next_ns, t + 100000000LL, __ATOMIC_RELAXED);
    return c;
}

#define SAMPLE_NS 4000000LL    /* re-read the run queue at most every 4 ms */
#define WINDOW_NS 100000000LL  /* CPU-time window: 10 USER_HZ ticks per CPU */

static int g_aware = -1;     /* -1: not decided, 0: off, 1: on */
static int g_loadfd = -1;
static int g_statfd = -1;
static long long g_next_ns = 0;
static int g_prev = -1;      /* other runnable threads at the sample before; -1 none yet */
static int g_now16 = 0;      /* ... in both of the last two samples (min), x16 */
static int g_usage16 = -1;   /* others' CPU use over the last window, cores x16; -1 unknown */
static long g_online = 1;    /* CPUs the run queue and /proc/stat count over */
static long g_tick_hz = 100;
static int g_self_niced = 0; /* this process runs at a positive nice value */
/* the open window: when it began, machine busy/total ticks, own CPU ns */
static long long g_win_ns = 0, g_win_busy = 0, g_win_total = 0, g_win_own = 0;

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

static long long own_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return -1;
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

/* Machine-wide CPU ticks from /proc/stat's first line: *busy (all but idle
 * and iowait, and niced time unless this process is niced itself: its own
 * time is counted there) and *total; 0 on success. */
static int cpu_ticks(long long *busy, long long *total)
{
    char buf[256];
    ssize_t n = g_statfd >= 0 ? pread(g_statfd, buf, sizeof buf - 1, 0) : -1;
    if (n <= 4 || strncmp(buf, "cpu ", 4) != 0)
        return -1;
    buf[n] = 0;
    char *p = buf + 4;
    long long v[8] = {0};
    /* user nice system idle iowait irq softirq steal (guest is inside user) */
    for (int i = 0; i < 8; i++) {
        char *end;
        v[i] = strtoll(p, &end, 10);
        if (end == p)
            return -1;
        p = end;
    }
    /* niced time is no competition: the scheduler runs our threads first,
     * and a pool job waits for no worker that has not started (with two
     * nice-10 busy loops a 2-thread team ran ResNet-50 in 40 ms, one
     * thread in 61) */
    *busy = v[0] + v[2] + v[5] + v[6] + v[7] +
            (__atomic_load_n(&g_self_niced, __ATOMIC_RELAXED) ? v[1] : 0);
    *total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    return 0;
}

int cnn_threads_free_cores(int cores, long online, int others_now16, int others_usage16)
{
    int b = others_now16 < 0 ? 0 : others_now16;
    if (others_usage16 >= 0 && others_usage16 < b)
        b = others_usage16;
    /* both counts are machine-wide (a container sees the host's): our
     * cores' part of them, assuming the load spreads evenly */
    if (online < cores)
        online = cores;
    int busy = (int)((b * (long long)cores / online + 8) / 16);
    int free = cores - busy;
    return free < 1 ? 1 : free;
}

static void decide_aware(void)
{
    const char *env = getenv("CNNENGINE_LOAD_AWARE");
    int on = !(env && env[0] == '0') && sched_getscheduler(0) == SCHED_OTHER;
    int fd = on ? open("/proc/loadavg", O_RDONLY | O_CLOEXEC) : -1;
    int expected = -1;
    long hz = sysconf(_SC_CLK_TCK);
    errno = 0;
    const int prio = getpriority(PRIO_PROCESS, 0);
    __atomic_store_n(&g_self_niced, errno == 0 && prio > 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_tick_hz, hz > 0 ? hz : 100, __ATOMIC_RELAXED);
    __atomic_store_n(&g_online, sysconf(_SC_NPROCESSORS_ONLN), __ATOMIC_RELAXED);
    if (fd >= 0) {
        int sfd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
        if (sfd >= 0 && !__atomic_compare_exchange_n(&g_statfd, &expected, sfd, 0,
                                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            close(sfd);
        expected = -1;
        if (!__atomic_compare_exchange_n(&g_loadfd, &expected, fd, 0,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            close(fd);
    }
    __atomic_store_n(&g_aware, __atomic_load_n(&g_loadfd, __ATOMIC_ACQUIRE) >= 0,
                     __ATOMIC_RELEASE);
}

/* Close the CPU-time window when it is old enough: others' use over it. */
static void sample_usage(long long t)
{
    long long busy, total, own = own_cpu_ns();
    if (own < 0 || cpu_ticks(&busy, &total) != 0)
        return;
    long long win = g_win_ns;
    if (win > 0 && total > g_win_total) {
        long online = __atomic_load_n(&g_online, __ATOMIC_RELAXED);
        long hz = __atomic_load_n(&g_tick_hz, __ATOMIC_RELAXED);
        double own_ticks = (double)(own - g_win_own) * hz * 1e-9;
        double others = (double)(busy - g_win_busy) - own_ticks;
        /* ticks -> CPUs busy on average over the window */
        double cores_busy = others * (online > 0 ? online : 1) / (double)(total - g_win_total);
        int u16 = cores_busy <= 0 ? 0 : (int)(16.0 * cores_busy + 0.5);
        __atomic_store_n(&g_usage16, u16, __ATOMIC_RELAXED);
    }
    g_win_ns = t;
    g_win_busy = busy;
    g_win_total = total;
    g_win_own = own;
}

/* Cores not used by other threads; `cores` when unknown. */
static int free_cores(int cores, int callers)
{
    if (__atomic_load_n(&g_aware, __ATOMIC_ACQUIRE) < 0)
        decide_aware();
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
            /* a spike seen by one sample only (a pool spinning down) is no load */
            int seen = g_prev >= 0 && g_prev < others ? g_prev : others;
            g_prev = others;
            __atomic_store_n(&g_now16, 16 * seen, __ATOMIC_RELAXED);
        }
        if (t - g_win_ns >= WINDOW_NS)
            sample_usage(t);
    }
    return cnn_threads_free_cores(cores, __atomic_load_n(&g_online, __ATOMIC_RELAXED),
                                  __atomic_load_n(&g_now16, __ATOMIC_RELAXED),
                                  __atomic_load_n(&g_usage16, __ATOMIC_RELAXED));
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
    __atomic_add_fetch(&g_calls, 1, __ATOMIC_RELAXED);
    if (team < requested && team < cores / active)
        __atomic_add_fetch(&g_capped, 1, __ATOMIC_RELAXED);
    return team;
}

void cnn_threads_stats(long long *calls, long long *capped, int reset, int *load16)
{
    load16[0] = __atomic_load_n(&g_now16, __ATOMIC_RELAXED);
    load16[1] = __atomic_load_n(&g_usage16, __ATOMIC_RELAXED);
    *calls = __atomic_load_n(&g_calls, __ATOMIC_RELAXED);
    *capped = __atomic_load_n(&g_capped, __ATOMIC_RELAXED);
    if (reset) {
        __atomic_store_n(&g_calls, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&g_capped, 0, __ATOMIC_RELAXED);
    }
}

int cnn_threads_steal(void)
{
    static int steal = -1;
    int v = __atomic_load_n(&steal, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *env = getenv("CNNENGINE_STEAL");
        v = !(env && env[0] == '0');
        __atomic_store_n(&steal, v, __ATOMIC_RELAXED);
    }
    return v;
}

void cnn_threads_end(void)
{
    __atomic_sub_fetch(&g_active, 1, __ATOMIC_ACQ_REL);
}
