// Convolutions: implicit GEMM (any stride, dilation, asymmetric padding,
// groups; 1x1 stride-1 as a plain GEMM), its TF32 tensor-core twin,
// depthwise, and transposed convolution. Every one ends in the fused
// epilogue (bias / folded BN, residual, activation); the squeeze-excitation
// gate scales the input channels as they are loaded.
#include "common.cuh"

// Tiles of the GEMM: BM output channels x BN output pixels, BK reduction steps.
#define BM 64
#define BN 64
#define BK 16
#define THREADS 256

// The input pixel read for GEMM row kk (channel, tap) of output pixel
// (iy0, ix0) + taps; 0 in the padding. POINTWISE: a 1x1, stride-1, unpadded conv.
template <bool POINTWISE>
__device__ __forceinline__ float load_x(const ConvShape &s, const float *xn, const float *gn, int kk,
                                        int taps, int iy0, int ix0)
{
    int c = kk, iy = iy0, ix = ix0;
    if (!POINTWISE) {
        c = kk / taps;
        int rs = kk - c * taps;
        int r = rs / s.kw;
        iy += r * s.dh;
        ix += (rs - r * s.kw) * s.dw;
        if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w)
            return 0.f;
    }
    float v = xn[(i64)c * s.h * s.w + (i64)iy * s.w + ix];
    return gn ? v * gn[c] : v;
}

// y[n][g*Kg+m][p] = sum_kk wt[g][kk][m] * X[kk][p]: wt is the weights
// transposed on the host to (groups, C/g*kh*kw, K/g) so a tile loads along m.
template <bool POINTWISE>
__device__ void igemm(const ConvShape s, const float *__restrict__ x, const float *__restrict__ wt,
                      const float *__restrict__ gate, float *__restrict__ y, const Epilogue ep)
{
    __shared__ float As[BK][BM];
    __shared__ float Bs[BK][BN];
    const int tid = threadIdx.x, g = blockIdx.z;
    const int cg = s.c / s.groups, kg = s.k / s.groups, taps = s.kh * s.kw, kd = cg * taps;
    const i64 npix = (i64)s.n * s.oh * s.ow, p0 = (i64)blockIdx.x * BN;
    const int m0 = blockIdx.y * BM;
    // this thread loads column lp of both tiles, rows lk, lk + 4, ...
    const int lp = tid % BN, lk = tid / BN;
    const i64 p = p0 + lp;
    const bool pin = p < npix;
    int bn = 0, oy = 0, ox = 0;
    if (pin) {
        i64 q = p / s.ow;
        ox = (int)(p - q * s.ow);
        bn = (int)(q / s.oh);
        oy = (int)(q - (i64)bn * s.oh);
    }
    const int iy0 = oy * s.sh - s.pt, ix0 = ox * s.sw - s.pl;
    const float *xn = x + ((i64)bn * s.c + (i64)g * cg) * s.h * s.w;
    const float *gn = gate ? gate + (i64)bn * s.c + (i64)g * cg : nullptr;
    const float *wg = wt + (i64)g * kd * kg;
    const int tx = tid % 16, ty = tid / 16;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
            acc[i][j] = 0.f;
    for (int k0 = 0; k0 < kd; k0 += BK) {
#pragma unroll
        for (int i = 0; i < BK / 4; i++) {
            const int kk = k0 + lk + 4 * i, m = m0 + lp;
            As[lk + 4 * i][lp] = (kk < kd && m < kg) ? wg[(i64)kk * kg + m] : 0.f;
            Bs[lk + 4 * i][lp] = (pin && kk < kd) ? load_x<POINTWISE>(s, xn, gn, kk, taps, iy0, ix0) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = As[kk][ty + 16 * i];
                b[i] = Bs[kk][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    const i64 plane = (i64)s.oh * s.ow;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const i64 q = p0 + tx + 16 * j;
        if (q >= npix)
            continue;
        const i64 img = q / plane, pix = q - img * plane;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int m = m0 + ty + 16 * i;
            if (m >= kg)
                continue;
            const i64 ch = (i64)g * kg + m, idx = (img * s.k + ch) * plane + pix;
            y[idx] = epilogue(ep, acc[i][j], ch, idx);
        }
    }
}

// x (N,C,H,W), wt (g, C/g*kh*kw, K/g), gate (N,C) or null -> y (N,K,OH,OW)
extern "C" __global__ void __launch_bounds__(THREADS)
conv2d_igemm(const ConvShape s, const float *x, const float *wt, const float *gate, float *y, const Epilogue ep)
{
    igemm<false>(s, x, wt, gate, y, ep);
}

// x (N,C,H,W), wt (g, C/g, K/g) -> y (N,K,H,W): 1x1, stride 1, no padding
extern "C" __global__ void __launch_bounds__(THREADS)
conv2d_1x1(const ConvShape s, const float *x, const float *wt, const float *gate, float *y, const Epilogue ep)
{
    igemm<true>(s, x, wt, gate, y, ep);
}

// TF32 tensor cores (precision="tf32"): the same tiles through the
// mma.sync m16n8k8 TF32 instruction (inline PTX: NVRTC ships no mma.h),
// 4 warps of 32x32; inputs rounded to TF32, accumulation in FP32.
// Fragment layouts are the PTX ISA's for m16n8k8 .tf32 (gid = lane / 4, tig = lane % 4).
#define TBK 8
#define TTHREADS 128
#define TLD (BM + 8)    // 8 floats of padding: the fragment loads hit 32 distinct banks

__device__ __forceinline__ unsigned to_tf32(float v)
{
    unsigned u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(v));
    return u;
}

template <bool POINTWISE>
__device__ void igemm_tf32(const ConvShape s, const float *__restrict__ x, const float *__restrict__ wt,
                           const float *__restrict__ gate, float *__restrict__ y, const Epilogue ep)
{
    __shared__ float As[TBK][TLD];   // A(m, k) at As[k][m]
    __shared__ float Bs[TBK][TLD];   // B(k, p) at Bs[k][p]
    const int tid = threadIdx.x, g = blockIdx.z, warp = tid / 32, lane = tid % 32;
    const int gid = lane / 4, tig = lane % 4;
    const int cg = s.c / s.groups, kg = s.k / s.groups, taps = s.kh * s.kw, kd = cg * taps;
    const i64 npix = (i64)s.n * s.oh * s.ow, p0 = (i64)blockIdx.x * BN;
    const int m0 = blockIdx.y * BM;
    const int lp = tid % BN, lk = tid / BN;
    const i64 p = p0 + lp;
    const bool pin = p < npix;
    int bn = 0, oy = 0, ox = 0;
    if (pin) {
        i64 q = p / s.ow;
        ox = (int)(p - q * s.ow);
        bn = (int)(q / s.oh);
        oy = (int)(q - (i64)bn * s.oh);
    }
    const int iy0 = oy * s.sh - s.pt, ix0 = ox * s.sw - s.pl;
    const float *xn = x + ((i64)bn * s.c + (i64)g * cg) * s.h * s.w;
    const float *gn = gate ? gate + (i64)bn * s.c + (i64)g * cg : nullptr;
    const float *wg = wt + (i64)g * kd * kg;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int t = 0; t < 4; t++)
                acc[i][j][t] = 0.f;
    for (int k0 = 0; k0 < kd; k0 += TBK) {
#pragma unroll
        for (int i = 0; i < TBK / 2; i++) {
            const int kk = k0 + lk + 2 * i, m = m0 + lp;
            As[lk + 2 * i][lp] = (kk < kd && m < kg) ? wg[(i64)kk * kg + m] : 0.f;
            Bs[lk + 2 * i][lp] = (pin && kk < kd) ? load_x<POINTWISE>(s, xn, gn, kk, taps, iy0, ix0) : 0.f;
        }
        __syncthreads();
        unsigned a[2][4], b[4][2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int r = wm + 16 * i + gid;
            a[i][0] = to_tf32(As[tig][r]);
            a[i][1] = to_tf32(As[tig][r + 8]);
            a[i][2] = to_tf32(As[tig + 4][r]);
            a[i][3] = to_tf32(As[tig + 4][r + 8]);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int c = wn + 8 * j + gid;
            b[j][0] = to_tf32(Bs[tig][c]);
            b[j][1] = to_tf32(Bs[tig + 4][c]);
        }
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                             "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                             : "+f"(acc[i][j][0]), "+f"(acc[i][j][1]), "+f"(acc[i][j][2]), "+f"(acc[i][j][3])
                             : "r"(a[i][0]), "r"(a[i][1]), "r"(a[i][2]), "r"(a[i][3]), "r"(b[j][0]),
                               "r"(b[j][1]));
        __syncthreads();
    }
    const i64 plane = (i64)s.oh * s.ow;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int t = 0; t < 4; t++) {
                // c0, c1: row gid, cols 2*tig, 2*tig+1; c2, c3: row gid + 8
                const int m = m0 + wm + 16 * i + gid + (t >= 2 ? 8 : 0);
                const i64 q = p0 + wn + 8 * j + 2 * tig + (t & 1);
                if (m >= kg || q >= npix)
                    continue;
                const i64 img = q / plane, pix = q - img * plane;
                const i64 ch = (i64)g * kg + m, idx = (img * s.k + ch) * plane + pix;
                y[idx] = epilogue(ep, acc[i][j][t], ch, idx);
            }
}

extern "C" __global__ void __launch_bounds__(TTHREADS)
conv2d_igemm_tf32(const ConvShape s, const float *x, const float *wt, const float *gate, float *y,
                  const Epilogue ep)
{
    igemm_tf32<false>(s, x, wt, gate, y, ep);
}

extern "C" __global__ void __launch_bounds__(TTHREADS)
conv2d_1x1_tf32(const ConvShape s, const float *x, const float *wt, const float *gate, float *y,
                const Epilogue ep)
{
    igemm_tf32<true>(s, x, wt, gate, y, ep);
}

// Depthwise (groups == C, K a multiple of C): one thread per output, the
// weights in their file layout (K, 1, kh, kw); output channel k reads input k / (K/C).
extern "C" __global__ void conv2d_depthwise(const ConvShape s, const float *__restrict__ x,
                                            const float *__restrict__ w, const float *__restrict__ gate,
                                            float *__restrict__ y, const Epilogue ep)
{
    const i64 plane = (i64)s.oh * s.ow, total = (i64)s.n * s.k * plane;
    const int mult = s.k / s.c;
    GRID_LOOP(idx, total) {
        const i64 q = idx / plane;
        const int pix = (int)(idx - q * plane);
        const int k = (int)(q % s.k), img = (int)(q / s.k), ci = k / mult;
        const int oy = pix / s.ow, ox = pix - oy * s.ow;
        const int iy0 = oy * s.sh - s.pt, ix0 = ox * s.sw - s.pl;
        const float *xp = x + ((i64)img * s.c + ci) * s.h * s.w;
        const float *wp = w + (i64)k * s.kh * s.kw;
        float acc = 0.f;
        for (int r = 0; r < s.kh; r++) {
            const int iy = iy0 + r * s.dh;
            if (iy < 0 || iy >= s.h)
                continue;
            for (int t = 0; t < s.kw; t++) {
                const int ix = ix0 + t * s.dw;
                if (ix >= 0 && ix < s.w)
                    acc = fmaf(__ldg(wp + r * s.kw + t), xp[(i64)iy * s.w + ix], acc);
            }
        }
        if (gate)
            acc *= gate[(i64)img * s.c + ci];
        y[idx] = epilogue(ep, acc, k, idx);
    }
}

// Transposed convolution as a gather: output (oy, ox) sums input pixels
// iy = (oy + pt - r*dh) / sh where that divides exactly. Weights (C, K/g, kh, kw);
// negative pads (an output_shape larger than the full result) need no special case.
extern "C" __global__ void conv_transpose2d(const ConvShape s, const float *__restrict__ x,
                                            const float *__restrict__ w, float *__restrict__ y,
                                            const Epilogue ep)
{
    const i64 plane = (i64)s.oh * s.ow, total = (i64)s.n * s.k * plane;
    const int cg = s.c / s.groups, kg = s.k / s.groups;
    GRID_LOOP(idx, total) {
        const i64 q = idx / plane;
        const int pix = (int)(idx - q * plane);
        const int k = (int)(q % s.k), img = (int)(q / s.k), g = k / kg, kl = k - g * kg;
        const int oy = pix / s.ow, ox = pix - oy * s.ow;
        float acc = 0.f;
        for (int r = 0; r < s.kh; r++) {
            const int ty = oy + s.pt - r * s.dh;
            if (ty < 0 || ty % s.sh)
                continue;
            const int iy = ty / s.sh;
            if (iy >= s.h)
                continue;
            for (int t = 0; t < s.kw; t++) {
                const int tx = ox + s.pl - t * s.dw;
                if (tx < 0 || tx % s.sw)
                    continue;
                const int ix = tx / s.sw;
                if (ix >= s.w)
                    continue;
                for (int c = g * cg; c < (g + 1) * cg; c++)
                    acc = fmaf(x[(((i64)img * s.c + c) * s.h + iy) * s.w + ix],
                               __ldg(w + (((i64)c * kg + kl) * s.kh + r) * s.kw + t), acc);
            }
        }
        y[idx] = epilogue(ep, acc, k, idx);
    }
}
