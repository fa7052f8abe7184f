// Host emulation of the tensor-core kernels (flash_attention.cu's flash_attn_mma, flash_attention_sm90.cu,
// conv_igemm.cu): pasted in place of kernels/mma_ptx.cuh and the wgmma helpers (kernels/wgmma_ptx.py), so the
// kernels' own text runs on the CPU, their indexing and fragment plumbing included. Every thread of a block is a
// std::thread; __syncthreads is a block barrier; the warp operations (ldmatrix, mma.sync, shuffles) meet at a
// per-warp barrier, each lane posting its operands and computing its results from its lanes' as the PTX ISA
// defines them (layouts: mma_ptx.cuh). wgmma reads its shared-memory operands through the descriptor as the PTX
// ISA defines it (K-major, no swizzle); cp.async copies and wgmma completes at once. Blocks run in turn.
#include <algorithm>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__
#define __shared__
#define __align__(n)
using std::max;
using std::min;

struct dim3_ { unsigned x = 1, y = 1, z = 1; };
struct float4 { float x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float __int_as_float(int i) { return std::bit_cast<float>(i); }
static dim3_ gridDim, blockDim, blockIdx;
static thread_local dim3_ threadIdx;
alignas(16) u16 smem[1 << 17];                // the block's dynamic shared memory (blocks run one at a time)

struct Warp {                                 // where a warp's lanes meet
    std::barrier<> bar{32};
    const u16* row[32];
    u32 reg[32][6];
    float f[32];
};
static Warp* warps;
static std::barrier<>* block_bar;
#define __syncthreads() block_bar->arrive_and_wait()
static inline Warp& my_warp() { return warps[threadIdx.x / 32]; }
static inline int lane_id() { return threadIdx.x % 32; }

inline u32 smem_u32(const void* p) { return (u32)((const char*)p - (const char*)smem); }
inline void cp_async16(u32 dst, const void* src, int src_bytes) {
    char* d = (char*)smem + dst;
    std::memcpy(d, src, src_bytes);
    std::memset(d + src_bytes, 0, 16 - src_bytes);
}
inline void cp_async_commit() {}
template <int N> inline void cp_async_wait() {}

// r[j] from 8x8 matrix j, whose rows lanes 8j..8j+7 address: row g, columns 2t, 2t+1 (trans: column g, rows 2t, 2t+1)
inline void ldmatrix_any(u32 (&r)[4], u32 addr, bool trans) {
    Warp& w = my_warp();
    const int lane = lane_id(), g = lane >> 2, t = lane & 3;
    w.row[lane] = (const u16*)((const char*)smem + addr);
    w.bar.arrive_and_wait();
    for (int j = 0; j < 4; ++j) {
        const u16* const* rows = w.row + 8 * j;
        const u16 lo = trans ? rows[2 * t][g] : rows[g][2 * t], hi = trans ? rows[2 * t + 1][g] : rows[g][2 * t + 1];
        r[j] = lo | (u32)hi << 16;
    }
    w.bar.arrive_and_wait();
}
inline void ldmatrix_x4(u32 (&r)[4], u32 addr) { ldmatrix_any(r, addr, false); }
inline void ldmatrix_x4_trans(u32 (&r)[4], u32 addr) { ldmatrix_any(r, addr, true); }

template <int BF16> inline float to_float(u32 h) {
    return BF16 ? std::bit_cast<float>(h << 16) : (float)std::bit_cast<_Float16>((u16)h);
}
template <int BF16> inline u32 to_half(float x) {  // round to nearest even, as cvt.rn
    if (!BF16) return std::bit_cast<u16>((_Float16)x);
    const u32 b = std::bit_cast<u32>(x);
    return std::isnan(x) ? 0x7fc0u : (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
}
template <int BF16> inline u32 pack2(float lo, float hi) { return to_half<BF16>(lo) | to_half<BF16>(hi) << 16; }

// c += A (16x16) B (16x8), A and B gathered from the lanes' fragments
template <int BF16> inline void mma16816(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    Warp& w = my_warp();
    const int lane = lane_id(), g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; ++i) w.reg[lane][i] = a[i];
    w.reg[lane][4] = b0;
    w.reg[lane][5] = b1;
    w.bar.arrive_and_wait();
    auto half = [](u32 v, int k) { return to_float<BF16>(k % 2 ? v >> 16 : v & 0xffffu); };
    auto A = [&](int i, int k) { return half(w.reg[4 * (i % 8) + (k % 8) / 2][(i >= 8) + 2 * (k >= 8)], k); };
    auto B = [&](int k, int n) { return half(w.reg[4 * n + (k % 8) / 2][4 + (k >= 8)], k); };
    for (int e = 0; e < 4; ++e) {
        float s = 0.f;
        for (int k = 0; k < 16; ++k) s += A(g + 8 * (e >> 1), k) * B(k, 2 * t + (e & 1));
        c[e] += s;
    }
    w.bar.arrive_and_wait();
}

// ---- wgmma (warpgroup MMA, m64nNk16, f32 accumulators) ----------------------------------------------------------
inline void wgmma_fence() {}
inline void wgmma_commit() {}
inline void fence_proxy_async() {}
template <int W, int R> inline void wgmma_wait(float (&)[R]) {}
template <int R> inline void reg_fence(unsigned (&)[R]) {}

// Element (mn, k) of a K-major 16-bit operand in shared memory, located as the matrix descriptor says: 8 x 8 core
// matrices of 128 contiguous bytes (row mn % 8 at 16 bytes a row), cores LBO bytes apart along k, SBO along mn.
template <int BF16> inline float desc_elem(u64 desc, int mn, int k) {
    const u32 start = (desc & 0x3fff) << 4, lbo = ((desc >> 16) & 0x3fff) << 4, sbo = ((desc >> 32) & 0x3fff) << 4;
    if ((desc >> 62) != 0 || ((desc >> 49) & 7) != 0 || ((desc >> 14) & 3) || ((desc >> 30) & 3)) {
        std::fprintf(stderr, "wgmma descriptor %llx: the emulation takes no swizzle, base offset 0\n", desc);
        std::abort();
    }
    const u32 at = start + (mn / 8) * sbo + (k / 8) * lbo + (mn % 8) * 16 + (k % 8) * 2;
    return to_float<BF16>(*(const u16*)((const char*)smem + at));
}

// d[4j + e] += sum_k A[row][k] B[col][k], row = 16 * (warp % 4) + g + 8 * (e / 2), col = 8j + 2t + e % 2
template <int N, class FA, class FB> inline void wgmma_acc(float* d, FA A, FB B) {
    const int lane = lane_id(), g = lane >> 2, t = lane & 3, w = (threadIdx.x / 32) % 4;
    for (int i = 0; i < N / 2; ++i) {
        const int e = i % 4, row = 16 * w + g + 8 * (e >> 1), col = 8 * (i / 4) + 2 * t + (e & 1);
        float s = 0.f;
        for (int k = 0; k < 16; ++k) s += A(row, k) * B(col, k);
        d[i] += s;
    }
}
template <int N, int BF16> inline void wgmma_ss(float (&d)[N / 2], u64 da, u64 db) {
    wgmma_acc<N>(d, [&](int r, int k) { return desc_elem<BF16>(da, r, k); },
                 [&](int c, int k) { return desc_elem<BF16>(db, c, k); });
}
// A from registers: warp w's lanes hold rows 16w..16w+15 in mma.sync's A fragment layout
template <int N, int BF16> inline void wgmma_rs(float (&d)[N / 2], const unsigned (&a)[4], u64 db) {
    Warp& w = my_warp();
    const int lane = lane_id();
    for (int i = 0; i < 4; ++i) w.reg[lane][i] = a[i];
    w.bar.arrive_and_wait();
    auto half = [](u32 v, int k) { return to_float<BF16>(k % 2 ? v >> 16 : v & 0xffffu); };
    auto A = [&](int row, int k) {
        const int i = row % 16;
        return half(w.reg[4 * (i % 8) + (k % 8) / 2][(i >= 8) + 2 * (k >= 8)], k);
    };
    wgmma_acc<N>(d, A, [&](int c, int k) { return desc_elem<BF16>(db, c, k); });
    w.bar.arrive_and_wait();
}

inline float __shfl_xor_sync(unsigned, float v, int mask) {
    Warp& w = my_warp();
    const int lane = lane_id();
    w.f[lane] = v;
    w.bar.arrive_and_wait();
    const float r = w.f[lane ^ mask];
    w.bar.arrive_and_wait();
    return r;
}

// Runs kernel() on every thread of every block of the grid, a block at a time.
template <class F> void launch(dim3_ grid, unsigned threads, F kernel) {
    gridDim = grid;
    blockDim = {threads, 1, 1};
    std::barrier<> bar((std::ptrdiff_t)threads);
    std::unique_ptr<Warp[]> ws(new Warp[threads / 32]);
    block_bar = &bar;
    warps = ws.get();
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                blockIdx = {x, y, z};
                std::vector<std::thread> team;
                for (unsigned t = 0; t < threads; ++t) team.emplace_back([t, &kernel] { threadIdx = {t, 1, 1}; kernel(); });
                for (auto& th : team) th.join();
            }
}
