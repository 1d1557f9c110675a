// Data movement: strided copies (Slice, Transpose, Expand, Split, Concat),
// Pad, Resize, and an index map for whatever else only moves values.
#include "common.cuh"

// y[oy + sum idx_k * sb_k] = x[ox + sum idx_k * sa_k] over d.size: both sides
// strided, so a Concat part lands in its channels and a Slice reads its window
extern "C" __global__ void strided_copy(const Dims d, const float *__restrict__ x, i64 ox, float *__restrict__ y,
                                        i64 oy, i64 n)
{
    GRID_LOOP(i, n) {
        i64 rest = i, ia = ox, ib = oy;
        for (int k = d.ndim - 1; k >= 0; k--) {
            const i64 c = rest % d.size[k];
            rest /= d.size[k];
            ia += c * d.sa[k];
            ib += c * d.sb[k];
        }
        y[ib] = x[ia];
    }
}

#define PAD_CONSTANT 0
#define PAD_REFLECT 1
#define PAD_EDGE 2
#define PAD_WRAP 3

// x (d.in, from xoff on, strides d.stride) -> y (d.out)
extern "C" __global__ void pad_nd(const PadDims d, const float *__restrict__ x, i64 xoff, float *__restrict__ y,
                                  i64 n, int mode, float value)
{
    GRID_LOOP(i, n) {
        i64 rest = i, ia = xoff;
        bool outside = false;
        for (int k = d.ndim - 1; k >= 0; k--) {
            i64 c = rest % d.out[k] - d.begin[k];
            rest /= d.out[k];
            const i64 len = d.in[k];
            if (c < 0 || c >= len) {
                if (mode == PAD_CONSTANT) {
                    outside = true;
                    break;
                } else if (mode == PAD_EDGE) {
                    c = c < 0 ? 0 : len - 1;
                } else if (mode == PAD_WRAP) {
                    c = ((c % len) + len) % len;
                } else {   // reflect without repeating the edge; period 2(len-1)
                    const i64 period = len > 1 ? 2 * (len - 1) : 1;
                    c = ((c % period) + period) % period;
                    if (c >= len)
                        c = period - c;
                }
            }
            ia += c * d.stride[k];
        }
        y[i] = outside ? value : x[ia];
    }
}

// Separable resize of the last two axes: output (oy, ox) of each of nc
// planes is sum_a sum_b wy[oy][a] * wx[ox][b] * x[iy[oy][a]][ix[ox][b]], the
// taps and weights made on the host by the op's own interpolation rule.
extern "C" __global__ void resize2d(const float *__restrict__ x, float *__restrict__ y, i64 nc, int h, int w,
                                    int oh, int ow, const int *__restrict__ iy, const float *__restrict__ wy,
                                    int ty, const int *__restrict__ ix, const float *__restrict__ wx, int tx)
{
    const i64 plane = (i64)oh * ow;
    GRID_LOOP(i, nc * plane) {
        const i64 q = i / plane;
        const int pix = (int)(i - q * plane), oy = pix / ow, ox = pix - oy * ow;
        const float *xp = x + q * h * w;
        float acc = 0.f;
        for (int a = 0; a < ty; a++) {
            const float *row = xp + (i64)iy[oy * ty + a] * w;
            float r = 0.f;
            for (int b = 0; b < tx; b++)
                r = fmaf(wx[ox * tx + b], row[ix[ox * tx + b]], r);
            acc = fmaf(wy[oy * ty + a], r, acc);
        }
        y[i] = acc;
    }
}

// Any other data movement (Split parts, DepthToSpace, Tile, ...): the source
// index of each output element, made on the host by running the op's own
// reference on an index array; a negative index reads `value`.
extern "C" __global__ void gather_map(const float *__restrict__ x, const long long *__restrict__ map,
                                      float *__restrict__ y, i64 n, float value)
{
    GRID_LOOP(i, n) {
        const i64 j = map[i];
        y[i] = j < 0 ? value : x[j];
    }
}
