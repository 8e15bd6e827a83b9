/* awq.cl: AutoAWQ WQLinear_GEMM kernels - the fused 4-bit dequant matmul (GEMV and GEMM shapes), dequantise, round, finish.
 *
 * Layout (SPEC 4): qweight uint [K][N/8], qzeros uint [K/G][N/8], scales half [K/G][N], bias half [N].
 * Column 8j+c of a word sits at nibble AWQ_SHIFT(c) = 4 * {0,4,1,5,2,6,3,7}[c].
 * Activations are rounded to fp16 values (AutoAWQ runs in fp16) once per call, while a work-group
 * stages them in local memory; sums are fp32. X_TYPE, LOAD_X, ROUND_X and round_half come from common.cl.
 *
 * Build parameters (-D):
 *   AWQ_G         group size
 *   AWQ_CHUNK     k-chunk (divides AWQ_G): the zero point and scale are applied once per chunk
 *   AWQ_HAS_BIAS  1: add the bias
 *   AWQ_COLS      work-items along N per work-group (dim 0)
 *   AWQ_SPLIT     work-items sharing one column block along K (dim 1, a power of two); their partial
 *                 sums meet in a tree in local memory
 *   AWQ_RGROUPS   row groups per work-group (dim 2)
 *   AWQ_ROWS      rows per work-item: one pass over the weight serves all of them
 *   AWQ_VEC       packed words per work-item (1, 2, 4, 8): 8 * AWQ_VEC adjacent columns; must divide N/8
 *   AWQ_FUSE_OFT  rotate x by the OFT R (block OFT_BLOCK) while staging it
 *   AWQ_TEST_WRONG tests only: perturbs the output (the autotuner must reject such a candidate)
 *   AWQ_DENSE     1: the dense path's kernels (dequantise, round, finish) instead of the matmul
 *   AWQ_LAYOUT    0: AutoAWQ's tensors; 1 (K4, lib/engines/awq_repack.c): qweight [K/4][N/8][4] read as one
 *                 uint4 per 4 k, `scales` holds fp16 pairs (scale, zero) [K/G][N], qzeros is unused; needs
 *                 AWQ_VEC 1 and AWQ_CHUNK % 4 == 0
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
#ifndef AWQ_COLS
#define AWQ_COLS 16
#endif
#ifndef AWQ_SPLIT
#define AWQ_SPLIT 1
#endif
#ifndef AWQ_RGROUPS
#define AWQ_RGROUPS 1
#endif
#ifndef AWQ_ROWS
#define AWQ_ROWS 1
#endif
#ifndef AWQ_VEC
#define AWQ_VEC 1
#endif
#ifndef AWQ_FUSE_OFT
#define AWQ_FUSE_OFT 0
#endif
#ifndef AWQ_TEST_WRONG
#define AWQ_TEST_WRONG 0
#endif
#ifndef AWQ_DENSE
#define AWQ_DENSE 0
#endif
#ifndef AWQ_LAYOUT
#define AWQ_LAYOUT 0
#endif
#if AWQ_LAYOUT == 1 && (AWQ_VEC != 1 || AWQ_CHUNK % 4 != 0)
#error "the K4 layout takes one packed word per work-item and chunks of 4 k"
#endif

#define AWQ_SHIFT(c) (4u * (((c) & 1u) * 4u + ((c) >> 1)))
/* The k values a work-group stages per step: one chunk per split lane. */
#define AWQ_STEP (AWQ_SPLIT * AWQ_CHUNK)
#define AWQ_WG_ROWS (AWQ_RGROUPS * AWQ_ROWS)

#if AWQ_VEC == 1
typedef uint words_t;
typedef float floats_t;
#define LOAD_WORDS(p, i) ((p)[i])
#define WORDS_TO_FLOATS(w) convert_float(as_int(w))
#elif AWQ_VEC == 2
typedef uint2 words_t;
typedef float2 floats_t;
#define LOAD_WORDS(p, i) vload2(0, (p) + (i))
#define WORDS_TO_FLOATS(w) convert_float2(as_int2(w))
#elif AWQ_VEC == 4
typedef uint4 words_t;
typedef float4 floats_t;
#define LOAD_WORDS(p, i) vload4(0, (p) + (i))
#define WORDS_TO_FLOATS(w) convert_float4(as_int4(w))
#elif AWQ_VEC == 8
typedef uint8 words_t;
typedef float8 floats_t;
#define LOAD_WORDS(p, i) vload8(0, (p) + (i))
#define WORDS_TO_FLOATS(w) convert_float8(as_int8(w))
#else
#error "AWQ_VEC must be 1, 2, 4 or 8"
#endif

/* The lanes of a vector of sums, one per packed word. */
typedef union {
  floats_t v;
  float s[AWQ_VEC];
} lanes_t;

/* Nibble c of each word, left in place: q * 2^AWQ_EXP(c) exactly (the top nibble is moved down 4 bits
 * so that the value stays a positive int). The per-chunk scale takes the 2^-AWQ_EXP(c) back, so the
 * result is bit-identical to unpacking q itself. */
#define AWQ_EXP(c) ((c) == 7u ? 24u : AWQ_SHIFT(c))
#define NIBBLE(w, c) WORDS_TO_FLOATS((c) == 7u ? ((w) >> 4) & 0x0f000000u : (w) & (0xfu << AWQ_SHIFT(c)))
#define UNSCALE(c) (1.0f / (float)(1u << AWQ_EXP(c)))

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

/* x[row][k] as the layer sees it: rounded to fp16 (AutoAWQ's cast); with AWQ_FUSE_OFT first rotated by
 * the adapter's R (fp32) and rounded to the input dtype, as a separate rotation's output would be. */
inline float staged_x(__global const X_TYPE *x, uint row, uint k, uint K, __global const float *R, uint share)
{
#if AWQ_FUSE_OFT
  const uint blk = k / OFT_BLOCK, c = k - blk * OFT_BLOCK;
  __global const X_TYPE *xb = x + (size_t)row * K + (size_t)blk * OFT_BLOCK;
  __global const float *Rb = R + (share ? (size_t)0 : (size_t)blk * OFT_BLOCK * OFT_BLOCK) + c;
  float v = 0.0f;
  for (uint t = 0; t < OFT_BLOCK; t++) v = fma(LOAD_X(xb, t), Rb[(size_t)t * OFT_BLOCK], v);
  return round_half(ROUND_X(v));
#else
  (void)R;
  (void)share;
  return round_half(LOAD_X(x, (size_t)row * K + k));
#endif
}

#if !AWQ_DENSE
/* y = x . W + bias for `rows` rows. Each work-item computes AWQ_ROWS rows x 8*AWQ_VEC columns; the
 * AWQ_SPLIT work-items along dim 1 take every AWQ_SPLIT-th chunk of K and add their sums at the end.
 * global = (ceil(N/8 / AWQ_VEC) rounded up to AWQ_COLS, AWQ_SPLIT, ceil(rows / AWQ_ROWS) rounded up to
 * AWQ_RGROUPS), local = (AWQ_COLS, AWQ_SPLIT, AWQ_RGROUPS). R, share: the fused rotation (else unused). */
__kernel __attribute__((reqd_work_group_size(AWQ_COLS, AWQ_SPLIT, AWQ_RGROUPS)))
void awq_matmul(__global const X_TYPE *x, __global X_TYPE *y, __global const uint *qweight,
                __global const uint *qzeros, __global const half *scales, __global const half *bias, uint K, uint N,
                uint rows, __global const float *R, uint share)
{
  __local float xs[AWQ_WG_ROWS][AWQ_STEP];
#if AWQ_SPLIT > 1
  __local floats_t partial[AWQ_SPLIT][AWQ_RGROUPS][AWQ_COLS][AWQ_ROWS * 8];
#endif
  const uint lc = (uint)get_local_id(0), ls = (uint)get_local_id(1), lr = (uint)get_local_id(2);
  const uint lid = (lr * AWQ_SPLIT + ls) * AWQ_COLS + lc;
  const uint W = N / 8, j = (uint)get_global_id(0) * AWQ_VEC; /* the item's first word */
  const uint wg_row0 = (uint)get_group_id(2) * AWQ_WG_ROWS;
  const int active = j < W;
  floats_t acc[AWQ_ROWS][8];
  #pragma unroll
  for (uint r = 0; r < AWQ_ROWS; r++)
    #pragma unroll
    for (uint c = 0; c < 8; c++) acc[r][c] = (floats_t)(0.0f);

  for (uint kb = 0; kb < K; kb += AWQ_STEP) { /* the same trip count for every item: barriers are safe */
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint i = lid; i < AWQ_WG_ROWS * AWQ_STEP; i += AWQ_COLS * AWQ_SPLIT * AWQ_RGROUPS) {
      const uint r = i / AWQ_STEP, kk = i - r * AWQ_STEP;
      xs[r][kk] = (wg_row0 + r < rows && kb + kk < K) ? staged_x(x, wg_row0 + r, kb + kk, K, R, share) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint k0 = kb + ls * AWQ_CHUNK;
    if (active && k0 < K) {
      const uint g = k0 / AWQ_G;
      floats_t dot[AWQ_ROWS][8];
      float sx[AWQ_ROWS];
      #pragma unroll
      for (uint r = 0; r < AWQ_ROWS; r++) {
        sx[r] = 0.0f;
        #pragma unroll
        for (uint c = 0; c < 8; c++) dot[r][c] = (floats_t)(0.0f);
      }
      /* one k: the packed word(s) w unpacked once for every row */
#define AWQ_K_STEP(w, k)                                                                                               \
  do {                                                                                                                 \
    floats_t q[8];                                                                                                     \
    _Pragma("unroll") for (uint c = 0; c < 8; c++) q[c] = NIBBLE(w, c);                                                \
    _Pragma("unroll") for (uint r = 0; r < AWQ_ROWS; r++) {                                                            \
      const float xv = xs[lr * AWQ_ROWS + r][ls * AWQ_CHUNK + (k)];                                                    \
      sx[r] += xv;                                                                                                     \
      _Pragma("unroll") for (uint c = 0; c < 8; c++) dot[r][c] = fma((floats_t)(xv), q[c], dot[r][c]);                 \
    }                                                                                                                  \
  } while (0)
#if AWQ_LAYOUT == 1
      __global const uint *wp = qweight + ((size_t)(k0 / 4) * W + j) * 4;
      for (uint k = 0; k < AWQ_CHUNK; k += 4, wp += 4 * W) {
        const uint4 w4 = vload4(0, wp);
        AWQ_K_STEP(w4.s0, k);
        AWQ_K_STEP(w4.s1, k + 1);
        AWQ_K_STEP(w4.s2, k + 2);
        AWQ_K_STEP(w4.s3, k + 3);
      }
      /* zero point and scale once per chunk: s * (sum x q - z sum x), the pair read at once */
      #pragma unroll
      for (uint c = 0; c < 8; c++) {
        const float2 sz = vload_half2((size_t)g * N + 8 * j + c, scales);
        const float z = sz.y * (float)(1u << AWQ_EXP(c));
        #pragma unroll
        for (uint r = 0; r < AWQ_ROWS; r++) acc[r][c] = fma(sz.x * UNSCALE(c), dot[r][c] - z * sx[r], acc[r][c]);
      }
#else
      __global const uint *wp = qweight + (size_t)k0 * W + j;
      for (uint k = 0; k < AWQ_CHUNK; k++, wp += W) {
        const words_t w = LOAD_WORDS(wp, 0);
        AWQ_K_STEP(w, k);
      }
      /* zero point and scale once per chunk: s * (sum x q - z sum x) */
      const words_t zw = LOAD_WORDS(qzeros, (size_t)g * W + j);
      #pragma unroll
      for (uint c = 0; c < 8; c++) {
        const floats_t z = NIBBLE(zw, c);
        lanes_t s;
        #pragma unroll
        for (uint v = 0; v < AWQ_VEC; v++) s.s[v] = vload_half((size_t)g * N + 8 * (j + v) + c, scales) * UNSCALE(c);
        #pragma unroll
        for (uint r = 0; r < AWQ_ROWS; r++) acc[r][c] = fma(s.v, dot[r][c] - z * (floats_t)(sx[r]), acc[r][c]);
      }
#endif
#undef AWQ_K_STEP
    }
  }

#if AWQ_SPLIT > 1
  /* the split lanes' sums, added pairwise */
  #pragma unroll
  for (uint r = 0; r < AWQ_ROWS; r++)
    #pragma unroll
    for (uint c = 0; c < 8; c++) partial[ls][lr][lc][r * 8 + c] = acc[r][c];
  for (uint s = AWQ_SPLIT / 2; s > 0; s >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (ls < s)
      #pragma unroll
      for (uint r = 0; r < AWQ_ROWS; r++)
        #pragma unroll
        for (uint c = 0; c < 8; c++) partial[ls][lr][lc][r * 8 + c] = acc[r][c] += partial[ls + s][lr][lc][r * 8 + c];
  }
#endif
  if (ls != 0 || !active) return;
  /* Once per work-item: kept as loops (unrolled, the rounding's branches made the compile many times slower) */
  #pragma unroll 1
  for (uint r = 0; r < AWQ_ROWS; r++) {
    const uint row = wg_row0 + lr * AWQ_ROWS + r;
    if (row >= rows) continue;
    #pragma unroll 1
    for (uint c = 0; c < 8; c++) {
      lanes_t a;
      a.v = acc[r][c];
      #pragma unroll 1
      for (uint v = 0; v < AWQ_VEC; v++) {
        const uint n = 8 * (j + v) + c;
        store_y(y, (size_t)row * N + n, a.s[v], bias, n);
      }
    }
  }
}

#else /* AWQ_DENSE */

/* Dense weight for the large-M path, rows k0 .. k0 + rows of W as fp32: Wd[k - k0][n] = (q - z) * s.
 * global = (N/8, rows). */
__kernel void awq_dequant(__global const uint *qweight, __global const uint *qzeros, __global const half *scales,
                          __global float *Wd, uint K, uint N, uint k0)
{
  const uint j = (uint)get_global_id(0), W = N / 8, k = k0 + (uint)get_global_id(1);
  if (j >= W || k >= K) return;
  const uint g = k / AWQ_G;
#if AWQ_LAYOUT == 1
  const uint w = qweight[((size_t)(k / 4) * W + j) * 4 + k % 4];
  for (uint c = 0; c < 8; c++) {
    const float2 sz = vload_half2((size_t)g * N + 8 * j + c, scales);
    Wd[(size_t)(k - k0) * N + 8 * j + c] = ((float)((w >> AWQ_SHIFT(c)) & 0xfu) - sz.y) * sz.x;
  }
#else
  const uint w = qweight[(size_t)k * W + j], zw = qzeros[(size_t)g * W + j];
  for (uint c = 0; c < 8; c++)
    Wd[(size_t)(k - k0) * N + 8 * j + c] =
      ((float)((w >> AWQ_SHIFT(c)) & 0xfu) - (float)((zw >> AWQ_SHIFT(c)) & 0xfu)) *
      vload_half((size_t)g * N + 8 * j + c, scales);
#endif
}

/* The K4 layout back to AutoAWQ's tensors, bit for bit (for kernels that read W in AutoAWQ's order).
 * k4 [K/4][N/8][4], pairs (scale, zero) [K/G][N] as fp16 bits. global = (N/8, K). */
__kernel void awq_k4_unpack(__global const uint *k4, __global const ushort *pairs, __global uint *qweight,
                            __global uint *qzeros, __global ushort *scales, uint K, uint N)
{
  const uint j = (uint)get_global_id(0), k = (uint)get_global_id(1), W = N / 8;
  if (j >= W || k >= K) return;
  qweight[(size_t)k * W + j] = k4[((size_t)(k / 4) * W + j) * 4 + k % 4];
  if (k % AWQ_G) return;
  const uint g = k / AWQ_G;
  uint zw = 0;
  for (uint c = 0; c < 8; c++) {
    const size_t n = (size_t)g * N + 8 * j + c;
    scales[n] = pairs[2 * n];
    zw |= ((uint)vload_half(2 * n + 1, (__global const half *)pairs) & 0xfu) << AWQ_SHIFT(c);
  }
  qzeros[(size_t)g * W + j] = zw;
}

/* Large-M path, before the dense GEMM: xf = fp16-rounded activations as fp32. global = (n). */
__kernel void awq_round_x(__global const X_TYPE *x, __global float *xf, uint n)
{
  const uint i = (uint)get_global_id(0);
  if (i < n) xf[i] = round_half(LOAD_X(x, i));
}

/* Large-M path, after the dense GEMM: bias, fp16 rounding, output dtype. global = (N, rows). */
__kernel void awq_finish(__global const float *acc, __global X_TYPE *y, __global const half *bias, uint N, uint rows)
{
  const uint n = (uint)get_global_id(0), row = (uint)get_global_id(1);
  if (n < N && row < rows) store_y(y, (size_t)row * N + n, acc[(size_t)row * N + n], bias, n);
}
#endif /* AWQ_DENSE */
