/* Elementwise activations: the driver and the portable scalar kernel. */
#include "internal.h"

void cnn_act_inplace(const cnn_epilogue *ep, float *y, int64_t n)
{
    if (ep->act == CNN_ACT_NONE)
        return;
    for (int64_t i = 0; i < n; i++)
        y[i] = cnn_act_scalar(ep, y[i]);
}
