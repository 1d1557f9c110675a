/* CPU feature detection, the process-wide ISA choice and the platform
 * table (platform.h) it selects.
 *
 * fill() is the one place that tests the ISA: the scalar baseline first,
 * then upgraded for AVX2/FMA, then for AVX-512, as MLAS's MLAS_PLATFORM
 * constructor. One table per level is filled once (the first cnn_plat());
 * the level forced by CNNENGINE_ISA=scalar|ref|avx2|avx512 or cnn_set_isa
 * picks which one cnn_plat() returns, so tests compare paths in one
 * process.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "../ops/channel_norm.h"
#include "../ops/conv2d.h"
#include "../ops/eltwise.h"
#include "../ops/gemm.h"
#include "../ops/global_pool.h"
#include "../ops/nchwc.h"
#include "../ops/pool2d.h"
#include "../ops/rows_gemm.h"
#include "../ops/winograd.h"

cnn_isa cnn_detected_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* libgcc's checks include OS support for the YMM / ZMM state (xgetbv).
     * AVX512: the Skylake-server set (F, DQ, BW, VL), as MLAS's AVX512F
     * path; no later extension is used. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
            return CNN_ISA_AVX512;
        return CNN_ISA_AVX2;
    }
#endif
    return CNN_ISA_REF;
}

/* The kernels of `level` (<= the detected one): baseline, then upgrades. */
static void fill(cnn_platform *t, cnn_isa level)
{
    memset(t, 0, sizeof(*t));
    t->isa = level;
    t->act_row = cnn_act_row_ref;
    t->prelu_row = cnn_prelu_row_ref;
    t->binary_row = cnn_binary_row_ref;
    t->global_sum = cnn_global_sum_ref;
    t->global_max = cnn_global_max_ref;
    t->conv2d = cnn_conv2d_direct_f32_ref;
    t->linear = cnn_linear_f32_ref;
    t->rows_gemm_block = cnn_rows_gemm_block_ref;
    t->max_pool2d = cnn_max_pool2d_f32_ref;
    t->avg_pool2d = cnn_avg_pool2d_f32_ref;
    t->gemm_jobs = cnn_gemm_jobs_f32_ref;
    t->winograd = cnn_winograd_run_f32_ref;
    t->winograd_filter = cnn_wino_filter_ref;
    t->winograd2_nchwc = cnn_winograd2_nchwc_run_ref;
    t->nchw_to_nchwc = cnn_nchw_to_nchwc_ref;
    t->nchwc_to_nchw = cnn_nchwc_to_nchw_ref;
    t->nchwc_gather = cnn_nchwc_gather_ref;
    t->nchwc_channel_norm = cnn_channel_norm_nchwc_ref;
#if defined(__x86_64__)
    if (level >= CNN_ISA_AVX2) {
        t->act_row = cnn_act_row_avx2;
        t->prelu_row = cnn_prelu_row_avx2;
        t->binary_row = cnn_binary_row_avx2;
        t->global_sum = cnn_global_sum_avx2;
        t->global_max = cnn_global_max_avx2;
        t->conv2d = cnn_conv2d_f32_avx2;
        t->conv2d_gemm = cnn_conv2d_gemm_f32_avx2;
        t->conv2d_depthwise = cnn_conv2d_depthwise_f32_avx2;
        t->linear = cnn_linear_f32_avx2;
        t->rows_gemm_block = cnn_rows_gemm_block_avx2;
        t->max_pool2d = cnn_max_pool2d_f32_avx2;
        t->avg_pool2d = cnn_avg_pool2d_f32_avx2;
        t->gemm_jobs = cnn_gemm_jobs_f32_avx2;
        t->gemm_fast = 1;
        t->winograd = cnn_winograd_run_f32_avx2;
        t->fma_peak_gflops = cnn_fma_peak_gflops_avx2;
        t->nchw_to_nchwc = cnn_nchw_to_nchwc_avx2;
        t->nchwc_to_nchw = cnn_nchwc_to_nchw_avx2;
        t->nchwc_global_pool = cnn_global_pool_nchwc_avx2;
        t->nchwc_scale = cnn_nchwc_scale_avx2;
        t->nchwc_affine = cnn_nchwc_affine_avx2;
        t->nchwc_affine_span = cnn_nchwc_affine_span_avx2;
        t->nchwc_pool2d = cnn_pool2d_nchwc_avx2;
        t->nchwc_gather = cnn_nchwc_gather_avx2;
        t->nchwc_channel_norm = cnn_channel_norm_nchwc_avx2;
        t->nchwc_pair_rows = &cnn_nchwc_pair_rows_avx2;
        t->nchwc_depthwise = cnn_conv2d_nchwc_dw_avx2;
        t->nchwc_dw_rows = cnn_nchwc_dw_rows_avx2;
        t->winograd_nchwc = cnn_winograd_nchwc_run_avx2;
        t->winograd2_nchwc = cnn_winograd2_nchwc_run_avx2;
        t->winograd_filter = cnn_wino_filter_avx2;
    }
    if (level >= CNN_ISA_AVX512) {
        t->fma_peak_gflops = cnn_fma_peak_gflops_avx512;
        t->nchwc_wide_rows = &cnn_nchwc_wide_rows_avx512;
        t->nchwc_depthwise = cnn_conv2d_nchwc_dw_avx512;
        t->nchwc_dw_pair_rows = cnn_nchwc_dw_rows_avx512;
        t->act_row = cnn_act_row_avx512;
        t->nchwc_grouped = cnn_nchwc_grouped_avx512;
        t->winograd_nchwc = cnn_winograd_nchwc_run_avx512;
        t->winograd2_nchwc = cnn_winograd2_nchwc_run_avx512;
        t->winograd_filter = cnn_wino_filter_avx512;
        t->nchwc_wpair = 1;
    }
#endif
}

static cnn_platform g_tables[CNN_ISA_AVX512 + 1];
static const cnn_platform *g_plat;     /* the active table; NULL until decided */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Every level the CPU has gets its table; the active one is the detected
 * level unless CNNENGINE_ISA lowers it. */
static void init_tables(void)
{
    const cnn_isa top = cnn_detected_isa();
    for (int level = CNN_ISA_REF; level <= (int)top; level++)
        fill(&g_tables[level], (cnn_isa)level);
    cnn_isa isa = top;
    const char *env = getenv("CNNENGINE_ISA");
    if (env && (!strcmp(env, "scalar") || !strcmp(env, "ref") || !strcmp(env, "portable")))
        isa = CNN_ISA_REF;
    else if (env && !strcmp(env, "avx2") && isa > CNN_ISA_AVX2)
        isa = CNN_ISA_AVX2;
    __atomic_store_n(&g_plat, &g_tables[isa], __ATOMIC_RELEASE);
}

const cnn_platform *cnn_plat(void)
{
    const cnn_platform *t = __atomic_load_n(&g_plat, __ATOMIC_ACQUIRE);
    if (__builtin_expect(t != NULL, 1))
        return t;
    pthread_once(&g_once, init_tables);
    return __atomic_load_n(&g_plat, __ATOMIC_ACQUIRE);
}

cnn_isa cnn_active_isa(void)
{
    return cnn_plat()->isa;
}

cnn_status cnn_set_isa(cnn_isa isa)
{
    if (isa != CNN_ISA_REF && isa != CNN_ISA_AVX2 && isa != CNN_ISA_AVX512)
        return CNN_ERR_ARG;
    if (isa > cnn_detected_isa())
        return CNN_ERR_UNSUPPORTED;
    pthread_once(&g_once, init_tables);
    __atomic_store_n(&g_plat, &g_tables[isa], __ATOMIC_RELEASE);
    return CNN_OK;
}
