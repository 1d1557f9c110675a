// Elementwise kernels: activations, unary math, binary ops with NumPy
// broadcasting (strides of 0), per-channel affine (BatchNormalization) and
// PRelu, across-channel LRN.
#include "common.cuh"

// x (n) -> y (n) = act(x)
extern "C" __global__ void activation(const float *__restrict__ x, float *__restrict__ y, i64 n, int act,
                                      float alpha, float beta)
{
    GRID_LOOP(i, n) y[i] = apply_act(act, x[i], alpha, beta);
}

// unary op codes (backend/cuda/table.py UNARY)
#define U_ABS 0
#define U_NEG 1
#define U_EXP 2
#define U_LOG 3
#define U_SQRT 4
#define U_RECIPROCAL 5
#define U_FLOOR 6
#define U_CEIL 7
#define U_ERF 8
#define U_SIN 9
#define U_COS 10
#define U_SIGN 11
#define U_ROUND 12
#define U_SOFTPLUS 13
#define U_MISH 14
#define U_SELU 15
#define U_SCALE 16
#define U_GELU_TANH 17

__device__ __forceinline__ float softplus(float v) { return v > 20.f ? v : log1pf(expf(v)); }

// x (n) -> y (n)
extern "C" __global__ void unary(const float *__restrict__ x, float *__restrict__ y, i64 n, int op, float alpha,
                                 float beta)
{
    GRID_LOOP(i, n) {
        const float v = x[i];
        float r;
        switch (op) {
        case U_ABS: r = fabsf(v); break;
        case U_NEG: r = -v; break;
        case U_EXP: r = expf(v); break;
        case U_LOG: r = logf(v); break;
        case U_SQRT: r = sqrtf(v); break;
        case U_RECIPROCAL: r = 1.f / v; break;
        case U_FLOOR: r = floorf(v); break;
        case U_CEIL: r = ceilf(v); break;
        case U_ERF: r = erff(v); break;
        case U_SIN: r = sinf(v); break;
        case U_COS: r = cosf(v); break;
        case U_SIGN: r = v > 0.f ? 1.f : (v < 0.f ? -1.f : v); break;
        case U_ROUND: r = rintf(v); break;     // half to even, as ONNX
        case U_SOFTPLUS: r = softplus(v); break;
        case U_MISH: r = v * tanhf(softplus(v)); break;
        case U_SELU: r = v > 0.f ? beta * v : beta * alpha * expm1f(v); break;   // alpha, gamma
        case U_SCALE: r = alpha * v; break;
        case U_GELU_TANH: r = 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))); break;
        default: r = v;
        }
        y[i] = r;
    }
}

// binary op codes (backend/cuda/table.py BINARY)
#define B_ADD 0
#define B_SUB 1
#define B_MUL 2
#define B_DIV 3
#define B_POW 4
#define B_MAX 5
#define B_MIN 6
#define B_PRELU 7     // a < 0 ? b * a : a (b: the slope)

// y = act(a op b) over d.size, a and b read through their broadcast strides
extern "C" __global__ void binary(const Dims d, const float *__restrict__ a, const float *__restrict__ b,
                                  float *__restrict__ y, i64 n, int op, int act, float alpha, float beta)
{
    GRID_LOOP(i, n) {
        i64 rest = i, ia = 0, ib = 0;
        for (int k = d.ndim - 1; k >= 0; k--) {
            const i64 c = rest % d.size[k];
            rest /= d.size[k];
            ia += c * d.sa[k];
            ib += c * d.sb[k];
        }
        const float u = a[ia], v = b[ib];
        float r;
        switch (op) {
        case B_ADD: r = u + v; break;
        case B_SUB: r = u - v; break;
        case B_MUL: r = u * v; break;
        case B_DIV: r = u / v; break;
        case B_POW: r = powf(u, v); break;
        case B_MAX: r = (u != u || u > v) ? u : v; break;
        case B_MIN: r = (u != u || u < v) ? u : v; break;
        case B_PRELU: r = u < 0.f ? v * u : u; break;
        default: r = u;
        }
        y[i] = apply_act(act, r, alpha, beta);
    }
}

// y = act(x * scale[c] + shift[c]) on (N, C, inner): BatchNormalization at
// inference, folded on the host to one scale and shift per channel
extern "C" __global__ void channel_affine(const float *__restrict__ x, float *__restrict__ y, i64 n, i64 c,
                                          i64 inner, const float *__restrict__ scale,
                                          const float *__restrict__ shift, int act, float alpha, float beta)
{
    GRID_LOOP(i, n * c * inner) {
        const i64 ch = (i / inner) % c;
        y[i] = apply_act(act, fmaf(x[i], scale[ch], shift[ch]), alpha, beta);
    }
}

// ONNX LRN: window [c - (size-1)/2, c + size/2] over channels of (N, C, inner)
extern "C" __global__ void lrn(const float *__restrict__ x, float *__restrict__ y, i64 n, int c, i64 inner,
                               int size, float alpha, float beta, float bias)
{
    GRID_LOOP(i, n * c * inner) {
        const i64 pix = i % inner, q = i / inner;
        const int ch = (int)(q % c);
        const i64 base = (q - ch) * inner + pix;
        const int lo = max(0, ch - (size - 1) / 2), hi = min(c - 1, ch + size / 2);
        float sum = 0.f;
        for (int k = lo; k <= hi; k++) {
            const float v = x[base + (i64)k * inner];
            sum = fmaf(v, v, sum);
        }
        y[i] = x[i] / powf(bias + alpha / (float)size * sum, beta);
    }
}
