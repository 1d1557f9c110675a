// 2-D max / average pooling on NCHW, the CPU kernels' rules (csrc/ops/pool.c):
// taps o*s - pad + j*d; padding never wins a max and counts in an average's
// divisor only with count_include_pad, clipped to the padded extent
// [-pt, H + pb). The output size (ceil mode included) is the host's.
#include "common.cuh"

// taps j in [j0, j1) of a window starting at a land inside [lo, hi)
__device__ __forceinline__ void taps(int a, int k, int d, int lo, int hi, int *j0, int *j1)
{
    int b = 0, e = k;
    while (b < k && a + b * d < lo)
        b++;
    while (e > b && a + (e - 1) * d >= hi)
        e--;
    *j0 = b;
    *j1 = e;
}

// x (N*C, H, W) -> y (N*C, OH, OW)
extern "C" __global__ void max_pool2d(const PoolShape s, const float *__restrict__ x, float *__restrict__ y)
{
    const i64 plane = (i64)s.oh * s.ow;
    GRID_LOOP(idx, s.nc * plane) {
        const i64 q = idx / plane;
        const int pix = (int)(idx - q * plane), oy = pix / s.ow, ox = pix - oy * s.ow;
        const int ay = oy * s.sh - s.pt, ax = ox * s.sw - s.pl;
        int i0, i1, j0, j1;
        taps(ay, s.kh, s.dh, 0, s.h, &i0, &i1);
        taps(ax, s.kw, s.dw, 0, s.w, &j0, &j1);
        const float *xp = x + q * s.h * s.w;
        float m = -INFINITY;
        for (int i = i0; i < i1; i++)
            for (int j = j0; j < j1; j++) {
                const float v = xp[(i64)(ay + i * s.dh) * s.w + ax + j * s.dw];
                m = v > m ? v : m;
            }
        y[idx] = m;
    }
}

// x (N*C, H, W) -> y (N*C, OH, OW)
extern "C" __global__ void avg_pool2d(const PoolShape s, const float *__restrict__ x, float *__restrict__ y)
{
    const i64 plane = (i64)s.oh * s.ow;
    GRID_LOOP(idx, s.nc * plane) {
        const i64 q = idx / plane;
        const int pix = (int)(idx - q * plane), oy = pix / s.ow, ox = pix - oy * s.ow;
        const int ay = oy * s.sh - s.pt, ax = ox * s.sw - s.pl;
        int i0, i1, j0, j1, c0, c1, d0, d1;
        taps(ay, s.kh, s.dh, 0, s.h, &i0, &i1);
        taps(ax, s.kw, s.dw, 0, s.w, &j0, &j1);
        if (s.count_include_pad) {
            taps(ay, s.kh, s.dh, -s.pt, s.h + s.pb, &c0, &c1);
            taps(ax, s.kw, s.dw, -s.pl, s.w + s.pr, &d0, &d1);
        } else {
            c0 = i0, c1 = i1, d0 = j0, d1 = j1;
        }
        const float *xp = x + q * s.h * s.w;
        float sum = 0.f;
        for (int i = i0; i < i1; i++)
            for (int j = j0; j < j1; j++)
                sum += xp[(i64)(ay + i * s.dh) * s.w + ax + j * s.dw];
        y[idx] = sum / (float)((c1 - c0) * (d1 - d0));
    }
}
