// conv2d / conv_transpose2d helpers, float32, NCHW; stride, padding and dilation along H and W
// (#defines ST_H, ST_W, PAD_H, PAD_W, DIL_H, DIL_W, and the kernel size R, S). Convolutions are lowered onto a GEMM:
//   conv2d:            out_n (K, P*Q)  = W (K, C*R*S)    @ cols_n (C*R*S, P*Q)   cols = im2col(x_n)
//   conv_transpose2d:  cols_n (K*R*S, H*W) = W^T (K*R*S, C) @ x_n (C, H*W)       out_n = col2im(cols_n)

// Input pixel feeding output pixel pq through tap crs, or 0 outside the padded image.
inline float tap(__global const float* x, int C, int H, int W, int Q, int pq, int crs) {
  int c = crs / (R * S), rs = crs % (R * S);
  int y = (pq / Q) * ST_H - PAD_H + (rs / S) * DIL_H, xx = (pq % Q) * ST_W - PAD_W + (rs % S) * DIL_W;
  return (y >= 0 && y < H && xx >= 0 && xx < W) ? x[((long)c * H + y) * W + xx] : 0.0f;
}

// im2col_f32: x (N, C, H, W) -> cols (N, C*R*S, P*Q). Work-item (pq, crs, n).
__kernel void im2col_f32(__global const float* restrict x, __global float* restrict cols,
                         int C, int H, int W, int P, int Q) {
  int pq = get_global_id(0), crs = get_global_id(1), n = get_global_id(2);
  if (pq >= P * Q) return;
  cols[((long)n * C * R * S + crs) * P * Q + pq] = tap(x + (long)n * C * H * W, C, H, W, Q, pq, crs);
}

// pack_im2col_f32: im2col straight into matmul.cl's packed B layout (per n: (ceil(PQ/T), C*R*S, T)).
// Work-item (tile of T output pixels, c, n) writes its R*S x T block of consecutive floats; the index
// arithmetic of a pixel is done once for all its taps.
__kernel void pack_im2col_f32(__global const float* restrict x, __global float* restrict dst,
                              int C, int H, int W, int P, int Q, int T, long d_batch) {
  int tile = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
  __global const float* xc = x + ((long)n * C + c) * H * W;
  __global float* d = dst + n * d_batch + ((long)tile * C + c) * R * S * T;
  for (int i = 0; i < T; i++) {
    int pq = tile * T + i;
    int inside = pq < P * Q;
    int y0 = (pq / Q) * ST_H - PAD_H, x0 = (pq % Q) * ST_W - PAD_W;
    for (int r = 0; r < R; r++) {
      int y = y0 + r * DIL_H;
      int row_in = inside && y >= 0 && y < H;
      for (int s = 0; s < S; s++) {
        int xx = x0 + s * DIL_W;
        d[(r * S + s) * T + i] = (row_in && xx >= 0 && xx < W) ? xc[(long)y * W + xx] : 0.0f;
      }
    }
  }
}

// col2im_f32: cols (N, K*R*S, H*W) -> out (N, K, Ho, Wo), each output gathering its taps. Work-item (oyx, k, n).
__kernel void col2im_f32(__global const float* restrict cols, __global float* restrict out,
                         int K, int H, int W, int Ho, int Wo) {
  int oyx = get_global_id(0), k = get_global_id(1), n = get_global_id(2);
  if (oyx >= Ho * Wo) return;
  int oy = oyx / Wo + PAD_H, ox = oyx % Wo + PAD_W;
  __global const float* col = cols + ((long)n * K + k) * R * S * H * W;
  float acc = 0.0f;
  for (int r = 0; r < R; r++) {
    int ty = oy - r * DIL_H;
    if (ty < 0 || ty % ST_H) continue;
    int iy = ty / ST_H;
    if (iy >= H) continue;
    for (int s = 0; s < S; s++) {
      int tx = ox - s * DIL_W;
      if (tx < 0 || tx % ST_W) continue;
      int ix = tx / ST_W;
      if (ix >= W) continue;
      acc += col[((long)(r * S + s) * H + iy) * W + ix];
    }
  }
  out[((long)n * K + k) * Ho * Wo + oyx] = acc;
}

// direct_grouped_f32: out (N, K, P, Q) = conv2d of x (N, C, H, W) with grouped weights w (K, CG, R, S), for few
// input channels a group (#define CG; KG = K / groups): each output sums its group's CG*R*S taps, no GEMM and
// none of the zero blocks of the dense form. Padded taps multiply 0, as the reference does (0 * inf is NaN).
// Work-item (q, p, n*K + k): consecutive q are consecutive outputs, the dimension the compiler vectorises.
#ifdef CG
__kernel void direct_grouped_f32(__global const float* restrict x, __global const float* restrict w,
                                 __global float* restrict out, int C, int H, int W, int K, int P, int Q) {
  int q = get_global_id(0), p = get_global_id(1), nk = get_global_id(2);
  if (q >= Q) return;
  int n = nk / K, k = nk % K;
  __global const float* xg = x + ((long)n * C + (k / KG) * CG) * H * W;
  __global const float* wk = w + (long)k * CG * R * S;
  float acc = 0.0f;
  for (int c = 0; c < CG; c++) {
    for (int r = 0; r < R; r++) {
      int y = p * ST_H - PAD_H + r * DIL_H;
      for (int s = 0; s < S; s++) {
        int xx = q * ST_W - PAD_W + s * DIL_W;
        float xv = (y >= 0 && y < H && xx >= 0 && xx < W) ? xg[((long)c * H + y) * W + xx] : 0.0f;
        acc += wk[(c * R + r) * S + s] * xv;
      }
    }
  }
  out[((long)nk * P + p) * Q + q] = acc;
}
#endif

// add_bias_f32: out (N, K, PQ) += bias (K,), after the convolution (the GEMMs write out whole). Work-item (pq, k, n).
__kernel void add_bias_f32(__global float* restrict out, __global const float* restrict bias, int K, int PQ) {
  int pq = get_global_id(0), k = get_global_id(1), n = get_global_id(2);
  out[((long)n * K + k) * PQ + pq] += bias[k];
}

// im2col_i8: x (N, C, H, W) int8 -> cols (N, P*Q, C*R*S) int8, a row per output pixel: the int8 GEMMs' operand
// B^T (matmul_int8.cl) or B read with strides (the systolic array). Work-item (crs, pq, n).
__kernel void im2col_i8(__global const char* restrict x, __global char* restrict cols, int C, int H, int W, int P,
                        int Q) {
  int crs = get_global_id(0), pq = get_global_id(1), n = get_global_id(2);
  int c = crs / (R * S), rs = crs % (R * S);
  int y = (pq / Q) * ST_H - PAD_H + (rs / S) * DIL_H, xx = (pq % Q) * ST_W - PAD_W + (rs % S) * DIL_W;
  bool inside = y >= 0 && y < H && xx >= 0 && xx < W;
  cols[((long)n * P * Q + pq) * C * R * S + crs] = inside ? x[(((long)n * C + c) * H + y) * W + xx] : 0;
}
