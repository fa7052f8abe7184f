// im2col / col2im for conv2d and conv_transpose2d on the GPU; the GEMMs between them go to cuBLAS.
// T is float or unsigned short (16-bit patterns: float16 or bfloat16 bits); copies need no arithmetic.
#ifndef CONV_THREADS
#define CONV_THREADS 256
#endif

// x (N, C, H, W) -> col (N, C*R*S, P*Q); zeros where a tap falls in the padding.
template <typename T>
__global__ void __launch_bounds__(CONV_THREADS)
im2col(const T* __restrict__ x, T* __restrict__ col, int N, int C, int H, int W, int R, int S, int P, int Q,
       int stride, int pad, int dil) {
    const long long total = (long long)N * C * R * S * P * Q;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int q = (int)(i % Q), p = (int)((i / Q) % P);
        const long long rest = i / ((long long)P * Q);
        const int crs = (int)(rest % ((long long)C * R * S)), n = (int)(rest / ((long long)C * R * S));
        const int s = crs % S, r = (crs / S) % R, c = crs / (R * S);
        const int h = p * stride - pad + r * dil, w = q * stride - pad + s * dil;
        col[i] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(((long long)n * C + c) * H + h) * W + w] : (T)0;
    }
}

// cols (N, K*R*S, H*W) float32 -> out (N, K, Ho, Wo) float32: each output pixel gathers the taps that land on it
// (the transposed convolution's scatter, written as a gather so no atomics are needed).
extern "C" __global__ void __launch_bounds__(CONV_THREADS)
col2im_gather(const float* __restrict__ cols, float* __restrict__ out, int N, int K, int H, int W, int R, int S,
              int Ho, int Wo, int stride, int pad, int dil) {
    const long long total = (long long)N * K * Ho * Wo;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % Wo), oh = (int)((i / Wo) % Ho);
        const int k = (int)((i / ((long long)Ho * Wo)) % K), n = (int)(i / ((long long)Ho * Wo * K));
        const float* base = cols + ((long long)n * K + k) * R * S * (long long)H * W;
        float acc = 0.f;
        for (int r = 0; r < R; ++r) {
            const int hh = oh + pad - r * dil;
            if (hh < 0 || hh % stride) continue;
            const int ih = hh / stride;
            if (ih >= H) continue;
            for (int s = 0; s < S; ++s) {
                const int ww = ow + pad - s * dil;
                if (ww < 0 || ww % stride) continue;
                const int iw = ww / stride;
                if (iw >= W) continue;
                acc += base[((long long)r * S + s) * H * W + (long long)ih * W + iw];
            }
        }
        out[i] = acc;
    }
}
