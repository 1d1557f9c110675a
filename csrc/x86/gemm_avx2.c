#pragma GCC target("avx2,fma")
/* Packed SGEMM for AVX2/FMA: the GEMM engine behind gemm, linear, conv2d and
 * conv_transpose2d (see csrc/ops/gemm.h for the job model).
 *
 * Structure after BLIS (Van Zee & van de Geijn, "BLIS: A Framework for
 * Rapidly Instantiating BLAS Functionality", the five loops around a
 * register-blocked micro-kernel) and ONNX Runtime MLAS (sgemm.cpp +
 * SgemmKernelFma3: B copied into 16-float-wide panels, K in blocks of 256,
 * up to 6 rows of A broadcast against two YMM columns of B):
 *   jc: N in NC-column blocks        (B block KC x NC lives in L3)
 *   pc: K in KC blocks; pack B       (B micro-panels KC x 16, 16 KiB: L1)
 *   ic: M in MC-row blocks; pack A   (A block MC x KC, 144 KiB: L2)
 *   jr, ir: 6x16 micro-kernel, 12 ymm accumulators, 2 B loads and 6
 *           broadcasts per k (cnn_gemm_f32_avx2_6x16, gemm_kernel_avx2.h).
 * The epilogue (alpha/beta, bias, residual, ReLU/Clip) is applied in
 * registers when the tile is stored for the last K block; other activations
 * run per row of the finished MC x NC block (cnn_act_inplace, still in L2).
 * Threads: one OpenMP region over (job x M-part x N-part) tasks, static
 * schedule, pack buffers allocated once per call for the whole team.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/gemm.h"
#include "gemm_kernel_avx2.h"
#include "vmath_avx2.h"
#include "pool.h"

#define MR CNN_GEMM_MR
#define NR CNN_GEMM_NR
#define KC CNN_GEMM_KC
#ifndef MC
#define MC 144
#endif
#ifndef NC
#define NC 2048
#endif

typedef struct tile_store {
    float alpha, beta;
    int first, last;
    int act;            /* 0 none here, 1 relu, 2 clip (lo, hi) */
    float lo, hi;
    const float *bias_row;  /* at the tile's first row, or NULL */
    const float *bias_col;  /* at the tile's first column, or NULL */
    const float *res;       /* at the tile's (0, 0), or NULL */
    int64_t ldr;
} tile_store;

static inline __m256 store_one(const tile_store *s, __m256 acc, const float *c,
                               __m256 brow, const float *bcol, const float *res)
{
    __m256 v = _mm256_mul_ps(acc, _mm256_set1_ps(s->alpha));
    if (s->first) {
        if (s->beta != 0.f)
            v = _mm256_fmadd_ps(_mm256_set1_ps(s->beta), _mm256_loadu_ps(c), v);
    } else {
        v = _mm256_add_ps(v, _mm256_loadu_ps(c));
    }
    if (s->last) {
        if (s->bias_row)
            v = _mm256_add_ps(v, brow);
        if (bcol)
            v = _mm256_add_ps(v, _mm256_loadu_ps(bcol));
        if (res)
            v = _mm256_add_ps(v, _mm256_loadu_ps(res));
        if (s->act == 1)
            v = _mm256_max_ps(_mm256_setzero_ps(), v); /* v second: NaN stays NaN */
        else if (s->act == 2)
            v = _mm256_min_ps(_mm256_set1_ps(s->hi), _mm256_max_ps(_mm256_set1_ps(s->lo), v));
    }
    return v;
}

/* Scalar store of a partial tile (mr x nr) from acc (6 x 16, row-major). */
static void store_edge(const tile_store *s, const float *acc, int64_t mr, int64_t nr,
                       float *c, int64_t ldc)
{
    for (int64_t r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        for (int64_t t = 0; t < nr; t++) {
            float v = s->alpha * acc[r * NR + t];
            if (s->first) {
                if (s->beta != 0.f)
                    v += s->beta * cr[t];
            } else {
                v += cr[t];
            }
            if (s->last) {
                if (s->bias_row)
                    v += s->bias_row[r];
                if (s->bias_col)
                    v += s->bias_col[t];
                if (s->res)
                    v += s->res[r * s->ldr + t];
                if (s->act == 1)
                    v = v < 0.f ? 0.f : v;
                else if (s->act == 2)
                    v = v < s->lo ? s->lo : (v > s->hi ? s->hi : v);
            }
            cr[t] = v;
        }
    }
}

/* C tile (mr x nr, mr <= 6, nr <= 16) op= A panel (kc x 6) * B panel (kc x 16). */
static void micro_6x16(int64_t kc, const float *restrict a, const float *restrict b,
                       float *c, int64_t ldc, int64_t mr, int64_t nr, const tile_store *s)
{
    const cnn_acc_6x16 t = cnn_gemm_f32_avx2_6x16(kc, a, b, NR);
    /* Full-width tiles store in registers whatever mr is: the row tail of
     * M % 6 (M = 16, 32, 40, 80, 112, ... in MobileNet/EfficientNet: up to
     * a quarter of a conv's outputs) must not fall to the scalar path. */
    if (nr == NR) {
        __m256 br = _mm256_setzero_ps();
        const float *bc = s->last ? s->bias_col : NULL;
        const float *res = s->last ? s->res : NULL;
#define ROW(r, x0, x1)                                                              \
        do {                                                                        \
            float *cr = c + (r) * ldc;                                              \
            const float *rr = res ? res + (r) * s->ldr : NULL;                      \
            if (s->last && s->bias_row)                                             \
                br = _mm256_set1_ps(s->bias_row[r]);                                \
            _mm256_storeu_ps(cr, store_one(s, x0, cr, br, bc, rr));                 \
            _mm256_storeu_ps(cr + 8, store_one(s, x1, cr + 8, br, bc ? bc + 8 : NULL, \
                                               rr ? rr + 8 : NULL));                \
        } while (0)
        ROW(0, t.c00, t.c01);
        if (mr > 1) ROW(1, t.c10, t.c11);
        if (mr > 2) ROW(2, t.c20, t.c21);
        if (mr > 3) ROW(3, t.c30, t.c31);
        if (mr > 4) ROW(4, t.c40, t.c41);
        if (mr > 5) ROW(5, t.c50, t.c51);
#undef ROW
        return;
    }
    float acc[MR * NR] __attribute__((aligned(32)));
    _mm256_store_ps(acc + 0, t.c00);  _mm256_store_ps(acc + 8, t.c01);
    _mm256_store_ps(acc + 16, t.c10); _mm256_store_ps(acc + 24, t.c11);
    _mm256_store_ps(acc + 32, t.c20); _mm256_store_ps(acc + 40, t.c21);
    _mm256_store_ps(acc + 48, t.c30); _mm256_store_ps(acc + 56, t.c31);
    _mm256_store_ps(acc + 64, t.c40); _mm256_store_ps(acc + 72, t.c41);
    _mm256_store_ps(acc + 80, t.c50); _mm256_store_ps(acc + 88, t.c51);
    store_edge(s, acc, mr, nr, c, ldc);
}

/* Narrow tail: C tile (mr x nr, nr <= 8) from the same packed panels (only
 * the first 8 columns of the B panel are read). */
static void micro_6x8(int64_t kc, const float *restrict a, const float *restrict b,
                      float *c, int64_t ldc, int64_t mr, int64_t nr, const tile_store *s)
{
    const cnn_acc_6x8 t = cnn_gemm_f32_avx2_6x8(kc, a, b, NR);
    if (nr == 8) {
        __m256 br = _mm256_setzero_ps();
        const float *bc = s->last ? s->bias_col : NULL;
        const float *res = s->last ? s->res : NULL;
#define ROW(r, x0)                                                                  \
        do {                                                                        \
            float *cr = c + (r) * ldc;                                              \
            const float *rr = res ? res + (r) * s->ldr : NULL;                      \
            if (s->last && s->bias_row)                                             \
                br = _mm256_set1_ps(s->bias_row[r]);                                \
            _mm256_storeu_ps(cr, store_one(s, x0, cr, br, bc, rr));                 \
        } while (0)
        ROW(0, t.c0);
        if (mr > 1) ROW(1, t.c1);
        if (mr > 2) ROW(2, t.c2);
        if (mr > 3) ROW(3, t.c3);
        if (mr > 4) ROW(4, t.c4);
        if (mr > 5) ROW(5, t.c5);
#undef ROW
        return;
    }
    float acc[MR * NR] __attribute__((aligned(32)));
    _mm256_store_ps(acc + 0, t.c0);  _mm256_store_ps(acc + 16, t.c1);
    _mm256_store_ps(acc + 32, t.c2); _mm256_store_ps(acc + 48, t.c3);
    _mm256_store_ps(acc + 64, t.c4); _mm256_store_ps(acc + 80, t.c5);
    store_edge(s, acc, mr, nr, c, ldc);
}

/* Rows [i0, i0+mc) x columns [k0, k0+kc) of op(A) -> ceil(mc/6) panels of
 * kc x 6 floats, zero rows past mc. */
static void pack_a(const cnn_gemm_job *j, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                   float *dst)
{
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        float *d = dst + ir * kc;
        if (!j->trans_a) {
            const float *rows[MR];
            for (int64_t r = 0; r < MR; r++)
                rows[r] = r < mr ? j->a + (i0 + ir + r) * j->lda + k0 : NULL;
            if (mr == MR) {
                for (int64_t k = 0; k < kc; k++)
                    for (int r = 0; r < MR; r++)
                        d[k * MR + r] = rows[r][k];
            } else {
                for (int64_t k = 0; k < kc; k++)
                    for (int r = 0; r < MR; r++)
                        d[k * MR + r] = r < mr ? rows[r][k] : 0.f;
            }
        } else {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = j->a + (k0 + k) * j->lda + i0 + ir;
                for (int r = 0; r < MR; r++)
                    d[k * MR + r] = r < mr ? src[r] : 0.f;
            }
        }
    }
}

/* Plain-matrix B packer. Untransposed B is walked row by row (sequential
 * reads that the prefetcher follows) and scattered into the panels. */
static void pack_b_avx2(const cnn_gemm_job *j, int64_t k0, int64_t kc, int64_t n0,
                        int64_t nc, float *dst)
{
    if (j->trans_b) {
        cnn_gemm_pack_b_plain(j, k0, kc, n0, nc, dst);
        return;
    }
    const int64_t full = nc / NR * NR, tail = nc - full;
    for (int64_t k = 0; k < kc; k++) {
        const float *src = j->b + (k0 + k) * j->ldb + n0;
        float *d = dst + k * NR;
        for (int64_t jr = 0; jr < full; jr += NR) {
            _mm256_store_ps(d + jr * kc, _mm256_loadu_ps(src + jr));
            _mm256_store_ps(d + jr * kc + 8, _mm256_loadu_ps(src + jr + 8));
        }
        if (tail) {
            float *dt = d + full * kc;
            int64_t t = 0;
            for (; t < tail; t++)
                dt[t] = src[full + t];
            for (; t < NR; t++)
                dt[t] = 0.f;
        }
    }
}

/* Sigmoid (silu = 0) or SiLU over rows [0, rows) x columns [0, nr <= 16)
 * of c: a strip the micro-kernels just stored (L1), as a separate loop
 * rather than in the kernels' epilogue, where the formula's temporaries
 * and constants would spill around the 12 live accumulators. */
static void act_strip(int silu, float *c, int64_t ldc, int64_t rows, int64_t nr)
{
    if (nr == NR) {
        for (int64_t r = 0; r < rows; r++, c += ldc) {
            __m256 v0 = _mm256_loadu_ps(c), v1 = _mm256_loadu_ps(c + 8);
            _mm256_storeu_ps(c, silu ? cnn_v_silu(v0) : cnn_v_sigmoid(v0));
            _mm256_storeu_ps(c + 8, silu ? cnn_v_silu(v1) : cnn_v_sigmoid(v1));
        }
        return;
    }
    const __m256i m0 = nr >= 8 ? _mm256_set1_epi32(-1) : cnn_tail_mask(nr);
    const __m256i m1 = nr > 8 ? cnn_tail_mask(nr - 8) : _mm256_setzero_si256();
    for (int64_t r = 0; r < rows; r++, c += ldc) {
        __m256 v0 = _mm256_maskload_ps(c, m0);
        _mm256_maskstore_ps(c, m0, silu ? cnn_v_silu(v0) : cnn_v_sigmoid(v0));
        if (nr > 8) {
            __m256 v1 = _mm256_maskload_ps(c + 8, m1);
            _mm256_maskstore_ps(c + 8, m1, silu ? cnn_v_silu(v1) : cnn_v_sigmoid(v1));
        }
    }
}

static void run_task(const cnn_gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                     float *abuf, float *bbuf)
{
    tile_store s;
    s.act = j->ep.act == CNN_ACT_RELU ? 1 : (j->ep.act == CNN_ACT_CLIP ? 2 : 0);
    /* sigmoid/SiLU: over each finished mc x 16 strip, still in L1 */
    const int strip = j->ep.act == CNN_ACT_SIGMOID || j->ep.act == CNN_ACT_SILU;
    const int in_reg = s.act != 0 || j->ep.act == CNN_ACT_NONE || strip;
    s.alpha = j->alpha;
    s.beta = j->beta;
    s.lo = j->ep.alpha;
    s.hi = j->ep.beta;
    s.ldr = j->ldr;
    cnn_pack_b_fn pack_b = j->pack_b ? j->pack_b : pack_b_avx2;
    const int64_t mp = (j->m + MR - 1) / MR * MR;
    /* When the task's rows fit one MC block, each B panel is used by one
     * sweep of row panels only: pack it right before that sweep into one
     * L1-resident slot instead of packing the whole KC x NC block first
     * (a 1-2 MB round trip through L3 for M <= 144, e.g. the 7x7 stem and
     * the 64-channel 3x3 convs). */
    const int fused = m1 - m0 <= MC;
    const int pf_c = fused && j->k <= 64;
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (int64_t pc = 0; pc < j->k; pc += KC) {
            int64_t kc = j->k - pc < KC ? j->k - pc : KC;
            s.first = pc == 0;
            s.last = pc + kc == j->k;
            if (!fused)
                pack_b(j, pc, kc, jc, nc, bbuf);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = m1 - ic < MC ? m1 - ic : MC;
                const float *ablk = abuf;
                if (j->a_packed)  /* ic is a multiple of MR */
                    ablk = j->a_packed + pc * mp + ic * kc;
                else
                    pack_a(j, ic, mc, pc, kc, abuf);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = nc - jr < NR ? nc - jr : NR;
                    s.bias_col = j->bias_col ? j->bias_col + jc + jr : NULL;
                    const float *bpan = bbuf + jr * kc;
                    if (fused) {
                        pack_b(j, pc, kc, jc + jr, nr, bbuf);
                        bpan = bbuf;
                    }
                    /* Short K (1x1 convs of few channels, the stem): the
                     * tiles are stored about as fast as computed, and a cold
                     * C (an activation buffer last used a network ago)
                     * misses on every row of every tile: fetch the rows 4
                     * panels ahead (a read prefetch leaves the line
                     * exclusive, so the store needs no second trip). */
                    if (pf_c && jr + 5 * NR <= nc)
                        for (int64_t i = ic; i < ic + mc; i++)
                            _mm_prefetch((const char *)(j->c + i * j->ldc + jc + jr + 4 * NR),
                                         _MM_HINT_T0);
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        int64_t i = ic + ir;
                        s.bias_row = j->bias_row ? j->bias_row + i : NULL;
                        s.res = j->residual ? j->residual + i * j->ldr + jc + jr : NULL;
                        (nr <= 8 ? micro_6x8 : micro_6x16)(
                            kc, ablk + ir * kc, bpan,
                            j->c + i * j->ldc + jc + jr, j->ldc, mr, nr, &s);
                    }
                    if (strip && s.last)
                        act_strip(j->ep.act == CNN_ACT_SILU, j->c + ic * j->ldc + jc + jr,
                                  j->ldc, mc, nr);
                }
                if (s.last && !in_reg)
                    for (int64_t i = ic; i < ic + mc; i++)
                        cnn_act_inplace(&j->ep, j->c + i * j->ldc + jc, nc);
            }
        }
    }
}

/* K == 0: C = beta * C, then the epilogue. */
static void run_task_k0(const cnn_gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    for (int64_t i = m0; i < m1; i++) {
        float *c = j->c + i * j->ldc;
        for (int64_t t = n0; t < n1; t++)
            c[t] = j->beta != 0.f ? j->beta * c[t] : 0.f;
        cnn_gemm_epilogue_row(j, i, n0, n1 - n0);
    }
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

typedef struct task { int64_t job, m0, m1, n0, n1; } task;

/* Padded width the kernels compute for columns [n0, n1): 16 per full panel,
 * 8 for a tail of <= 8 (micro_6x8). */
static int64_t padded_cols(int64_t n0, int64_t n1)
{
    int64_t w = n1 - n0, full = w / NR * NR, tail = w - full;
    return full + (tail == 0 ? 0 : (tail <= 8 ? 8 : NR));
}

/* Split one job into nt x mt parts (nt * mt == parts): the factorisation
 * whose busiest task has the least estimated time, counting the FMA work of
 * padded tiles plus the traffic a split duplicates (each N part streams all
 * of A, each M part packs all of its B columns). Splitting M when N has few
 * panels (late convs: N = 49, 196; M = 256-512) keeps the threads balanced
 * and halves each thread's weight stream. */
static void choose_split(const cnn_gemm_job *j, int64_t parts, int64_t *nt_out,
                         int64_t *mt_out)
{
    const int64_t pn = (j->n + NR - 1) / NR, pm = (j->m + MR - 1) / MR;
    double best = -1.0;
    *nt_out = 0;   /* none found */
    *mt_out = 0;
    for (int64_t nt = 1; nt <= parts; nt++) {
        if (parts % nt)
            continue;
        int64_t mt = parts / nt;
        if (nt > pn || mt > pm)
            continue;
        int64_t cols = 0;
        for (int64_t b = 0; b < nt; b++) {
            int64_t n0 = b * pn / nt * NR, n1 = (b + 1) * pn / nt * NR;
            if (n1 > j->n) n1 = j->n;
            int64_t c = padded_cols(n0, n1);
            if (c > cols) cols = c;
        }
        int64_t rows = (pm + mt - 1) / mt * MR;
        double cost = (double)rows * (double)cols / 16.0 + 0.25 * (double)rows +
                      (j->pack_b ? 1.0 : 0.5) * (double)cols;
        if (best < 0.0 || cost < best) {
            best = cost;
            *nt_out = nt;
            *mt_out = mt;
        }
    }
}

typedef struct gtask_job {
    const cnn_gemm_job *jobs;
    const task *tasks;
    float *buf;
    int64_t per, asz;
} gtask_job;

/* Task q, packing into the slot's A and B buffers. */
static void gtask_unit(void *ctx, int64_t q, int slot)
{
    const gtask_job *jb = (const gtask_job *)ctx;
    float *abuf = jb->buf + slot * jb->per, *bbuf = abuf + jb->asz;
    const task *t = &jb->tasks[q];
    const cnn_gemm_job *j = &jb->jobs[t->job];
    if (t->m0 >= t->m1 || t->n0 >= t->n1)
        return;
    if (j->k == 0)
        run_task_k0(j, t->m0, t->m1, t->n0, t->n1);
    else
        run_task(j, t->m0, t->m1, t->n0, t->n1, abuf, bbuf);
}

cnn_status cnn_gemm_jobs_f32_avx2(const cnn_gemm_job *jobs, int64_t njobs, int threads)
{
    if (njobs <= 0)
        return CNN_OK;
    if (threads < 1)
        threads = 1;
    /* Parts per job so that the task count is a multiple of the team size
     * (jobs of one call are equal-sized). More, smaller tasks claimed
     * dynamically would let a core slowed by another process take fewer,
     * but the extra splits cost 5-38 % on a quiet machine (512->512 @7x7,
     * 2 threads: 1.38 -> 1.91 ms), so one task per thread it is. */
    int64_t parts = threads / gcd64(njobs, threads);
    if (njobs >= 8 * (int64_t)threads)
        parts = 1;
    int64_t ntasks = 0, maxk = 1, maxm = 1, maxn = 1;
    for (int64_t q = 0; q < njobs; q++) {
        const cnn_gemm_job *j = &jobs[q];
        int64_t pn = (j->n + NR - 1) / NR, nt, mt;
        choose_split(j, parts, &nt, &mt);
        if (nt == 0)
            nt = mt = 1;
        ntasks += nt * mt;
        if (j->k > maxk) maxk = j->k;
        if (j->m > maxm) maxm = j->m;
        if ((pn + nt - 1) / nt * NR > maxn) maxn = (pn + nt - 1) / nt * NR;
    }
    task *tasks = (task *)malloc((size_t)ntasks * sizeof(task));
    if (!tasks)
        return CNN_ERR_OOM;
    ntasks = 0;
    for (int64_t q = 0; q < njobs; q++) {
        const cnn_gemm_job *j = &jobs[q];
        int64_t pn = (j->n + NR - 1) / NR, pm = (j->m + MR - 1) / MR, nt, mt;
        choose_split(j, parts, &nt, &mt);
        if (nt == 0)
            nt = mt = 1;
        for (int64_t a = 0; a < mt; a++) {
            for (int64_t b = 0; b < nt; b++) {
                task *t = &tasks[ntasks++];
                t->job = q;
                t->m0 = a * pm / mt * MR;
                t->m1 = (a + 1) * pm / mt * MR;
                t->n0 = b * pn / nt * NR;
                t->n1 = (b + 1) * pn / nt * NR;
                if (t->m1 > j->m) t->m1 = j->m;
                if (t->n1 > j->n) t->n1 = j->n;
            }
        }
    }
    if (threads > ntasks)
        threads = (int)ntasks;
    int64_t kc = maxk < KC ? maxk : KC;
    int64_t mc = (maxm < MC ? (maxm + MR - 1) / MR * MR : MC);
    int64_t nc = maxn < NC ? maxn : NC;
    int64_t asz = (mc * kc + 15) / 16 * 16;  /* keeps every buffer 64-byte aligned */
    int64_t per = asz + kc * nc;
    float *buf = cnn_alloc_floats(per * threads);
    if (!buf) {
        free(tasks);
        return CNN_ERR_OOM;
    }
    gtask_job jb = {jobs, tasks, buf, per, asz};
    cnn_pool_for(threads, ntasks, NULL, cnn_threads_steal(), gtask_unit, &jb);
    free(buf);
    free(tasks);
    return CNN_OK;
}

#endif
