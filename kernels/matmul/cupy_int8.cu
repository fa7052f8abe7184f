// int8 GEMM with __dp4a, for shapes cuBLAS's int8 GEMM refuses (a dimension not a multiple of 4).
// C (M, N) int32 = A (M, K) int8 @ B (K, N) int8, exact. A and B^T come as rows of K4 32-bit words (K padded with
// zeros to 4*K4): __dp4a(a, b, acc) adds the 4 byte products of two words to acc. A thread computes one output,
// a block DP4A_TILE x DP4A_TILE of them; each k-step stages a tile of A's and B^T's words in shared memory.
extern "C" __global__ void matmul_i8_dp4a(const int* __restrict__ A4, const int* __restrict__ Bt4,
                                          int* __restrict__ C, int M, int N, int K4) {
  __shared__ int as[DP4A_TILE][DP4A_TILE + 1], bs[DP4A_TILE][DP4A_TILE + 1];
  int tx = threadIdx.x, ty = threadIdx.y;
  int n = blockIdx.x * DP4A_TILE + tx, m = blockIdx.y * DP4A_TILE + ty;
  int acc = 0;
  for (int k0 = 0; k0 < K4; k0 += DP4A_TILE) {
    int ma = blockIdx.y * DP4A_TILE + ty, nb = blockIdx.x * DP4A_TILE + ty;
    as[ty][tx] = (ma < M && k0 + tx < K4) ? A4[(long)ma * K4 + k0 + tx] : 0;
    bs[ty][tx] = (nb < N && k0 + tx < K4) ? Bt4[(long)nb * K4 + k0 + tx] : 0;
    __syncthreads();
    for (int k = 0; k < DP4A_TILE; k++) acc = __dp4a(as[ty][k], bs[tx][k], acc);
    __syncthreads();
  }
  if (m < M && n < N) C[(long)m * N + n] = acc;
}
