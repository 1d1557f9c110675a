// Shared by every kernel source: index types, the epilogue activations
// (the same codes and formulas as csrc/core/internal.h), grid-stride loops.
#pragma once

typedef long long i64;

// NVRTC has no math.h: +infinity by its bits
#define INFINITY __int_as_float(0x7f800000)

// cnn_act codes (csrc/include/cnnengine.h order)
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_CLIP 2
#define ACT_LEAKY 3
#define ACT_ELU 4
#define ACT_SIGMOID 5
#define ACT_TANH 6
#define ACT_SILU 7
#define ACT_HARDSWISH 8
#define ACT_HARDSIGMOID 9
#define ACT_GELU 10
#define ACT_GELU_TANH 11
#define ACT_ERF 12

// alpha/beta: clip min/max, leaky slope, elu alpha, hardsigmoid alpha/beta
__device__ __forceinline__ float apply_act(int act, float v, float alpha, float beta)
{
    switch (act) {
    case ACT_RELU: return v < 0.f ? 0.f : v;   // NaN stays NaN, as the CPU kernels
    case ACT_CLIP: return v < alpha ? alpha : (v > beta ? beta : v);
    case ACT_LEAKY: return v >= 0.f ? v : alpha * v;
    case ACT_ELU: return v > 0.f ? v : alpha * expm1f(v);
    case ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case ACT_TANH: return tanhf(v);
    case ACT_SILU: return v / (1.f + expf(-v));
    case ACT_HARDSWISH: {
        float t = v + 3.f;
        t = t < 0.f ? 0.f : (t > 6.f ? 6.f : t);
        return v * t * (1.f / 6.f);
    }
    case ACT_HARDSIGMOID: {
        float t = alpha * v + beta;
        return t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
    }
    case ACT_GELU: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case ACT_GELU_TANH:
        return 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case ACT_ERF: return erff(v);
    default: return v;
    }
}

// The fused epilogue of conv, dense and affine steps, in the CPU passes' order:
// y = act(acc * scale[c] + shift[c] + residual), scale/shift/residual optional.
struct Epilogue {
    const float *scale;     // per output channel, or null (1)
    const float *shift;     // per output channel (bias, folded BN shift), or null (0)
    const float *residual;  // same shape as the output, or null
    int act;
    float alpha, beta;
};

// not inlined: the GEMM tiles call it 16-32 times each, and one copy keeps
// conv.cu's compile time and code size small
__device__ __noinline__ float epilogue(const Epilogue &ep, float acc, i64 ch, i64 idx)
{
    float v = ep.scale ? acc * ep.scale[ch] : acc;
    if (ep.shift)
        v += ep.shift[ch];
    if (ep.residual)
        v += ep.residual[idx];
    return apply_act(ep.act, v, ep.alpha, ep.beta);
}

#define GRID_LOOP(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

// Up to 8 axes for strided copies and broadcasting (host collapses what it can).
#define MAX_DIMS 8
struct Dims {
    int ndim;
    i64 size[MAX_DIMS];     // output sizes
    i64 sa[MAX_DIMS];       // input a strides in elements per output axis (0: broadcast)
    i64 sb[MAX_DIMS];       // input b strides (binary ops)
};

// Kernel argument structs, passed by value; backend/cuda/launch.py mirrors
// each with ctypes (tests/cuda/test_nvrtc.py checks sizes and offsets).
struct ConvShape {
    int n, c, h, w;      // input
    int k, kh, kw;       // output channels (all groups), kernel
    int sh, sw, dh, dw;  // strides, dilations
    int pt, pl;          // begin pads (the end pads only set oh, ow)
    int groups;
    int oh, ow;
};

struct PoolShape {
    i64 nc;
    int h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow;
    int count_include_pad;
};

struct PadDims {
    int ndim;
    i64 out[MAX_DIMS];     // output sizes
    i64 in[MAX_DIMS];      // input sizes (after any crop)
    i64 begin[MAX_DIMS];   // pad before (>= 0; crops are taken on the host as an offset)
    i64 stride[MAX_DIMS];  // input strides in elements
};
