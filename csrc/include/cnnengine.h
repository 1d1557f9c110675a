/* cnnengine: the one public C header.
 *
 * Every entry point returns cnn_status and never prints or aborts; the Cython
 * layer turns a status into a cnnengine.Error subclass in one place.
 * Tensors are float32, dense, NCHW unless a prototype says otherwise.
 * `threads` is the exact OpenMP team size to use (the caller applies the
 * thread policy, cnn_threads_begin/end, before calling).
 */
#ifndef CNNENGINE_H
#define CNNENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cnn_status {
    CNN_OK = 0,
    CNN_ERR_ARG = -1,         /* bad argument: null pointer, unknown enum */
    CNN_ERR_SHAPE = -2,       /* inconsistent or impossible shape */
    CNN_ERR_OOM = -3,         /* workspace allocation failed or too large */
    CNN_ERR_UNSUPPORTED = -4  /* valid request this build cannot serve */
} cnn_status;

/* ---------------------------------------------------------------- core */

/* Ordered: a level implies the ones below it. AVX512 runs the AVX2
 * kernels wherever it has no variant of its own. */
typedef enum cnn_isa { CNN_ISA_REF = 0, CNN_ISA_AVX2 = 1, CNN_ISA_AVX512 = 2 } cnn_isa;

cnn_isa cnn_detected_isa(void);     /* best ISA this CPU supports */
cnn_isa cnn_active_isa(void);       /* the level whose kernel table the drivers call */
/* Force an ISA (tests, CNNENGINE_ISA). Fails with CNN_ERR_UNSUPPORTED when
 * the CPU or the build lacks it. */
cnn_status cnn_set_isa(cnn_isa isa);
int cnn_num_cores(void);
/* The L2 cache size per core in bytes (sysconf; 1 MiB where unknown). */
int64_t cnn_l2_bytes(void);
/* Releases what a pack function returned (Winograd filters, a conv pack's
 * weights): packs share huge-page regions (csrc/core/packed.c). */
void cnn_free_packed(void *p);
/* Diagnostics: packs alive in the shared regions, bytes carved there, regions mapped. */
void cnn_packed_stats(int64_t *live, int64_t *carved, int64_t *regions);
/* Thread policy: returns the team size for one call that asked for
 * `requested` (<= 0: all cores), shared fairly among concurrent callers so
 * several Python threads never oversubscribe the cores. Pair with _end. */
int cnn_threads_begin(int requested);
void cnn_threads_end(void);
/* The load-aware cap's rule (tests): free cores for a team given other
 * processes' runnable threads now and their CPU use over the last window,
 * both machine-wide x16 (usage < 0: unknown), over `online` CPUs. */
int cnn_threads_free_cores(int cores, long online, int others_now16, int others_usage16);
/* Diagnostics for the thread pool (csrc/core/pool.h): one job of `units`
 * units, each adding 1 to runs[u] and storing its slot in slots[u]; units
 * u % slow_every == 0 spin slow_us. Returns how often a slot was held by
 * two threads at once (0 when the pool is right). */
int cnn_pool_check(int threads, int64_t units, const int64_t *cut, int steal, int32_t *runs,
                   int32_t *slots, int64_t slow_every, int64_t slow_us);
/* Diagnostics: the round trip of a cache line between the caller and a
 * pool worker, median of `rounds` in ns, or -1 (one core, or the worker
 * did not join within 100 ms). On a shared 2-vCPU guest it tells whether
 * the two vCPUs share an L3 now (55-75 ns on Zen 4) or not (350-400 ns),
 * which moves every 2-thread time (benchmarks/models.py reports it). */
double cnn_pool_round_trip_ns(int rounds);
/* Whether parallel loops steal units at their tail (csrc/core/pool.h);
 * CNNENGINE_STEAL=0 keeps their static splits, for comparison. */
int cnn_threads_steal(void);
/* Diagnostics: team-size calls so far and those the load-aware cap gave
 * fewer threads than asked (and than a fair share); reset != 0 zeroes both.
 * load16: the cap's last estimates of others' load (now, sustained; x16). */
void cnn_threads_stats(long long *calls, long long *capped, int reset, int *load16);
/* A program (csrc/core/program.c): steps bound once to their buffers, run
 * in order, each under its own cnn_threads_begin/end(threads); stops at
 * the first status other than CNN_OK and returns it, its index in *failed
 * (-1 when all ran). fn(args, team) calls one kernel with its arguments. */
typedef cnn_status (*cnn_step_fn)(const void *args, int threads);
typedef struct cnn_program_step {
    cnn_step_fn fn;
    const void *args;
} cnn_program_step;
cnn_status cnn_program_run(const cnn_program_step *steps, int64_t count, int threads,
                           int64_t *failed);
/* cnn_program_run, and each step's wall time in seconds[i] (count doubles). */
cnn_status cnn_program_run_timed(const cnn_program_step *steps, int64_t count, int threads,
                                 int64_t *failed, double *seconds);
/* Largest workspace a kernel may allocate (bytes); guards hostile shapes. */
#define CNN_MAX_WORKSPACE ((size_t)1 << 34)

/* Activation applied in kernel epilogues and by cnn_activation_f32.
 * alpha/beta: CLIP min/max, LEAKY slope, ELU alpha, HARDSIGMOID alpha/beta
 * (y = clamp(alpha*x + beta, 0, 1)). GELU: 0.5 x (1 + erf(x / sqrt 2));
 * GELU_TANH: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); ERF: erf(x). */
typedef enum cnn_act {
    CNN_ACT_NONE = 0, CNN_ACT_RELU, CNN_ACT_CLIP, CNN_ACT_LEAKY,
    CNN_ACT_ELU, CNN_ACT_SIGMOID, CNN_ACT_TANH, CNN_ACT_SILU,
    CNN_ACT_HARDSWISH, CNN_ACT_HARDSIGMOID, CNN_ACT_GELU, CNN_ACT_GELU_TANH,
    CNN_ACT_ERF
} cnn_act;

typedef struct cnn_epilogue {
    int act;            /* cnn_act */
    float alpha, beta;
} cnn_epilogue;

/* ----------------------------------------------------------- convolution */

typedef struct cnn_conv2d_params {
    int64_t n, c, h, w;         /* input */
    int64_t k;                  /* output channels */
    int64_t kh, kw;             /* kernel */
    int64_t sh, sw;             /* stride */
    int64_t dh, dw;             /* dilation */
    int64_t pt, pl, pb, pr;     /* padding: top, left, bottom, right */
    int64_t groups;
    int64_t oh, ow;             /* output, (h + pt + pb - dh*(kh-1) - 1)/sh + 1 */
    cnn_epilogue ep;
} cnn_conv2d_params;

/* x (N,C,H,W), w (K,C/g,kh,kw), bias (K) or NULL, residual (N,K,OH,OW) or
 * NULL -> y (N,K,OH,OW) = act(conv(x,w) + bias + residual). */
cnn_status cnn_conv2d_f32(const cnn_conv2d_params *p, const float *x,
                          const float *w, const float *bias,
                          const float *residual, float *y, int threads);
cnn_status cnn_conv2d_f32_ref(const cnn_conv2d_params *p, const float *x,
                              const float *w, const float *bias,
                              const float *residual, float *y, int threads);

/* Weights prepared once for many calls (packed GEMM panels, Winograd-
 * transformed filters, ...): the engine packs each Conv at plan time, so no
 * run repacks weights. The packed object fixes every field of *p except n
 * (any batch); h, w, oh, ow must match the values it was packed for (an
 * algorithm may depend on them). The object is immutable and may be used
 * from several threads at once. */
typedef struct cnn_conv2d_packed cnn_conv2d_packed;
cnn_status cnn_conv2d_pack_f32(const cnn_conv2d_params *p, const float *w,
                               cnn_conv2d_packed **out);
cnn_status cnn_conv2d_run_packed_f32(const cnn_conv2d_packed *pk,
                                     const cnn_conv2d_params *p,
                                     const float *x, const float *bias,
                                     const float *residual, float *y,
                                     int threads);
void cnn_conv2d_packed_free(cnn_conv2d_packed *pk);
/* Name of the algorithm a packed conv runs ("gemm", "direct_depthwise",
 * "winograd_f4x3", "reference", ...), for profiles and tests. */
const char *cnn_conv2d_packed_algo(const cnn_conv2d_packed *pk);

typedef struct cnn_conv_transpose2d_params {
    int64_t n, c, h, w;         /* input */
    int64_t k;                  /* output channels */
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pt, pl, pb, pr;     /* padding removed from the full output */
    int64_t groups;
    int64_t oh, ow;             /* (h-1)*sh - pt - pb + dh*(kh-1) + 1 + output_padding */
} cnn_conv_transpose2d_params;

/* x (N,C,H,W), w (C,K/g,kh,kw), bias (K) or NULL -> y (N,K,OH,OW). */
cnn_status cnn_conv_transpose2d_f32(const cnn_conv_transpose2d_params *p,
                                    const float *x, const float *w,
                                    const float *bias, float *y, int threads);

/* C (M,N) = alpha * op(A) op(B) + beta * C, row-major with leading dims;
 * op(A) is (M,K), op(B) is (K,N). beta == 0 ignores C's old contents. */
cnn_status cnn_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n,
                        int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c,
                        int64_t ldc, int threads);

/* x (N,IN), w (OUT,IN), bias (OUT) or NULL -> y (N,OUT) = act(x w^T + b). */
cnn_status cnn_linear_f32(int64_t n, int64_t in, int64_t out, const float *x,
                          const float *w, const float *bias,
                          cnn_epilogue ep, float *y, int threads);

/* y (M,N) += alpha * d (M,K) w[rows] (K,N): w (w_rows, N) holds a dense
 * layer's weights as (inputs, outputs); rows[j] in [0, w_rows) picks the
 * weight row of d's column j (cnnengine/occlusion/dense.py). */
cnn_status cnn_rows_gemm_f32(int64_t m, int64_t n, int64_t k, float alpha, const float *d,
                             const int64_t *rows, int64_t w_rows, const float *w, float *y,
                             int threads);
/* y (cols, rows) = x (rows, cols) transposed. */
cnn_status cnn_transpose_f32(int64_t rows, int64_t cols, const float *x, float *y, int threads);

/* --------------------------------------------------------------- pooling */

typedef struct cnn_pool2d_params {
    int64_t n, c, h, w;
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pt, pl, pb, pr;
    int64_t oh, ow;             /* may include a ceil_mode extra window */
    int count_include_pad;      /* avg only: divisor counts padding (clipped
                                   to the padded extent, as PyTorch) */
} cnn_pool2d_params;

/* x (N,C,H,W) -> y (N,C,OH,OW); padding never wins a max. */
cnn_status cnn_max_pool2d_f32(const cnn_pool2d_params *p, const float *x,
                              float *y, int threads);
cnn_status cnn_avg_pool2d_f32(const cnn_pool2d_params *p, const float *x,
                              float *y, int threads);
/* x (NC, HW) -> y (NC). */
cnn_status cnn_global_avg_pool_f32(int64_t nc, int64_t hw, const float *x,
                                   float *y, int threads);
cnn_status cnn_global_max_pool_f32(int64_t nc, int64_t hw, const float *x,
                                   float *y, int threads);

/* ------------------------------------------------ blocked layout NCHW8c
 * A tensor (N, C, H, W) held blocked is (N, ceil(C/8), H, W, 8): channel c
 * of pixel (y, x) sits at [n][c/8][y][x][c%8], so 8 channels of one pixel
 * are one AVX2 vector (oneDNN's nChw8c, MLAS's NCHWc). Lanes past C are
 * padding: the reorder writes zeros there; kernels keep them finite and
 * never let them reach a real channel (their weights are zero).
 * The blocked kernels need AVX2: without it the engine keeps NCHW. */
#define CNN_NCHWC 8
cnn_status cnn_nchw_to_nchwc_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                 float *y, int threads);
cnn_status cnn_nchwc_to_nchw_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                 float *y, int threads);
/* A conv whose output is blocked, weights and bias packed once: groups 1,
 * depthwise (groups == c == k), or groups of whole blocks (c/groups and
 * k/groups multiples of 8: RegNet's group convs). The input is blocked, or
 * plain NCHW with CNN_NCHWC_IN_NCHW (a stem on the RGB image: no reorder of
 * the input). A 3x3/s1/d1 groups-1 conv on blocked input runs Winograd
 * F(4x4, 3x3) or F(2x2, 3x3) where it beats the direct kernel
 * (CNN_NCHWC_WINOGRAD forces F(4x4), CNN_NCHWC_WINOGRAD2 F(2x2),
 * CNN_NCHWC_DIRECT rules both out). Fixes every field of *p but n;
 * residual, if any, is blocked like y. */
#define CNN_NCHWC_IN_NCHW 1
#define CNN_NCHWC_WINOGRAD 2
#define CNN_NCHWC_DIRECT 4
#define CNN_NCHWC_WINOGRAD2 8
typedef struct cnn_conv2d_nchwc cnn_conv2d_nchwc;
cnn_status cnn_conv2d_nchwc_pack_f32(const cnn_conv2d_params *p, const float *w,
                                     const float *bias, int flags,
                                     cnn_conv2d_nchwc **out);
/* The same conv of x scaled per input channel and image first: y =
 * conv(x * s), s blocked (N, ceil(C/8), 8) (squeeze-excitation's gate
 * before the projection 1x1). Runs as conv(x) with the weights scaled per
 * image, K*C multiplies instead of C*H*W. Groups 1, blocked input, direct
 * (not Winograd) only: CNN_ERR_UNSUPPORTED otherwise. */
cnn_status cnn_conv2d_nchwc_run_scaled_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                           const float *x, const float *s,
                                           const float *residual, float *y, int threads);
/* The same conv of act(x * scale + shift) per input channel (a
 * BatchNormalization and activation on the conv's input: DenseNet's
 * norm -> relu -> 1x1), scale and shift blocked (ceil(C/8) * 8 floats, the
 * padding lanes' finite). Applied as each thread reads its pixels, without
 * a pass that writes and rereads the normalised input. A flat 1x1 (stride
 * 1, no padding), groups 1, blocked input only: CNN_ERR_UNSUPPORTED
 * otherwise. */
cnn_status cnn_conv2d_nchwc_run_affine_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                           const float *x, const float *scale,
                                           const float *shift, const cnn_epilogue *act,
                                           const float *residual, float *y, int threads);
/* The same depthwise conv, and also pool (N, ceil(K/8), 8) = the mean of
 * each output channel over the plane, taken from the output as it is made
 * (squeeze-excitation's squeeze). Depthwise only: CNN_ERR_UNSUPPORTED
 * otherwise. */
cnn_status cnn_conv2d_nchwc_run_pooled_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                           const float *x, const float *residual, float *y,
                                           float *pool, int threads);
/* The output tile when the packed conv runs Winograd (4: F(4x4, 3x3), 2:
 * F(2x2, 3x3)), else 0 (direct). */
int cnn_conv2d_nchwc_is_winograd(const cnn_conv2d_nchwc *pk);
cnn_status cnn_conv2d_nchwc_run_f32(const cnn_conv2d_nchwc *pk, int64_t n,
                                    const float *x, const float *residual, float *y,
                                    int threads);
/* The same packed conv over a window of the map it was packed for: g gives
 * the window's input size h, w, its padding pt..pr (how far the window
 * reaches past the map) and output size oh, ow; channels, kernel, stride,
 * dilation and groups must be the pack's (CNN_ERR_ARG otherwise). x holds n
 * blocked (or, for an NCHW-input pack, plain) windows of g's input size. */
cnn_status cnn_conv2d_nchwc_run_window_f32(const cnn_conv2d_nchwc *pk, const cnn_conv2d_params *g,
                                           int64_t n, const float *x, const float *residual,
                                           float *y, int threads);
void cnn_conv2d_nchwc_free(cnn_conv2d_nchwc *pk);
/* An inverted-residual block as one step (MobileNetV2's expand 1x1 ->
 * depthwise -> project 1x1): y = project(dw(expand(x))) + residual, each
 * thread making the expanded and depthwise rows its output rows need a
 * few at a time in its own cache-sized scratch, so that neither value is
 * written whole. expand and project are 1x1, stride 1, unpadded, groups 1
 * packs on blocked input; dw a depthwise pack; each one's channels and map
 * the next one's input. expand may be NULL (the block starts at the
 * depthwise); project may be NULL (it ends there: y is the depthwise
 * output and pool, if not NULL, its plane means as in
 * cnn_conv2d_nchwc_run_pooled_f32; a squeeze-excitation block, whose
 * projection waits for the gate). residual needs project. tile_rows: output
 * rows per tile (0: as many as keep a thread's scratch within half the L2;
 * tests force small tiles). */
cnn_status cnn_nchwc_block_run_f32(const cnn_conv2d_nchwc *expand, const cnn_conv2d_nchwc *dw,
                                   const cnn_conv2d_nchwc *project, int64_t n, const float *x,
                                   const float *residual, float *y, float *pool, int64_t tile_rows,
                                   int threads);
/* The same, scalar, from the packed weights: the oracle of the above. */
cnn_status cnn_nchwc_block_run_ref_f32(const cnn_conv2d_nchwc *expand, const cnn_conv2d_nchwc *dw,
                                       const cnn_conv2d_nchwc *project, int64_t n, const float *x,
                                       const float *residual, float *y, float *pool, int threads);
/* Blocked x (N, ceil(C/8), HW, 8) times blocked s (N, ceil(C/8), 8), one
 * factor per channel (squeeze-and-excitation): y = x * s; y may be x. */
cnn_status cnn_nchwc_scale_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                               const float *s, float *y, int threads);
/* Blocked y = act(x * scale[c] + shift[c]) (inference BatchNormalization
 * that follows no conv, and the activation after it: DenseNet's BN-ReLU);
 * scale and shift hold ceil(C/8)*8 floats; ep NULL means no activation.
 * y may be x. */
cnn_status cnn_nchwc_affine_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                                const float *scale, const float *shift,
                                const cnn_epilogue *ep, float *y, int threads);
/* Max / average pooling on blocked x -> blocked y, the semantics of
 * cnn_max_pool2d_f32 / cnn_avg_pool2d_f32 (p->c counts real channels). */
cnn_status cnn_pool2d_nchwc_f32(const cnn_pool2d_params *p, int is_max, const float *x,
                                float *y, int threads);
/* Blocked x (N, ceil(C/8), HW, 8) -> blocked y (N, ceil(C/8), 8): the mean
 * (is_max = 0) or the max over HW of every lane. */
cnn_status cnn_global_pool_nchwc_f32(int64_t n, int64_t c, int64_t hw, int is_max,
                                     const float *x, float *y, int threads);

/* Blocked y (N, ceil(C_OUT/8), HW, 8) whose channel j is channel src_ch[j]
 * of blocked input src_in[j] (of `count`; input i has cs[i] channels and
 * the same N and HW): a Concat, a channel Slice/Split or a channel shuffle
 * on blocked values, or any composition of them. y's padding lanes become
 * zero; y must not overlap an input. */
cnn_status cnn_nchwc_gather_f32(int64_t n, int64_t hw, int count, const float *const *xs,
                                const int64_t *cs, int64_t c_out, const int32_t *src_in,
                                const int64_t *src_ch, float *y, int threads);

/* ---------------------------------------------------------- normalisation */

/* x (N,C,HW) -> y = (x - mean) / sqrt(var + eps) * gamma + beta, per C. */
cnn_status cnn_batch_norm_f32(int64_t n, int64_t c, int64_t hw,
                              const float *x, const float *mean,
                              const float *var, const float *gamma,
                              const float *beta, float eps, float *y,
                              int threads);

/* Across-channel LRN as AlexNet/ONNX: y = x / (k + alpha/size *
 * sum_{window of `size` channels} x^2)^beta. x (N,C,HW). */
cnn_status cnn_lrn_f32(int64_t n, int64_t c, int64_t hw, int64_t size,
                       float alpha, float beta, float k, const float *x,
                       float *y, int threads);

/* Layer normalisation across the channels of every pixel (LayerNorm over a
 * channels-last axis): x, y (N,C,HW), or blocked (N, ceil(C/8), HW, 8) when
 * `blocked`; gamma, beta C floats (blocked: ceil(C/8)*8, zero past C, so
 * padding lanes become 0); y = (x - mean) / sqrt(var + eps) * gamma + beta
 * with the population variance; y may be x. */
cnn_status cnn_channel_norm_f32(int64_t n, int64_t c, int64_t hw, int blocked, const float *x,
                                const float *gamma, const float *beta, float eps, float *y,
                                int threads);

/* x (OUTER, AXIS, INNER) -> softmax along AXIS. */
cnn_status cnn_softmax_f32(int64_t outer, int64_t axis, int64_t inner,
                           const float *x, float *y, int threads);

/* ------------------------------------------------------------ elementwise */

/* y[i] = act(x[i]); in place allowed (y == x). */
cnn_status cnn_activation_f32(cnn_epilogue ep, int64_t count, const float *x,
                              float *y, int threads);

/* x (N,C,HW), slope (C) -> y = x > 0 ? x : slope[c] * x. */
cnn_status cnn_prelu_f32(int64_t n, int64_t c, int64_t hw, const float *x,
                         const float *slope, float *y, int threads);

typedef enum cnn_binop {
    CNN_BIN_ADD = 0, CNN_BIN_SUB, CNN_BIN_MUL, CNN_BIN_DIV,
    CNN_BIN_MAX, CNN_BIN_MIN, CNN_BIN_POW
} cnn_binop;

#define CNN_MAX_DIMS 8
/* y (shape) = a op b with NumPy broadcasting expressed as element strides
 * (0 on broadcast dims); ndim <= CNN_MAX_DIMS; y is dense. */
cnn_status cnn_binary_f32(int op, int ndim, const int64_t *shape,
                          const float *a, const int64_t *a_strides,
                          const float *b, const int64_t *b_strides, float *y,
                          int threads);

/* Concatenate `count` inputs, each (OUTER, sizes[i], INNER), along the
 * middle axis into y (OUTER, sum(sizes), INNER). */
cnn_status cnn_concat_f32(int count, const float *const *xs,
                          const int64_t *sizes, int64_t outer, int64_t inner,
                          float *y, int threads);

/* ---------------------------------------------------------- pad / resize */

typedef enum cnn_pad_mode { CNN_PAD_CONSTANT = 0, CNN_PAD_REFLECT, CNN_PAD_EDGE } cnn_pad_mode;

/* x (NC,H,W) -> y (NC, H+pt+pb, W+pl+pr); pads >= 0; reflect needs pad < dim. */
cnn_status cnn_pad_f32(int64_t nc, int64_t h, int64_t w, int64_t pt,
                       int64_t pl, int64_t pb, int64_t pr, int mode,
                       float value, const float *x, float *y, int threads);

typedef enum cnn_resize_mode { CNN_RESIZE_NEAREST = 0, CNN_RESIZE_LINEAR } cnn_resize_mode;
/* How an output coordinate maps to an input one (ONNX names). */
typedef enum cnn_resize_coord {
    CNN_COORD_HALF_PIXEL = 0, CNN_COORD_PYTORCH_HALF_PIXEL,
    CNN_COORD_ASYMMETRIC, CNN_COORD_ALIGN_CORNERS
} cnn_resize_coord;
typedef enum cnn_resize_round {
    CNN_ROUND_PREFER_FLOOR = 0, CNN_ROUND_PREFER_CEIL, CNN_ROUND_FLOOR,
    CNN_ROUND_CEIL
} cnn_resize_round;

/* x (NC,H,W) -> y (NC,OH,OW); scale_h/scale_w are output/input ratios used
 * by the coordinate transform (ONNX: given scales, or OH/H). */
cnn_status cnn_resize_f32(int64_t nc, int64_t h, int64_t w, int64_t oh,
                          int64_t ow, int mode, int coord, int rounding,
                          float scale_h, float scale_w, const float *x,
                          float *y, int threads);

#ifdef __cplusplus
}
#endif
#endif /* CNNENGINE_H */
