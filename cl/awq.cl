/* awq.cl: AutoAWQ WQLinear_GEMM kernels - fused 4-bit dequant GEMV and tiled GEMM, dequantise, activation rounding.
 *
 * Layout (SPEC 4): qweight uint [K][N/8], qzeros uint [K/G][N/8], scales half [K/G][N], bias half [N].
 * Column 8j+c of a word sits at nibble AWQ_SHIFT(c) = 4 * {0,4,1,5,2,6,3,7}[c].
 * Activations are rounded to fp16 values first (AutoAWQ runs in fp16); sums are fp32. X_DTYPE, LOAD_X,
 * STORE_X and round_half come from common.cl.
 *
 * Build parameters (-D):
 *   AWQ_G         group size
 *   AWQ_CHUNK     k-chunk (divides AWQ_G): unit of split-K work and of the GEMM's local tile
 *   AWQ_HAS_BIAS  1: add the bias
 *   AWQ_SPLIT     GEMV: work-items sharing one word column (split-K), local size (AWQ_COLS, AWQ_SPLIT)
 *   AWQ_GEMV_ROWS GEMV: rows per work-item
 *   AWQ_COLS      GEMV/GEMM: word columns per work-group
 *   AWQ_ROWS      GEMM: rows per work-item; work-group (AWQ_COLS, AWQ_RGROUPS)
 *   AWQ_RGROUPS   GEMM: row groups per work-group
 *   AWQ_TEST_WRONG tests only: perturbs the output (the autotuner must reject such a candidate)
 *   AWQ_FUSE_OFT  GEMV: rotate the input by the OFT R (block OFT_BLOCK) while loading it; needs AWQ_K = K
 */
#ifndef AWQ_G
#error "AWQ_G must be defined"
#endif
#ifndef AWQ_CHUNK
#define AWQ_CHUNK AWQ_G
#endif
#ifndef AWQ_HAS_BIAS
#define AWQ_HAS_BIAS 0
#endif
#ifndef AWQ_SPLIT
#define AWQ_SPLIT 8
#endif
#ifndef AWQ_GEMV_ROWS
#define AWQ_GEMV_ROWS 1
#endif
#ifndef AWQ_COLS
#define AWQ_COLS 16
#endif
#ifndef AWQ_ROWS
#define AWQ_ROWS 4
#endif
#ifndef AWQ_FUSE_OFT
#define AWQ_FUSE_OFT 0
#endif
#ifndef AWQ_TEST_WRONG
#define AWQ_TEST_WRONG 0
#endif
#ifndef AWQ_RGROUPS
#define AWQ_RGROUPS 4
#endif

#define AWQ_SHIFT(c) (4u * (((c) & 1u) * 4u + ((c) >> 1)))

inline float load_x(__global const X_TYPE *x, size_t i) { return round_half(LOAD_X(x, i)); }

inline void store_y(__global X_TYPE *y, size_t i, float acc, __global const half *bias, uint n)
{
#if AWQ_TEST_WRONG /* the tuner's tests inject this variant: it must never win */
  acc += 1.0f;
#endif
#if AWQ_HAS_BIAS
  acc += vload_half(n, bias);
#endif
  STORE_X(round_half(acc), y, i); /* AutoAWQ's fp16 result, in the activation dtype */
}

/* Decode: y[row][8j..8j+7] for AWQ_GEMV_ROWS rows per work-item (each packed word is unpacked once
 * for all of them). Work-items along dim 1 split the K chunks; a local reduction sums them.
 * global = (N/8 rounded up to AWQ_COLS, AWQ_SPLIT, ceil(rows / AWQ_GEMV_ROWS)), local = (AWQ_COLS, AWQ_SPLIT, 1). */
__kernel __attribute__((reqd_work_group_size(AWQ_COLS, AWQ_SPLIT, 1)))
void awq_gemv(__global const X_TYPE *x, __global X_TYPE *y, __global const uint *qweight, __global const uint *qzeros,
              __global const half *scales, __global const half *bias, uint K, uint N, uint rows,
              __global const float *R, uint share)
{
  __local float partial[AWQ_SPLIT][AWQ_COLS][AWQ_GEMV_ROWS * 8];
  const uint j = (uint)get_global_id(0), lc = (uint)get_local_id(0), ls = (uint)get_local_id(1);
  const uint row0 = (uint)get_global_id(2) * AWQ_GEMV_ROWS, W = N / 8;
  float acc[AWQ_GEMV_ROWS][8];
#if AWQ_FUSE_OFT
  /* The OFT rotation fused into the activation load: the work-group rotates its rows into local
   * memory (x . BD(R), fp32, then rounded as the layer rounds), saving a launch and a round trip. */
  __local float xl[AWQ_GEMV_ROWS * AWQ_K];
  for (uint i = ls * AWQ_COLS + lc; i < AWQ_GEMV_ROWS * AWQ_K; i += AWQ_COLS * AWQ_SPLIT) {
    const uint r = i / AWQ_K, col = i - r * AWQ_K, blk = col / OFT_BLOCK, c = col - blk * OFT_BLOCK;
    float v = 0.0f;
    if (row0 + r < rows) {
      __global const X_TYPE *xb = x + (size_t)(row0 + r) * K + (size_t)blk * OFT_BLOCK;
      __global const float *Rb = R + (share ? (size_t)0 : (size_t)blk * OFT_BLOCK * OFT_BLOCK) + c;
      for (uint k = 0; k < OFT_BLOCK; k++) v = fma(LOAD_X(xb, k), Rb[(size_t)k * OFT_BLOCK], v);
    }
    xl[i] = round_half(ROUND_X(v)); /* the layer's rounding to the input dtype, then AutoAWQ's to fp16 */
  }
  barrier(CLK_LOCAL_MEM_FENCE);
#define GEMV_X(r, k) xl[(r) * AWQ_K + (k)]
#else
#define GEMV_X(r, k) load_x(x, (size_t)(row0 + (r)) * K + (k))
#endif
  for (uint r = 0; r < AWQ_GEMV_ROWS; r++)
    for (uint c = 0; c < 8; c++) acc[r][c] = 0.0f;
  if (j < W) {
    for (uint k0 = ls * AWQ_CHUNK; k0 < K; k0 += AWQ_SPLIT * AWQ_CHUNK) {
      const uint g = k0 / AWQ_G;
      const uint zw = qzeros[(size_t)g * W + j];
      float dot[AWQ_GEMV_ROWS][8], sx[AWQ_GEMV_ROWS];
      for (uint r = 0; r < AWQ_GEMV_ROWS; r++) {
        sx[r] = 0.0f;
        for (uint c = 0; c < 8; c++) dot[r][c] = 0.0f;
      }
      for (uint k = k0; k < k0 + AWQ_CHUNK; k++) {
        const uint w = qweight[(size_t)k * W + j];
        float q[8];
        for (uint c = 0; c < 8; c++) q[c] = (float)((w >> AWQ_SHIFT(c)) & 0xfu);
        for (uint r = 0; r < AWQ_GEMV_ROWS; r++) {
          const float xv = (row0 + r < rows) ? GEMV_X(r, k) : 0.0f;
          sx[r] += xv;
          for (uint c = 0; c < 8; c++) dot[r][c] = fma(xv, q[c], dot[r][c]);
        }
      }
      /* zero point folded per chunk: s * (sum x q - z sum x) */
      for (uint c = 0; c < 8; c++) {
        const float sc = vload_half((size_t)g * N + 8 * j + c, scales), z = (float)((zw >> AWQ_SHIFT(c)) & 0xfu);
        for (uint r = 0; r < AWQ_GEMV_ROWS; r++) acc[r][c] = fma(sc, dot[r][c] - z * sx[r], acc[r][c]);
      }
    }
  }
  for (uint r = 0; r < AWQ_GEMV_ROWS; r++)
    for (uint c = 0; c < 8; c++) partial[ls][lc][r * 8 + c] = acc[r][c];
  barrier(CLK_LOCAL_MEM_FENCE);
  if (ls == 0 && j < W) {
    for (uint s = 1; s < AWQ_SPLIT; s++)
      for (uint r = 0; r < AWQ_GEMV_ROWS; r++)
        for (uint c = 0; c < 8; c++) acc[r][c] += partial[s][lc][r * 8 + c];
    for (uint r = 0; r < AWQ_GEMV_ROWS; r++)
      if (row0 + r < rows)
        for (uint c = 0; c < 8; c++) store_y(y, (size_t)(row0 + r) * N + 8 * j + c, acc[r][c], bias, 8 * j + c);
  }
}

/* Prefill: each work-item computes AWQ_ROWS rows x 8 columns; activation chunks are staged in local memory.
 * global = (N/8 rounded up to AWQ_COLS, ceil(rows / AWQ_ROWS) rounded up to AWQ_RGROUPS), local = (AWQ_COLS, AWQ_RGROUPS). */
__kernel __attribute__((reqd_work_group_size(AWQ_COLS, AWQ_RGROUPS, 1)))
void awq_gemm(__global const X_TYPE *x, __global X_TYPE *y, __global const uint *qweight, __global const uint *qzeros,
              __global const half *scales, __global const half *bias, uint K, uint N, uint rows)
{
  __local float xs[AWQ_RGROUPS * AWQ_ROWS][AWQ_CHUNK];
  const uint j = (uint)get_global_id(0), lc = (uint)get_local_id(0), lr = (uint)get_local_id(1);
  const uint row0 = (uint)get_group_id(1) * AWQ_RGROUPS * AWQ_ROWS, W = N / 8;
  const uint lid = lr * AWQ_COLS + lc;
  float acc[AWQ_ROWS][8];
  for (uint r = 0; r < AWQ_ROWS; r++)
    for (uint c = 0; c < 8; c++) acc[r][c] = 0.0f;
  for (uint k0 = 0; k0 < K; k0 += AWQ_CHUNK) {
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint i = lid; i < AWQ_RGROUPS * AWQ_ROWS * AWQ_CHUNK; i += AWQ_COLS * AWQ_RGROUPS) {
      const uint r = i / AWQ_CHUNK, k = i - r * AWQ_CHUNK;
      xs[r][k] = (row0 + r < rows) ? load_x(x, (size_t)(row0 + r) * K + k0 + k) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (j < W) {
      const uint g = k0 / AWQ_G;
      const uint zw = qzeros[(size_t)g * W + j];
      float s[8], z[8];
      for (uint c = 0; c < 8; c++) {
        s[c] = vload_half((size_t)g * N + 8 * j + c, scales);
        z[c] = (float)((zw >> AWQ_SHIFT(c)) & 0xfu);
      }
      for (uint k = 0; k < AWQ_CHUNK; k++) {
        const uint w = qweight[(size_t)(k0 + k) * W + j];
        for (uint c = 0; c < 8; c++) {
          const float wv = ((float)((w >> AWQ_SHIFT(c)) & 0xfu) - z[c]) * s[c];
          for (uint r = 0; r < AWQ_ROWS; r++) acc[r][c] = fma(xs[lr * AWQ_ROWS + r][k], wv, acc[r][c]);
        }
      }
    }
  }
  if (j >= W) return;
  for (uint r = 0; r < AWQ_ROWS; r++) {
    const uint row = row0 + lr * AWQ_ROWS + r;
    if (row < rows)
      for (uint c = 0; c < 8; c++) store_y(y, (size_t)row * N + 8 * j + c, acc[r][c], bias, 8 * j + c);
  }
}

/* Dense weight for the large-M path: Wd[k][n] = (q - z) * s, fp32. global = (N/8, K). */
__kernel void awq_dequant(__global const uint *qweight, __global const uint *qzeros, __global const half *scales,
                          __global float *Wd, uint K, uint N)
{
  const uint j = (uint)get_global_id(0), k = (uint)get_global_id(1), W = N / 8;
  if (j >= W || k >= K) return;
  const uint g = k / AWQ_G, w = qweight[(size_t)k * W + j], zw = qzeros[(size_t)g * W + j];
  for (uint c = 0; c < 8; c++)
    Wd[(size_t)k * N + 8 * j + c] =
      ((float)((w >> AWQ_SHIFT(c)) & 0xfu) - (float)((zw >> AWQ_SHIFT(c)) & 0xfu)) *
      vload_half((size_t)g * N + 8 * j + c, scales);
}

/* Large-M path, before the dense GEMM: xf = fp16-rounded activations as fp32. global = (n). */
__kernel void awq_round_x(__global const X_TYPE *x, __global float *xf, uint n)
{
  const uint i = (uint)get_global_id(0);
  if (i < n) xf[i] = load_x(x, i);
}

/* Large-M path, after the dense GEMM: bias, fp16 rounding, output dtype. global = (N, rows). */
__kernel void awq_finish(__global const float *acc, __global X_TYPE *y, __global const half *bias, uint N, uint rows)
{
  const uint n = (uint)get_global_id(0), row = (uint)get_global_id(1);
  if (n < N && row < rows) store_y(y, (size_t)row * N + n, acc[(size_t)row * N + n], bias, n);
}
