/* Thread policy: the one place that decides an OpenMP team size.
 *
 * Each call reserves a share of the cores for its duration. With one caller
 * it gets what it asked for (default: all cores); with several Python
 * threads calling at once each gets cores/active, at least one, so the
 * process never runs more busy threads than cores.
 */
#include "cnnengine.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <unistd.h>

static int g_active = 0;

int cnn_num_cores(void)
{
#ifdef _OPENMP
    int n = omp_get_num_procs();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n > 0 ? (int)n : 1;
}

int cnn_threads_begin(int requested)
{
    int cores = cnn_num_cores();
    int active = __atomic_add_fetch(&g_active, 1, __ATOMIC_ACQ_REL);
    int fair = cores / active;
    if (fair < 1)
        fair = 1;
    if (requested <= 0)
        requested = cores;
    return requested < fair ? requested : fair;
}

void cnn_threads_end(void)
{
    __atomic_sub_fetch(&g_active, 1, __ATOMIC_ACQ_REL);
}
