/* CPU feature detection and the process-wide ISA choice.
 *
 * Drivers in csrc/ops/ ask cnn_active_isa() and call the csrc/x86/ variant
 * when it says AVX2 or above (an _avx512 one where it exists and the level
 * is AVX512); the portable _ref kernel is always the final else.
 * CNNENGINE_ISA=scalar|ref|avx2|avx512 forces a level (as MLAS's
 * FORCE_GENERIC_ALGORITHMS) so tests can compare paths in one process.
 */
#include "cnnengine.h"

#include <stdlib.h>
#include <string.h>

static int g_isa = -1;  /* -1: not decided yet */

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

cnn_isa cnn_active_isa(void)
{
    int isa = __atomic_load_n(&g_isa, __ATOMIC_ACQUIRE);
    if (isa >= 0)
        return (cnn_isa)isa;
    isa = (int)cnn_detected_isa();
    const char *env = getenv("CNNENGINE_ISA");
    if (env && (!strcmp(env, "scalar") || !strcmp(env, "ref") || !strcmp(env, "portable")))
        isa = CNN_ISA_REF;
    else if (env && !strcmp(env, "avx2") && isa > CNN_ISA_AVX2)
        isa = CNN_ISA_AVX2;
    __atomic_store_n(&g_isa, isa, __ATOMIC_RELEASE);
    return (cnn_isa)isa;
}

cnn_status cnn_set_isa(cnn_isa isa)
{
    if (isa != CNN_ISA_REF && isa != CNN_ISA_AVX2 && isa != CNN_ISA_AVX512)
        return CNN_ERR_ARG;
    if (isa > cnn_detected_isa())
        return CNN_ERR_UNSUPPORTED;
    __atomic_store_n(&g_isa, (int)isa, __ATOMIC_RELEASE);
    return CNN_OK;
}
