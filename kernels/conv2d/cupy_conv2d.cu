// col2im for conv_transpose2d on the GPU; the GEMM before it goes to cuBLAS (conv2d runs the implicit GEMMs of
// conv_igemm.cu and conv_sgemm.cu instead). Indices are 32-bit within one image (grid.y is the image; the
// launcher checks the sizes fit): 64-bit division is emulated on the GPU.
#ifndef CONV_THREADS
#define CONV_THREADS 256
#endif

// cols (N, K*R*S, H*W) float32 -> out (N, K, Ho, Wo) float32: each output pixel gathers the taps that land on it
// (the transposed convolution's scatter, written as a gather so no atomics are needed). Grid (blocks, N).
// Stride (sh, sw), padding (ph, pw) and dilation (dh, dw) along H and W; groups only change the GEMM before it.
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
