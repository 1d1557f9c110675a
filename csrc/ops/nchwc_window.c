/* A packed blocked convolution run over a window of the map it was packed
 * for: the same packed weights (direct or Winograd), another input size,
 * padding and output size. Region runs (cnnengine/runtime/regions.py) run
 * each layer on the window a patch changes; the weights are packed once
 * per layer instead of once per window shape.
 */
#include "conv2d.h"
#include "nchwc.h"

cnn_status cnn_conv2d_nchwc_run_window_f32(const cnn_conv2d_nchwc *pk, const cnn_conv2d_params *g,
                                           int64_t n, const float *x, const float *residual,
                                           float *y, int threads)
{
    if (!pk || !g)
        return CNN_ERR_ARG;
    const cnn_conv2d_params *p = &pk->p;
    if (g->c != p->c || g->k != p->k || g->kh != p->kh || g->kw != p->kw || g->sh != p->sh ||
        g->sw != p->sw || g->dh != p->dh || g->dw != p->dw || g->groups != p->groups)
        return CNN_ERR_ARG;
    cnn_conv2d_params q = *p;
    q.n = n;
    q.h = g->h;
    q.w = g->w;
    q.pt = g->pt;
    q.pl = g->pl;
    q.pb = g->pb;
    q.pr = g->pr;
    q.oh = g->oh;
    q.ow = g->ow;
    cnn_status st = cnn_conv2d_check_params(&q);
    if (st != CNN_OK)
        return st;
    /* the kernels index rows and taps in int64 without further checks */
    int64_t t;
    if (!cnn_mul_ok(q.h, q.w, &t) || !cnn_mul_ok(t, CNN_NCHWC, &t) || !cnn_mul_ok(q.oh, q.ow, &t) ||
        !cnn_mul_ok(t, CNN_NCHWC, &t))
        return CNN_ERR_SHAPE;
    cnn_conv2d_nchwc view = *pk;
    view.p = q;
    return cnn_conv2d_nchwc_run_f32(&view, n, x, residual, y, threads);
}
