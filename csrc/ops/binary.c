/* Broadcasting binary ops: driver (dimension collapsing, row iteration,
 * OpenMP over row chunks) and the scalar row kernel.
 *
 * Shapes reduce to (rows, inner): size-1 dims are dropped, adjacent dims
 * merged where both inputs stay affine, and the last dim becomes the inner
 * run handled by one row call with element strides sa, sb (1 dense, 0 a
 * broadcast value, e.g. a per-channel bias over H*W, other: strided). */
#include "eltwise.h"
#include "pool.h"

void cnn_binary_row_ref(int op, int64_t n, const float *a, int64_t sa,
                        const float *b, int64_t sb, float *y)
{
    switch (op) {
/* constant strides for the common runs let the compiler vectorise them */
#define CNN_BIN_LOOP(OP, SA, SB)                                           \
        for (int64_t i = 0; i < n; i++)                                    \
            y[i] = cnn_binop_scalar(OP, a[i * (SA)], b[i * (SB)]);
#define CNN_BIN_CASE(OP)                                                   \
    case OP:                                                               \
        if (sa == 1 && sb == 1) { CNN_BIN_LOOP(OP, 1, 1) }                 \
        else if (sa == 1 && sb == 0) { CNN_BIN_LOOP(OP, 1, 0) }            \
        else if (sa == 0 && sb == 1) { CNN_BIN_LOOP(OP, 0, 1) }            \
        else { CNN_BIN_LOOP(OP, sa, sb) }                                  \
        break;
    CNN_BIN_CASE(CNN_BIN_ADD)
    CNN_BIN_CASE(CNN_BIN_SUB)
    CNN_BIN_CASE(CNN_BIN_MUL)
    CNN_BIN_CASE(CNN_BIN_DIV)
    CNN_BIN_CASE(CNN_BIN_MAX)
    CNN_BIN_CASE(CNN_BIN_MIN)
    CNN_BIN_CASE(CNN_BIN_POW)
#undef CNN_BIN_CASE
#undef CNN_BIN_LOOP
    default: break;
    }
}

typedef struct bin_job {
    cnn_binary_row_fn row;
    int op, nd, nthr;
    const int64_t *dim, *sa, *sb;
    int64_t inner, isa_, isb, per_row, items;
    const float *a, *b;
    float *y;
} bin_job;

/* Block tid of nthr: a contiguous run of items, walking the rows with an
 * odometer set up once from its first item. */
static void bin_unit(void *ctx, int64_t tid, int slot)
{
    (void)slot;
    const bin_job *jb = (const bin_job *)ctx;
    const cnn_binary_row_fn row = jb->row;
    const int op = jb->op, nd = jb->nd;
    const int64_t *dim = jb->dim, *sa = jb->sa, *sb = jb->sb;
    const int64_t inner = jb->inner, isa_ = jb->isa_, isb = jb->isb, per_row = jb->per_row;
    const float *a = jb->a, *b = jb->b;
    float *y = jb->y;
    const int64_t lo = jb->items * tid / jb->nthr, hi = jb->items * (tid + 1) / jb->nthr;
    if (lo >= hi)
        return;
    int64_t r = lo / per_row, k = lo % per_row;
    int64_t idx[CNN_MAX_DIMS + 1], oa = 0, ob = 0, rem = r;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rem % dim[d];
        rem /= dim[d];
        oa += idx[d] * sa[d];
        ob += idx[d] * sb[d];
    }
    for (int64_t it = lo; it < hi; it++) {
        int64_t off = k * CNN_ELT_CHUNK;
        int64_t len = inner - off < CNN_ELT_CHUNK ? inner - off : CNN_ELT_CHUNK;
        row(op, len, a + oa + off * isa_, isa_, b + ob + off * isb, isb,
            y + r * inner + off);
        if (++k == per_row) {
            k = 0;
            r++;
            for (int d = nd - 2; d >= 0; d--) {
                oa += sa[d];
                ob += sb[d];
                if (++idx[d] < dim[d])
                    break;
                oa -= idx[d] * sa[d];
                ob -= idx[d] * sb[d];
                idx[d] = 0;
            }
        }
    }
}

cnn_status cnn_binary_f32(int op, int ndim, const int64_t *shape,
                          const float *a, const int64_t *a_strides,
                          const float *b, const int64_t *b_strides, float *y,
                          int threads)
{
    if (op < CNN_BIN_ADD || op > CNN_BIN_POW || ndim < 0 || ndim > CNN_MAX_DIMS)
        return CNN_ERR_ARG;
    if (ndim > 0 && (!shape || !a_strides || !b_strides))
        return CNN_ERR_ARG;
    int64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (!cnn_mul_ok(count, shape[d], &count))
            return CNN_ERR_SHAPE;
        if (a_strides[d] < 0 || b_strides[d] < 0)
            return CNN_ERR_ARG;
    }
    if (count == 0)
        return CNN_OK;
    if (!a || !b || !y)
        return CNN_ERR_ARG;

    /* Collapse: drop size-1 dims, merge d-1 into d when both inputs are
     * affine across the pair. Result: nd >= 1 dims, last one innermost. */
    int64_t dim[CNN_MAX_DIMS + 1], sa[CNN_MAX_DIMS + 1], sb[CNN_MAX_DIMS + 1];
    int nd = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1)
            continue;
        if (nd > 0 && sa[nd - 1] == a_strides[d] * shape[d] &&
            sb[nd - 1] == b_strides[d] * shape[d]) {
            dim[nd - 1] *= shape[d];
            sa[nd - 1] = a_strides[d];
            sb[nd - 1] = b_strides[d];
            continue;
        }
        dim[nd] = shape[d];
        sa[nd] = a_strides[d];
        sb[nd] = b_strides[d];
        nd++;
    }
    if (nd == 0) {
        dim[0] = 1;
        sa[0] = sb[0] = 0;
        nd = 1;
    }

    const cnn_binary_row_fn row = cnn_plat()->binary_row;
    const int64_t inner = dim[nd - 1], isa_ = sa[nd - 1], isb = sb[nd - 1];
    const int64_t rows = count / inner;
    const int64_t per_row = (inner + CNN_ELT_CHUNK - 1) / CNN_ELT_CHUNK;
    const int64_t items = rows * per_row;   /* <= count */
    const int team = cnn_team(threads, count >= 2 * CNN_ELT_CHUNK ? items : 1);

    bin_job jb = {row, op, nd, team, dim, sa, sb, inner, isa_, isb, per_row, items, a, b, y};
    cnn_pool_for(team, team, NULL, cnn_threads_steal(), bin_unit, &jb);
    return CNN_OK;
}
