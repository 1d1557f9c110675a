// Reductions along one axis of an (outer, len, inner) view, one warp per
// output: global pooling (inner 1), ReduceMean/Sum/Max/Min/SumSquare/L2 over
// contiguous axes, Softmax/LogSoftmax, LayerNormalization rows.
#include "common.cuh"

#define R_SUM 0
#define R_MEAN 1
#define R_MAX 2
#define R_MIN 3
#define R_SUMSQ 4
#define R_L2 5

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// max that keeps NaN (a NaN anywhere in a row makes the row NaN, as NumPy)
__device__ __forceinline__ float nan_max(float a, float b) { return (a != a || a > b) ? a : b; }
__device__ __forceinline__ float nan_min(float a, float b) { return (a != a || a < b) ? a : b; }

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_min(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = nan_min(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// y[o][i] = reduce_r x[o][r][i]; blocks of 8 warps, warp w of block b takes output b*8 + w
extern "C" __global__ void reduce_axis(const float *__restrict__ x, float *__restrict__ y, i64 outer, i64 len,
                                       i64 inner, int op)
{
    const i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= outer * inner)
        return;
    const i64 o = row / inner, i = row - o * inner;
    const float *xp = x + o * len * inner + i;
    float acc = op == R_MAX ? -INFINITY : (op == R_MIN ? INFINITY : 0.f);
    for (i64 r = lane; r < len; r += 32) {
        const float v = xp[r * inner];
        if (op == R_MAX)
            acc = nan_max(acc, v);
        else if (op == R_MIN)
            acc = nan_min(acc, v);
        else if (op == R_SUMSQ || op == R_L2)
            acc = fmaf(v, v, acc);
        else
            acc += v;
    }
    acc = op == R_MAX ? warp_max(acc) : (op == R_MIN ? warp_min(acc) : warp_sum(acc));
    if (lane == 0) {
        if (op == R_MEAN)
            acc /= (float)len;
        else if (op == R_L2)
            acc = sqrtf(acc);
        y[row] = acc;
    }
}

// Softmax (log_ 1: LogSoftmax) along the middle axis, a warp per row
extern "C" __global__ void softmax_axis(const float *__restrict__ x, float *__restrict__ y, i64 outer, i64 len,
                                        i64 inner, int log_)
{
    const i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= outer * inner)
        return;
    const i64 o = row / inner, i = row - o * inner, base = o * len * inner + i;
    float m = -INFINITY;
    for (i64 r = lane; r < len; r += 32)
        m = nan_max(m, x[base + r * inner]);
    m = warp_max(m);
    float sum = 0.f;
    for (i64 r = lane; r < len; r += 32)
        sum += expf(x[base + r * inner] - m);
    sum = warp_sum(sum);
    const float lse = logf(sum), inv = 1.f / sum;
    for (i64 r = lane; r < len; r += 32) {
        const float v = x[base + r * inner] - m;
        y[base + r * inner] = log_ ? v - lse : expf(v) * inv;
    }
}

// LayerNormalization over the last `len` elements of each row: (x - mean) /
// sqrt(var + eps) * gamma + beta, gamma/beta of length len (beta optional)
extern "C" __global__ void layer_norm(const float *__restrict__ x, float *__restrict__ y, i64 rows, i64 len,
                                      const float *__restrict__ gamma, const float *__restrict__ beta, float eps)
{
    const i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows)
        return;
    const float *xp = x + row * len;
    float s = 0.f;
    for (i64 r = lane; r < len; r += 32)
        s += xp[r];
    const float mean = warp_sum(s) / (float)len;
    float v = 0.f;
    for (i64 r = lane; r < len; r += 32) {
        const float d = xp[r] - mean;
        v = fmaf(d, d, v);
    }
    const float inv = rsqrtf(warp_sum(v) / (float)len + eps);
    for (i64 r = lane; r < len; r += 32) {
        const float out = (xp[r] - mean) * inv * gamma[r];
        y[row * len + r] = beta ? out + beta[r] : out;
    }
}

// cnn.ChannelNorm: layer norm across the C channels of each pixel of NCHW x;
// one thread per pixel, so neighbouring threads read neighbouring addresses.
extern "C" __global__ void channel_norm(const float *__restrict__ x, float *__restrict__ y, i64 n, i64 c, i64 hw,
                                        const float *__restrict__ gamma, const float *__restrict__ beta, float eps)
{
    GRID_LOOP(i, n * hw) {
        const i64 b = i / hw, p = i % hw;
        const float *xp = x + b * c * hw + p;
        float *yp = y + b * c * hw + p;
        float s = 0.f;
        for (i64 k = 0; k < c; ++k)
            s += xp[k * hw];
        const float mean = s / (float)c;
        float v = 0.f;
        for (i64 k = 0; k < c; ++k) {
            const float d = xp[k * hw] - mean;
            v = fmaf(d, d, v);
        }
        const float inv = rsqrtf(v / (float)c + eps);
        for (i64 k = 0; k < c; ++k)
            yp[k * hw] = (xp[k * hw] - mean) * inv * gamma[k] + beta[k];
    }
}
