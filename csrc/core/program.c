/* A program: consecutive compiled steps of one plan's arena run in one C
 * call (the executor's fast path), instead of one Python call per step
 * (~1.5 us of Python, memoryviews and GIL per step on Zen 4).
 * Each step takes its team from the thread policy as a lone kernel call
 * would, so the load-aware cap still applies step by step. */
#include <time.h>

#include "cnnengine.h"

cnn_status cnn_program_run(const cnn_program_step *steps, int64_t count, int threads,
                           int64_t *failed)
{
    if (failed)
        *failed = -1;
    if (count < 0 || (count > 0 && !steps))
        return CNN_ERR_ARG;
    for (int64_t i = 0; i < count; i++) {
        int t = cnn_threads_begin(threads);
        cnn_status st = steps[i].fn ? steps[i].fn(steps[i].args, t) : CNN_ERR_ARG;
        cnn_threads_end();
        if (st != CNN_OK) {
            if (failed)
                *failed = i;
            return st;
        }
    }
    return CNN_OK;
}

/* cnn_program_run one step at a time, each step's wall time in seconds[i]
 * (profiling: the cost a step has inside a program, without the Python
 * call around it that a step-by-step run adds). */
cnn_status cnn_program_run_timed(const cnn_program_step *steps, int64_t count, int threads,
                                 int64_t *failed, double *seconds)
{
    if (failed)
        *failed = -1;
    if (count < 0 || (count > 0 && (!steps || !seconds)))
        return CNN_ERR_ARG;
    for (int64_t i = 0; i < count; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        const cnn_status st = cnn_program_run(steps + i, 1, threads, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        seconds[i] = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        if (st != CNN_OK) {
            if (failed)
                *failed = i;
            return st;
        }
    }
    return CNN_OK;
}
