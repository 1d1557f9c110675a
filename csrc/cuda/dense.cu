// Batched matrix product for MatMul with two run-time operands:
// C[b] (M x N) = A[b] (M x K) . B[b] (K x N), the batch axes broadcast
// through their strides. (Dense layers with constant weights run as a 1x1
// convolution of an N x 1 x 1 image: conv.cu.)
#include "common.cuh"

#define T 16

extern "C" __global__ void matmul_batched(const Dims batch, const float *__restrict__ a,
                                          const float *__restrict__ b, float *__restrict__ c, int m, int n, int k)
{
    __shared__ float As[T][T + 1];
    __shared__ float Bs[T][T + 1];
    i64 rest = blockIdx.z, oa = 0, ob = 0;
    for (int d = batch.ndim - 1; d >= 0; d--) {
        const i64 i = rest % batch.size[d];
        rest /= batch.size[d];
        oa += i * batch.sa[d];
        ob += i * batch.sb[d];
    }
    const float *ap = a + oa, *bp = b + ob;
    float *cp = c + (i64)blockIdx.z * m * n;
    const int row = blockIdx.y * T + threadIdx.y, col = blockIdx.x * T + threadIdx.x;
    float acc = 0.f;
    for (int k0 = 0; k0 < k; k0 += T) {
        const int ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
        As[threadIdx.y][threadIdx.x] = (row < m && ka < k) ? ap[(i64)row * k + ka] : 0.f;
        Bs[threadIdx.y][threadIdx.x] = (kb < k && col < n) ? bp[(i64)kb * n + col] : 0.f;
        __syncthreads();
#pragma unroll
        for (int t = 0; t < T; t++)
            acc = fmaf(As[threadIdx.y][t], Bs[t][threadIdx.x], acc);
        __syncthreads();
    }
    if (row < m && col < n)
        cp[(i64)row * n + col] = acc;
}
