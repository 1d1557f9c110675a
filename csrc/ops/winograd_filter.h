/* The Winograd F(4x4, 3x3) filter transform U = G g G^T over a panel of up
 * to 16 output channels at once (one SIMD lane per output channel), writing
 * straight into the packed layouts of csrc/ops/winograd.h. Included by the
 * x86 files, whose target pragmas vectorise the lane loops; the scalar
 * oracle is filter_tile in csrc/ops/winograd.c. Private to winograd*.c.
 */
#ifndef CNN_OPS_WINOGRAD_FILTER_H
#define CNN_OPS_WINOGRAD_FILTER_H

#include <stdint.h>
#include <string.h>

#define CNN_WINO_FL 16   /* lanes (output channels) per panel call, at most */

/* G of F(4x4, 3x3) (csrc/ops/winograd.c's header comment). */
static const double cnn_wino_G[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};

/* For c < C and lane l < width (<= 16): dst[xi * xs + c * width + l] =
 * U[xi] of w[l] (the 3x3 filters of output l: w + (l * C + c) * 9), 0 for
 * l >= nl. In double with the oracle's sums in its order, and no FMA
 * contraction (also on the caller that inlines it), so the result is
 * bit-identical to filter_tile. */
#define CNN_WINO_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
static inline CNN_WINO_NO_CONTRACT void
cnn_wino_filter_panel(const float *w, int64_t C, int64_t nl, int64_t width, float *dst,
                      int64_t xs)
{
    double g[9][CNN_WINO_FL], t[6][3][CNN_WINO_FL];
    for (int64_t l = nl; l < CNN_WINO_FL; l++)   /* lanes past K stay 0 */
        for (int j = 0; j < 9; j++)
            g[j][l] = 0.0;
    for (int64_t c = 0; c < C; c++) {
        for (int64_t l = 0; l < nl; l++)
            for (int j = 0; j < 9; j++)
                g[j][l] = (double)w[(l * C + c) * 9 + j];
        for (int i = 0; i < 6; i++)          /* G g */
            for (int j = 0; j < 3; j++)
                for (int64_t l = 0; l < CNN_WINO_FL; l++)
                    t[i][j][l] = cnn_wino_G[i][0] * g[j][l] + cnn_wino_G[i][1] * g[3 + j][l] +
                                 cnn_wino_G[i][2] * g[6 + j][l];
        for (int i = 0; i < 6; i++)          /* (G g) G^T, one row of lanes per xi */
            for (int j = 0; j < 6; j++) {
                float *o = dst + (int64_t)(i * 6 + j) * xs + c * width;
                float r[CNN_WINO_FL];
                for (int64_t l = 0; l < CNN_WINO_FL; l++)
                    r[l] = (float)(t[i][0][l] * cnn_wino_G[j][0] + t[i][1][l] * cnn_wino_G[j][1] +
                                   t[i][2][l] * cnn_wino_G[j][2]);
                if (width == CNN_WINO_FL)    /* the full panel: one vector store */
                    memcpy(o, r, sizeof(r));
                else
                    memcpy(o, r, (size_t)width * sizeof(float));
            }
    }
}

#endif
