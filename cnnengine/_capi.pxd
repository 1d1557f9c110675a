# Mirror of csrc/include/cnnengine.h for Cython.
from libc.stdint cimport int32_t, int64_t

cdef extern from "cnnengine.h" nogil:
    ctypedef enum cnn_status:
        CNN_OK
        CNN_ERR_ARG
        CNN_ERR_SHAPE
        CNN_ERR_OOM
        CNN_ERR_UNSUPPORTED

    ctypedef enum cnn_isa:
        CNN_ISA_REF
        CNN_ISA_AVX2
        CNN_ISA_AVX512

    cnn_isa cnn_detected_isa()
    cnn_isa cnn_active_isa()
    cnn_status cnn_set_isa(cnn_isa isa)
    int cnn_num_cores()
    int64_t cnn_l2_bytes()
    void cnn_free_packed(void *p)
    void cnn_packed_stats(int64_t *live, int64_t *carved, int64_t *regions)
    int cnn_threads_begin(int requested)
    void cnn_threads_end()
    int cnn_threads_free_cores(int cores, long online, int others_now16, int others_usage16)
    void cnn_threads_stats(long long *calls, long long *capped, int reset, int *load16)
    int cnn_pool_check(int threads, int64_t units, const int64_t *cut, int steal, int32_t *runs,
                       int32_t *slots, int64_t slow_every, int64_t slow_us) nogil
    double cnn_pool_round_trip_ns(int rounds) nogil

    ctypedef cnn_status (*cnn_step_fn)(const void *args, int threads) noexcept nogil
    ctypedef struct cnn_program_step:
        cnn_step_fn fn
        const void *args
    cnn_status cnn_program_run(const cnn_program_step *steps, int64_t count, int threads,
                               int64_t *failed)
    cnn_status cnn_program_run_timed(const cnn_program_step *steps, int64_t count, int threads,
                                     int64_t *failed, double *seconds)

    ctypedef struct cnn_epilogue:
        int act
        float alpha
        float beta

    ctypedef struct cnn_conv2d_params:
        int64_t n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups, oh, ow
        cnn_epilogue ep

    cnn_status cnn_conv2d_f32(const cnn_conv2d_params *p, const float *x, const float *w,
                              const float *bias, const float *residual, float *y, int threads)
    cnn_status cnn_conv2d_f32_ref(const cnn_conv2d_params *p, const float *x, const float *w,
                                  const float *bias, const float *residual, float *y, int threads)

    ctypedef struct cnn_conv2d_packed:
        pass
    cnn_status cnn_conv2d_pack_f32(const cnn_conv2d_params *p, const float *w,
                                   cnn_conv2d_packed **out)
    cnn_status cnn_conv2d_run_packed_f32(const cnn_conv2d_packed *pk, const cnn_conv2d_params *p,
                                         const float *x, const float *bias, const float *residual,
                                         float *y, int threads)
    void cnn_conv2d_packed_free(cnn_conv2d_packed *pk)
    const char *cnn_conv2d_packed_algo(const cnn_conv2d_packed *pk)

    # blocked layout NCHW8c
    cnn_status cnn_nchw_to_nchwc_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                     float *y, int threads)
    cnn_status cnn_nchwc_to_nchw_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                     float *y, int threads)
    ctypedef struct cnn_conv2d_nchwc:
        pass
    int CNN_NCHWC_IN_NCHW, CNN_NCHWC_WINOGRAD, CNN_NCHWC_DIRECT, CNN_NCHWC_WINOGRAD2
    cnn_status cnn_conv2d_nchwc_pack_f32(const cnn_conv2d_params *p, const float *w,
                                         const float *bias, int flags,
                                         cnn_conv2d_nchwc **out)
    int cnn_conv2d_nchwc_is_winograd(const cnn_conv2d_nchwc *pk)
    cnn_status cnn_conv2d_nchwc_run_scaled_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                               const float *x, const float *s,
                                               const float *residual, float *y, int threads)
    cnn_status cnn_conv2d_nchwc_run_affine_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                               const float *x, const float *scale,
                                               const float *shift, const cnn_epilogue *act,
                                               const float *residual, float *y, int threads)
    cnn_status cnn_conv2d_nchwc_run_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                        const float *x, const float *residual, float *y,
                                        int threads)
    cnn_status cnn_conv2d_nchwc_run_pooled_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                               const float *x, const float *residual, float *y,
                                               float *pool, int threads)
    cnn_status cnn_conv2d_nchwc_run_window_f32(const cnn_conv2d_nchwc *pk, const cnn_conv2d_params *g,
                                               int64_t n, const float *x, const float *residual,
                                               float *y, int threads)
    void cnn_conv2d_nchwc_free(cnn_conv2d_nchwc *pk)
    cnn_status cnn_nchwc_block_run_f32(const cnn_conv2d_nchwc *expand, const cnn_conv2d_nchwc *dw,
                                       const cnn_conv2d_nchwc *project, int64_t n, const float *x,
                                       const float *residual, float *y, float *pool, int64_t tile_rows,
                                       int threads)
    cnn_status cnn_nchwc_block_run_ref_f32(const cnn_conv2d_nchwc *expand, const cnn_conv2d_nchwc *dw,
                                           const cnn_conv2d_nchwc *project, int64_t n, const float *x,
                                           const float *residual, float *y, float *pool, int threads)
    cnn_status cnn_nchwc_scale_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                   const float *s, float *y, int threads)
    cnn_status cnn_nchwc_affine_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                    const float *scale, const float *shift,
                                    const cnn_epilogue *ep, float *y, int threads)
    cnn_status cnn_global_pool_nchwc_f32(int64_t n, int64_t c, int64_t hw, int is_max,
                                         const float *x, float *y, int threads)
    cnn_status cnn_nchwc_gather_f32(int64_t n, int64_t hw, int count, const float *const *xs,
                                    const int64_t *cs, int64_t c_out, const int32_t *src_in,
                                    const int64_t *src_ch, float *y, int threads)

    ctypedef struct cnn_conv_transpose2d_params:
        int64_t n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups, oh, ow

    cnn_status cnn_conv_transpose2d_f32(const cnn_conv_transpose2d_params *p, const float *x,
                                        const float *w, const float *bias, float *y, int threads)

    cnn_status cnn_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                            float alpha, const float *a, int64_t lda, const float *b,
                            int64_t ldb, float beta, float *c, int64_t ldc, int threads)
    cnn_status cnn_linear_f32(int64_t n, int64_t inp, int64_t out, const float *x,
                              const float *w, const float *bias, cnn_epilogue ep,
                              float *y, int threads)
    cnn_status cnn_rows_gemm_f32(int64_t m, int64_t n, int64_t k, float alpha, const float *d,
                                 const int64_t *rows, int64_t w_rows, const float *w, float *y,
                                 int threads)
    cnn_status cnn_transpose_f32(int64_t rows, int64_t cols, const float *x, float *y, int threads)

    ctypedef struct cnn_pool2d_params:
        int64_t n, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow
        int count_include_pad

    cnn_status cnn_max_pool2d_f32(const cnn_pool2d_params *p, const float *x, float *y, int threads)
    cnn_status cnn_avg_pool2d_f32(const cnn_pool2d_params *p, const float *x, float *y, int threads)
    cnn_status cnn_pool2d_nchwc_f32(const cnn_pool2d_params *p, int is_max, const float *x,
                                    float *y, int threads)
    cnn_status cnn_global_avg_pool_f32(int64_t nc, int64_t hw, const float *x, float *y, int threads)
    cnn_status cnn_global_max_pool_f32(int64_t nc, int64_t hw, const float *x, float *y, int threads)

    cnn_status cnn_batch_norm_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                  const float *mean, const float *var, const float *gamma,
                                  const float *beta, float eps, float *y, int threads)
    cnn_status cnn_lrn_f32(int64_t n, int64_t c, int64_t hw, int64_t size, float alpha,
                           float beta, float k, const float *x, float *y, int threads)
    cnn_status cnn_channel_norm_f32(int64_t n, int64_t c, int64_t hw, int blocked, const float *x,
                                    const float *gamma, const float *beta, float eps, float *y,
                                    int threads)
    cnn_status cnn_softmax_f32(int64_t outer, int64_t axis, int64_t inner, const float *x,
                               float *y, int threads)

    cnn_status cnn_activation_f32(cnn_epilogue ep, int64_t count, const float *x, float *y,
                                  int threads)
    cnn_status cnn_prelu_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                             const float *slope, float *y, int threads)
    cnn_status cnn_binary_f32(int op, int ndim, const int64_t *shape, const float *a,
                              const int64_t *a_strides, const float *b,
                              const int64_t *b_strides, float *y, int threads)
    cnn_status cnn_concat_f32(int count, const float *const *xs, const int64_t *sizes,
                              int64_t outer, int64_t inner, float *y, int threads)

    cnn_status cnn_pad_f32(int64_t nc, int64_t h, int64_t w, int64_t pt, int64_t pl,
                           int64_t pb, int64_t pr, int mode, float value, const float *x,
                           float *y, int threads)
    cnn_status cnn_resize_f32(int64_t nc, int64_t h, int64_t w, int64_t oh, int64_t ow,
                              int mode, int coord, int rounding, float scale_h,
                              float scale_w, const float *x, float *y, int threads)
