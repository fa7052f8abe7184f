// im2col / col2im for conv2d and conv_transpose2d on the GPU; the GEMMs between them go to cuBLAS.
// T is float or unsigned short (16-bit patterns: float16 or bfloat16 bits); copies need no arithmetic.
// Indices are 32-bit within one image (grid.y is the image; the launcher checks the sizes fit): 64-bit division
// is emulated on the GPU, and the earlier flat-index kernel did several per element written (115 M of them for
// resnet-3x3-b64, which ran at 0.08x torch on the H100: the suspected cause, not yet profiled).
#ifndef CONV_THREADS
#define CONV_THREADS 256
#endif

// x (N, C, H, W) -> col (N, C*R*S, P*Q); zeros where a tap falls in the padding. Grid (blocks, N): a thread
// per (c, p, q) of image blockIdx.y writes that pixel's R*S taps, threads of one tap writing consecutive q.
// Stride, padding and dilation along H (sh, ph, dh) and W (sw, pw, dw). Groups need nothing here: a group's
// channels are consecutive, so its rows of col are too, and the launcher gives each group its own GEMM.
template <typename T>
__global__ void __launch_bounds__(CONV_THREADS)
im2col(const T* __restrict__ x, T* __restrict__ col, int C, int H, int W, int R, int S, int P, int Q,
       int sh, int sw, int ph, int pw, int dh, int dw) {
    const int pq = P * Q, rs = R * S;
    const T* xn = x + (long long)blockIdx.y * C * H * W;
    T* coln = col + (long long)blockIdx.y * C * rs * pq;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < C * pq; i += gridDim.x * blockDim.x) {
        const int c = i / pq, j = i - c * pq, p = j / Q, q = j - p * Q;
        const T* xc = xn + (long long)c * H * W;
        T* out = coln + (long long)c * rs * pq + j;          // row c*R*S + r*S + s, column j
        const int h0 = p * sh - ph, w0 = q * sw - pw;
        for (int r = 0; r < R; ++r) {
            const int h = h0 + r * dh;
            const bool row_in = h >= 0 && h < H;
            for (int s = 0; s < S; ++s) {
                const int w = w0 + s * dw;
                out[(long long)(r * S + s) * pq] = (row_in && w >= 0 && w < W) ? xc[h * W + w] : (T)0;
            }
        }
    }
}

// cols (N, K*R*S, H*W) float32 -> out (N, K, Ho, Wo) float32: each output pixel gathers the taps that land on it
// (the transposed convolution's scatter, written as a gather so no atomics are needed). Grid (blocks, N).
// Stride, padding and dilation along H and W as im2col's; groups only change the GEMM before it.
extern "C" __global__ void __launch_bounds__(CONV_THREADS)
col2im_gather(const float* __restrict__ cols, float* __restrict__ out, int K, int H, int W, int R, int S,
              int Ho, int Wo, int sh, int sw, int ph, int pw, int dh, int dw) {
    const int hw = H * W, howo = Ho * Wo;
    const float* colsn = cols + (long long)blockIdx.y * K * R * S * hw;
    float* outn = out + (long long)blockIdx.y * K * howo;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < K * howo; i += gridDim.x * blockDim.x) {
        const int k = i / howo, j = i - k * howo, oh = j / Wo, ow = j - oh * Wo;
        const float* base = colsn + (long long)k * R * S * hw;
        float acc = 0.f;
        for (int r = 0; r < R; ++r) {
            const int hh = oh + ph - r * dh, ih = hh / sh;  // one division; the remainder from it
            if (hh < 0 || hh != ih * sh || ih >= H) continue;
            for (int s = 0; s < S; ++s) {
                const int ww = ow + pw - s * dw, iw = ww / sw;
                if (ww < 0 || ww != iw * sw || iw >= W) continue;
                acc += base[(long long)(r * S + s) * hw + ih * W + iw];
            }
        }
        outn[i] = acc;
    }
}
