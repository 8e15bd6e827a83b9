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
 *   AWQ_COLVEC    0: a vector's lanes are the AWQ_VEC words (one sum per nibble position c);
 *                 1: a float8's lanes are one word's 8 columns (one float8 sum per word; scales read by vload_half8),
 *                 with several words a float16's two words' 16 columns;
 *                 on KC with one row per work-group, 8 k of one column while summing (AWQ_KLANES)
 *   AWQ_PREFETCH  0, or how many k rows ahead a work-item asks for its packed words (OpenCL's prefetch();
 *                 with AWQ_PREFETCH_BUILTIN 1, clang's __builtin_prefetch instead: PoCL's prefetch() does
 *                 nothing); the row asked for is clamped to K - 1
 *   AWQ_WI_LOOPS  1 on devices that run a work-group's items as loops on one CPU thread: a work-item's sums
 *                 live in local memory (not copied between the loop regions at every barrier), one item
 *                 stages a chunk of x with each row's sum over it (AWQ_STAGED_SUMS) and, with AWQ_COLVEC and one
 *                 word per item, x is staged as float8 splats as well (an FMA reads x from memory, no broadcast;
 *                 a float16 FMA broadcasts x from memory itself)
 *   AWQ_FUSE_OFT  rotate x by the OFT R (block OFT_BLOCK) while staging it
 *   AWQ_TEST_WRONG tests only: perturbs the output (the autotuner must reject such a candidate)
 *   AWQ_DENSE     1: the dense path's kernels (dequantise, round, finish) instead of the matmul
 *   AWQ_LAYOUT    0: AutoAWQ's tensors; 1 and 2, interleaved (lib/engines/awq_repack.c): qweight
 *                 [K/AWQ_KI][N/8][AWQ_KI], with AWQ_KI 4 (K4: read as one uint4 per 4 k) or AWQ_CHUNK (KC: a
 *                 work-item's chunk is one contiguous run, read in order); `scales` holds fp16 pairs
 *                 (scale, zero) [K/G][N], qzeros is unused; needs AWQ_CHUNK % 4 == 0 and AWQ_VEC 1 (KC with
 *                 AWQ_COLVEC: any, an item's words being adjacent runs)
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
#ifndef AWQ_COLVEC
#define AWQ_COLVEC 0
#endif
#ifndef AWQ_PREFETCH
#define AWQ_PREFETCH 0
#endif
#ifndef AWQ_PREFETCH_BUILTIN
#define AWQ_PREFETCH_BUILTIN 0
#endif
#ifndef AWQ_WI_LOOPS
#define AWQ_WI_LOOPS 0
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
#if AWQ_LAYOUT == 1
#define AWQ_KI 4
#elif AWQ_LAYOUT == 2
#define AWQ_KI AWQ_CHUNK
#endif
#if AWQ_LAYOUT != 0 && ((AWQ_VEC != 1 && !(AWQ_LAYOUT == 2 && AWQ_COLVEC)) || AWQ_CHUNK % 4 != 0)
#error "the interleaved layouts take chunks of 4 k and one packed word per work-item (KC with AWQ_COLVEC: several)"
#endif
/* Where word j of row k sits in an interleaved layout, and in the layer's layout. */
#define KI_INDEX(k, j, W) ((((size_t)(k) / AWQ_KI) * (W) + (j)) * AWQ_KI + (k) % AWQ_KI)
#if AWQ_LAYOUT != 0
#define WORD_INDEX(k, j, W) KI_INDEX(k, j, W)
#else
#define WORD_INDEX(k, j, W) ((size_t)(k) * (W) + (j))
#endif

/* Asks for the packed words of row k + AWQ_PREFETCH (at most K - 1) before the work-item reaches them. In
 * AutoAWQ's layout only the item whose words start a 64-byte line of a row asks: a CPU runtime runs the items
 * of a work-group one after another, and the items after it find that line in the cache (at 8 rows, where
 * the loop is bound by its FMAs, every item asking made the GEMV 1.1-1.2x slower than none asking; the first
 * alone makes it 1.07x faster). */
#define PREFETCH_AT(qweight, k, j, W, K) ((qweight) + WORD_INDEX(min((k) + AWQ_PREFETCH, (K) - 1u), j, W))
#if AWQ_PREFETCH == 0
#define PREFETCH_ROW(qweight, k, j, W, K) ((void)0)
#elif AWQ_PREFETCH_BUILTIN
#define PREFETCH_ROW(qweight, k, j, W, K) __builtin_prefetch(PREFETCH_AT(qweight, k, j, W, K))
#else
#define PREFETCH_ROW(qweight, k, j, W, K) prefetch(PREFETCH_AT(qweight, k, j, W, K), 1)
#endif

#define AWQ_SHIFT(c) (4u * (((c) & 1u) * 4u + ((c) >> 1)))
/* The k values a work-group stages per step: one chunk per split lane. */
#define AWQ_STEP (AWQ_SPLIT * AWQ_CHUNK)
#define AWQ_WG_ROWS (AWQ_RGROUPS * AWQ_ROWS)
/* KC with one row per work-group and a word's columns as lanes: a vector holds 8 k of one column (the chunk's
 * run is read 8 words at a time, x as a vector, no splat); the lanes are added at the end of the chunk. */
#define AWQ_KLANES (AWQ_LAYOUT == 2 && AWQ_WG_ROWS == 1 && AWQ_COLVEC && AWQ_VEC == 1 && AWQ_CHUNK % 8 == 0)
#define AWQ_X_SPLAT (AWQ_WI_LOOPS && AWQ_COLVEC && AWQ_VEC == 1 && !AWQ_KLANES)
/* The sum of x over a chunk, per row, for the zero points. On a CPU (AWQ_WI_LOOPS) the items run one after another,
 * so one item stages the chunk k by k with its rows side by side (independent sums, each in k order) and every
 * item reads the sums; elsewhere each item adds the chunk's x as it goes (in parallel). The same bits either way.
 * An item of one word without lanes keeps its own sums: PoCL vectorises such items across the work-group, and
 * with staged sums it no longer did (the GEMM at 16 rows ran 2.4-2.9x the time). */
#define AWQ_STAGED_SUMS (AWQ_WI_LOOPS && !AWQ_KLANES && (AWQ_COLVEC || AWQ_VEC > 1))

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

/* The packed words of one load, one by one. */
typedef union {
  words_t v;
  uint s[AWQ_VEC];
} words_u;

/* A work-item's sums per row: ACC_N vectors acc_t of ACC_LANES lanes. AWQ_COLVEC 0: vector c holds
 * nibble position c of the AWQ_VEC words; 1: vector i holds the 8 columns of word i, or with several words
 * the 16 columns of words 2i and 2i + 1 (COL_WORDS): on a CPU one 512-bit FMA where it was two of 256 bits,
 * each with x broadcast from memory (the GEMV at 8 rows x 2 words: 0.73x the time on AVX-512). */
#if AWQ_COLVEC && AWQ_VEC > 1
#define COL_WORDS 2
typedef float16 acc_t;
#define ACC_N (AWQ_VEC / 2)
#define ACC_LANES 16
#elif AWQ_COLVEC
#define COL_WORDS 1
typedef float8 acc_t;
#define ACC_N AWQ_VEC
#define ACC_LANES 8
#else
typedef floats_t acc_t;
#define ACC_N 8
#define ACC_LANES AWQ_VEC
#endif
typedef union {
  acc_t v;
  float s[ACC_LANES];
} lanes_t;

/* Nibble c of each word, left in place: q * 2^AWQ_EXP(c) exactly (the top nibble is moved down 4 bits
 * so that the value stays a positive int). The per-chunk scale takes the 2^-AWQ_EXP(c) back, so the
 * result is bit-identical to unpacking q itself. */
#define AWQ_EXP(c) ((c) == 7u ? 24u : AWQ_SHIFT(c))
#define NIBBLE(w, c) WORDS_TO_FLOATS((c) == 7u ? ((w) >> 4) & 0x0f000000u : (w) & (0xfu << AWQ_SHIFT(c)))
#define RESCALE(c) ((float)(1u << AWQ_EXP(c)))
#define UNSCALE(c) (1.0f / RESCALE(c))
/* The same for the 8 columns of one word at once, as a float8. */
#define COL_SHIFTS ((uint8)(0u, 0u, 0u, 0u, 0u, 0u, 0u, 4u))
#define COL_MASKS                                                                                                      \
  ((uint8)(0xfu << AWQ_SHIFT(0u), 0xfu << AWQ_SHIFT(1u), 0xfu << AWQ_SHIFT(2u), 0xfu << AWQ_SHIFT(3u),                 \
           0xfu << AWQ_SHIFT(4u), 0xfu << AWQ_SHIFT(5u), 0xfu << AWQ_SHIFT(6u), 0x0f000000u))
#define COL_UNSCALE                                                                                                    \
  ((float8)(UNSCALE(0u), UNSCALE(1u), UNSCALE(2u), UNSCALE(3u), UNSCALE(4u), UNSCALE(5u), UNSCALE(6u), UNSCALE(7u)))
#define COL_RESCALE                                                                                                    \
  ((float8)(RESCALE(0u), RESCALE(1u), RESCALE(2u), RESCALE(3u), RESCALE(4u), RESCALE(5u), RESCALE(6u), RESCALE(7u)))
inline float8 col_nibbles(uint w) { return convert_float8(as_int8(((uint8)(w) >> COL_SHIFTS) & COL_MASKS)); }
/* The same as acc_t of COL_WORDS words side by side: vector i of the item's words (word v read from
 * p[v * stride]), the fp16 loads of that many words' values, the factors. Built without joining two 8-lane
 * vectors into one of 16: oclgrind 21.10 takes such a vector's lanes for uninitialised (splats, selects and
 * shuffle2 it follows). */
#if COL_WORDS == 2
inline float16 col_nibbles2(uint w0, uint w1)
{
  const int16 first = (int16)(-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0);
  const uint16 w = select((uint16)(w1), (uint16)(w0), first);
  return convert_float16(as_int16((w >> (uint16)(COL_SHIFTS, COL_SHIFTS)) & (uint16)(COL_MASKS, COL_MASKS)));
}
#define COL_NIBBLES_AT(p, stride, i) col_nibbles2((p)[2 * (i) * (stride)], (p)[(2 * (i) + 1) * (stride)])
#define VLOAD_HALF_ACC vload_half16
#define COL_UNSCALE_ACC ((float16)(COL_UNSCALE, COL_UNSCALE))
#define COL_RESCALE_ACC ((float16)(COL_RESCALE, COL_RESCALE))
/* the even and the odd lanes of a, then of b */
#define EVENS(a, b) shuffle2(a, b, (uint16)(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30))
#define ODDS(a, b) shuffle2(a, b, (uint16)(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31))
#else
#define COL_NIBBLES_AT(p, stride, i) col_nibbles((p)[(i) * (stride)])
#define VLOAD_HALF_ACC vload_half8
#define COL_UNSCALE_ACC COL_UNSCALE
#define COL_RESCALE_ACC COL_RESCALE
#define EVENS(a, b) ((float8)((a).even, (b).even))
#define ODDS(a, b) ((float8)((a).odd, (b).odd))
#endif
/* Nibble c of 8 words (AWQ_KLANES: 8 k of one column), left in place like NIBBLE. */
#define NIBBLES8(w, c) convert_float8(as_int8((c) == 7u ? ((w) >> 4) & 0x0f000000u : (w) & (0xfu << AWQ_SHIFT(c))))
/* Adjacent lanes of a and b added: a's 4 pair sums, then b's. Three rounds turn 8 vectors into the float8 of
 * their lane sums, with vector operations only (oclgrind 21.10's uninitialised-value check crashes on a sum of
 * two lanes taken out of one vector). */
inline float8 pair_sums(float8 a, float8 b) { return (float8)(a.even + a.odd, b.even + b.odd); }

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
  __local float xs[AWQ_STEP][AWQ_WG_ROWS]; /* k-major: a k's rows lie together (their sums vectorise) */
#if AWQ_X_SPLAT
  __local float8 xs8[AWQ_STEP][AWQ_WG_ROWS]; /* the same x, each value in all 8 lanes */
#define X_ROW_PTR(p, kk) __local const float8 *p = &xs8[kk][lr * AWQ_ROWS]
#define X_AT(p, r, xv) (p)[r]
#define SPLAT_X(kk, r, xv) xs8[kk][r] = (float8)(xv)
#else
#define X_ROW_PTR(p, kk) (void)0
#define X_AT(p, r, xv) ((acc_t)(xv))
#define SPLAT_X(kk, r, xv) (void)(xv)
#endif
#if AWQ_STAGED_SUMS
  __local float xsum[AWQ_SPLIT][AWQ_WG_ROWS];
#endif
#if AWQ_SPLIT > 1 || AWQ_WI_LOOPS
  __local acc_t partial[AWQ_SPLIT][AWQ_RGROUPS][AWQ_COLS][AWQ_ROWS * ACC_N];
#endif
  const uint lc = (uint)get_local_id(0), ls = (uint)get_local_id(1), lr = (uint)get_local_id(2);
  const uint lid = (lr * AWQ_SPLIT + ls) * AWQ_COLS + lc;
  const uint W = N / 8, j = (uint)get_global_id(0) * AWQ_VEC; /* the item's first word */
  const uint wg_row0 = (uint)get_group_id(2) * AWQ_WG_ROWS;
  const int active = j < W;
#if AWQ_WI_LOOPS
#define ACC(r, i) partial[ls][lr][lc][(r) * ACC_N + (i)]
#else
  acc_t acc[AWQ_ROWS][ACC_N];
#define ACC(r, i) acc[r][i]
#endif
  #pragma unroll
  for (uint r = 0; r < AWQ_ROWS; r++)
    #pragma unroll
    for (uint i = 0; i < ACC_N; i++) ACC(r, i) = (acc_t)(0.0f);

  for (uint kb = 0; kb < K; kb += AWQ_STEP) { /* the same trip count for every item: barriers are safe */
    barrier(CLK_LOCAL_MEM_FENCE);
    /* row r's x at k = kb + kk into xs (and xs8), as xv */
#define STAGE_X(r, kk, xv)                                                                                             \
  const float xv =                                                                                                     \
    (wg_row0 + (r) < rows && kb + (kk) < K) ? staged_x(x, wg_row0 + (r), kb + (kk), K, R, share) : 0.0f;              \
  xs[kk][r] = xv;                                                                                                      \
  SPLAT_X(kk, r, xv)
#if AWQ_STAGED_SUMS
    for (uint s = lid; s < AWQ_SPLIT; s += AWQ_COLS * AWQ_SPLIT * AWQ_RGROUPS) { /* chunk s: its rows side by side */
      float sum[AWQ_WG_ROWS];
      for (uint r = 0; r < AWQ_WG_ROWS; r++) sum[r] = 0.0f;
      for (uint kk = s * AWQ_CHUNK; kk < (s + 1) * AWQ_CHUNK; kk++)
        #pragma unroll 8
        for (uint r = 0; r < AWQ_WG_ROWS; r++) {
          STAGE_X(r, kk, xv);
          sum[r] += xv; /* in k order, as an item would add them */
        }
      for (uint r = 0; r < AWQ_WG_ROWS; r++) xsum[s][r] = sum[r];
    }
#else
    for (uint i = lid; i < AWQ_WG_ROWS * AWQ_STEP; i += AWQ_COLS * AWQ_SPLIT * AWQ_RGROUPS) {
      const uint r = i / AWQ_STEP, kk = i - r * AWQ_STEP;
      STAGE_X(r, kk, xv);
    }
#endif
#undef STAGE_X
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint k0 = kb + ls * AWQ_CHUNK;
    if (active && k0 < K) {
      const uint g = k0 / AWQ_G;
      acc_t dot[AWQ_ROWS][ACC_N];
      #pragma unroll
      for (uint r = 0; r < AWQ_ROWS; r++)
        #pragma unroll
        for (uint i = 0; i < ACC_N; i++) dot[r][i] = (acc_t)(0.0f);
      /* SX(r): the sum of x over the chunk, row r (SX_ACC: in every lane of acc_t); ADD_SX adds one k's x to it
       * where the item sums it itself */
#if AWQ_KLANES
      float8 sx8; /* the lanes' sums added at the chunk's end */
#define SX_ACC(r) sx8
#else
#if AWQ_STAGED_SUMS
#define SX(r) xsum[ls][lr * AWQ_ROWS + (r)]
#define ADD_SX(r, xv) ((void)(xv))
#else
      float sx[AWQ_ROWS];
      #pragma unroll
      for (uint r = 0; r < AWQ_ROWS; r++) sx[r] = 0.0f;
#define SX(r) sx[r]
#define ADD_SX(r, xv) (sx[r] += (xv))
#endif
#define SX_ACC(r) ((acc_t)(SX(r)))
#endif
      /* one k: the packed word(s) w (words_t) unpacked once for every row */
#if AWQ_COLVEC
      /* the unpacked words q (acc_t [ACC_N]) times row r's x at k, for every row */
#define AWQ_ROWS_FMA(q, k)                                                                                             \
  {                                                                                                                    \
    __local const float *xk = &xs[ls * AWQ_CHUNK + (k)][lr * AWQ_ROWS];                                                \
    X_ROW_PTR(x8k, ls * AWQ_CHUNK + (k));                                                                              \
    _Pragma("unroll") for (uint r = 0; r < AWQ_ROWS; r++) {                                                            \
      const float xv = xk[r];                                                                                          \
      const acc_t xa = X_AT(x8k, r, xv);                                                                               \
      ADD_SX(r, xv);                                                                                                   \
      _Pragma("unroll") for (uint i = 0; i < ACC_N; i++) dot[r][i] = fma(xa, q[i], dot[r][i]);                         \
    }                                                                                                                  \
  }
/* the item's words, word v read from p[v * stride], each on its own: PoCL broadcasts it into the vector straight
 * from memory (read as one vector and taken apart, the GEMV at 8 rows x 2 words took 1.09-1.1x the time) */
#define AWQ_K_STEP_AT(p, stride, k)                                                                                    \
  do {                                                                                                                 \
    acc_t q[ACC_N];                                                                                                    \
    _Pragma("unroll") for (uint i = 0; i < ACC_N; i++) q[i] = COL_NIBBLES_AT(p, stride, i);                            \
    AWQ_ROWS_FMA(q, k);                                                                                                \
  } while (0)
/* K4's one word w (a lane of the uint4 that holds 4 k) */
#define AWQ_K_STEP(w, k)                                                                                               \
  do {                                                                                                                 \
    const float8 q[1] = {col_nibbles(w)};                                                                              \
    AWQ_ROWS_FMA(q, k);                                                                                                \
  } while (0)
#else
#define AWQ_K_STEP(w, k)                                                                                               \
  do {                                                                                                                 \
    floats_t q[8];                                                                                                     \
    _Pragma("unroll") for (uint c = 0; c < 8; c++) q[c] = NIBBLE(w, c);                                                \
    _Pragma("unroll") for (uint r = 0; r < AWQ_ROWS; r++) {                                                            \
      const float xv = xs[ls * AWQ_CHUNK + (k)][lr * AWQ_ROWS + r];                                                    \
      ADD_SX(r, xv);                                                                                                   \
      _Pragma("unroll") for (uint c = 0; c < 8; c++) dot[r][c] = fma((floats_t)(xv), q[c], dot[r][c]);                 \
    }                                                                                                                  \
  } while (0)
#endif
#if AWQ_LAYOUT != 0
#if AWQ_LAYOUT == 2
      __global const uint *run = qweight + KI_INDEX(k0, j, W); /* the item's chunk, one run of words */
#endif
#if AWQ_KLANES
      {
        float8 d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f, d4 = 0.0f, d5 = 0.0f, d6 = 0.0f, d7 = 0.0f; /* column c */
        float8 kx = 0.0f;                                                                      /* lanes: 8 k */
        for (uint k = 0; k < AWQ_CHUNK; k += 8) {
          if (k % 16u == 0u) PREFETCH_ROW(qweight, k0 + k, j, W, K); /* once per 64-byte line */
          const uint8 w = vload8(0, run + k);
          const float8 xv = vload8(0, &xs[ls * AWQ_CHUNK + k][0]);
          kx += xv;
          d0 = fma(xv, NIBBLES8(w, 0u), d0);
          d1 = fma(xv, NIBBLES8(w, 1u), d1);
          d2 = fma(xv, NIBBLES8(w, 2u), d2);
          d3 = fma(xv, NIBBLES8(w, 3u), d3);
          d4 = fma(xv, NIBBLES8(w, 4u), d4);
          d5 = fma(xv, NIBBLES8(w, 5u), d5);
          d6 = fma(xv, NIBBLES8(w, 6u), d6);
          d7 = fma(xv, NIBBLES8(w, 7u), d7);
        }
        dot[0][0] = pair_sums(pair_sums(pair_sums(d0, d1), pair_sums(d2, d3)),
                              pair_sums(pair_sums(d4, d5), pair_sums(d6, d7)));
        kx += kx.s45670123;
        kx += kx.s23016745;
        sx8 = kx + kx.s10325476;
      }
#elif AWQ_LAYOUT == 2
      /* one k a step (4 unrolled kept 32 addresses of x and spilled them on PoCL: 1.4x slower at 8 rows); word v
       * of the item is the next word's run, AWQ_KI words on */
      for (uint k = 0; k < AWQ_CHUNK; k++) {
        if (k % 16u == 0u) PREFETCH_ROW(qweight, k0 + k, j, W, K); /* once per 64-byte line */
#if AWQ_COLVEC
        AWQ_K_STEP_AT(run + k, AWQ_KI, k);
#else
        AWQ_K_STEP(run[k], k);
#endif
      }
#else
      for (uint k = 0; k < AWQ_CHUNK; k += 4) {
        PREFETCH_ROW(qweight, k0 + k, j, W, K);
        const uint4 w4 = vload4(0, qweight + KI_INDEX(k0 + k, j, W));
        AWQ_K_STEP(w4.s0, k);
        AWQ_K_STEP(w4.s1, k + 1);
        AWQ_K_STEP(w4.s2, k + 2);
        AWQ_K_STEP(w4.s3, k + 3);
      }
#endif
      /* zero point and scale once per chunk: s * (sum x q - z sum x), the pair read at once */
#if AWQ_COLVEC
      #pragma unroll
      for (uint i = 0; i < ACC_N; i++) {
        __global const half *pair = scales + 2 * ((size_t)g * N + 8 * (j + COL_WORDS * i));
        /* (s, z) of the first and second half of the columns (with two words: word 2i, then 2i + 1) */
        const acc_t a = VLOAD_HALF_ACC(0, pair), b = VLOAD_HALF_ACC(1, pair);
        const acc_t s = EVENS(a, b) * COL_UNSCALE_ACC, z = ODDS(a, b) * COL_RESCALE_ACC;
        #pragma unroll
        for (uint r = 0; r < AWQ_ROWS; r++) ACC(r, i) = fma(s, dot[r][i] - z * SX_ACC(r), ACC(r, i));
      }
#else
      #pragma unroll
      for (uint c = 0; c < 8; c++) {
        const float2 sz = vload_half2((size_t)g * N + 8 * j + c, scales);
        const float z = sz.y * RESCALE(c);
        #pragma unroll
        for (uint r = 0; r < AWQ_ROWS; r++) ACC(r, c) = fma(sz.x * UNSCALE(c), dot[r][c] - z * SX(r), ACC(r, c));
      }
#endif
#else
      __global const uint *wp = qweight + (size_t)k0 * W + j;
      const int line_start = j % 16u == 0u; /* see PREFETCH_ROW */
      for (uint k = 0; k < AWQ_CHUNK; k++, wp += W) {
        if (line_start) PREFETCH_ROW(qweight, k0 + k, j, W, K);
#if AWQ_COLVEC
        AWQ_K_STEP_AT(wp, 1, k);
#else
        const words_t w = LOAD_WORDS(wp, 0);
        AWQ_K_STEP(w, k);
#endif
      }
      /* zero point and scale once per chunk: s * (sum x q - z sum x) */
      const words_u zw = {LOAD_WORDS(qzeros, (size_t)g * W + j)};
#if AWQ_COLVEC
      #pragma unroll
      for (uint i = 0; i < ACC_N; i++) {
        const acc_t z = COL_NIBBLES_AT(zw.s, 1, i);
        const acc_t s = VLOAD_HALF_ACC(0, scales + (size_t)g * N + 8 * (j + COL_WORDS * i)) * COL_UNSCALE_ACC;
        #pragma unroll
        for (uint r = 0; r < AWQ_ROWS; r++) ACC(r, i) = fma(s, dot[r][i] - z * SX_ACC(r), ACC(r, i));
      }
#else
      #pragma unroll
      for (uint c = 0; c < 8; c++) {
        const floats_t z = NIBBLE(zw.v, c);
        lanes_t s;
        #pragma unroll
        for (uint v = 0; v < AWQ_VEC; v++) s.s[v] = vload_half((size_t)g * N + 8 * (j + v) + c, scales) * UNSCALE(c);
        #pragma unroll
        for (uint r = 0; r < AWQ_ROWS; r++) ACC(r, c) = fma(s.v, dot[r][c] - z * (floats_t)(SX(r)), ACC(r, c));
      }
#endif
#endif
#undef AWQ_K_STEP
#undef AWQ_K_STEP_AT
#undef AWQ_ROWS_FMA
#undef SX_ACC
#undef SX
#undef ADD_SX
    }
  }

#if AWQ_SPLIT > 1
  /* the split lanes' sums, added pairwise */
#if !AWQ_WI_LOOPS
  #pragma unroll
  for (uint r = 0; r < AWQ_ROWS; r++)
    #pragma unroll
    for (uint i = 0; i < ACC_N; i++) partial[ls][lr][lc][r * ACC_N + i] = acc[r][i];
#endif
  for (uint s = AWQ_SPLIT / 2; s > 0; s >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (ls < s)
      #pragma unroll
      for (uint r = 0; r < AWQ_ROWS; r++)
        #pragma unroll
        for (uint i = 0; i < ACC_N; i++) {
          ACC(r, i) += partial[ls + s][lr][lc][r * ACC_N + i];
#if !AWQ_WI_LOOPS
          partial[ls][lr][lc][r * ACC_N + i] = acc[r][i];
#endif
        }
  }
#endif
  if (ls != 0 || !active) return;
  /* Once per work-item: kept as loops (unrolled, the rounding's branches made the compile many times slower) */
  #pragma unroll 1
  for (uint r = 0; r < AWQ_ROWS; r++) {
    const uint row = wg_row0 + lr * AWQ_ROWS + r;
    if (row >= rows) continue;
    #pragma unroll 1
    for (uint i = 0; i < ACC_N; i++) {
      lanes_t a;
      a.v = ACC(r, i);
      #pragma unroll 1
      for (uint l = 0; l < ACC_LANES; l++) {
        const uint n = AWQ_COLVEC ? 8 * j + ACC_LANES * i + l : 8 * (j + l) + i;
        store_y(y, (size_t)row * N + n, a.s[l], bias, n);
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
#if AWQ_LAYOUT != 0
  const uint w = qweight[KI_INDEX(k, j, W)];
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

#if AWQ_LAYOUT != 0
/* An interleaved layout back to AutoAWQ's tensors, bit for bit (for kernels that read W in AutoAWQ's order).
 * packed [K/AWQ_KI][N/8][AWQ_KI], pairs (scale, zero) [K/G][N] as fp16 bits. global = (N/8, K). */
__kernel void awq_unpack_interleaved(__global const uint *packed, __global const ushort *pairs,
                                     __global uint *qweight, __global uint *qzeros, __global ushort *scales, uint K,
                                     uint N)
{
  const uint j = (uint)get_global_id(0), k = (uint)get_global_id(1), W = N / 8;
  if (j >= W || k >= K) return;
  qweight[(size_t)k * W + j] = packed[KI_INDEX(k, j, W)];
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
#endif

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
