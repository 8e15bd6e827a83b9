/* oft_rotate.cl: the OFT block transform y = x . BD(R), row vector times each block's R (SPEC 3.6).
 *
 * Build parameters (-D), besides X_DTYPE (common.cl):
 *   OFT_BLOCK     block size b (1..512)
 *   OFT_VEC       output columns per work-item: 1, 2 or 4 (must divide OFT_BLOCK)
 *   OFT_WG        work-group size along the columns
 * Launch: global = (ceil(d / OFT_VEC) rounded up to OFT_WG, rows), local = (OFT_WG, 1).
 */
#ifndef OFT_BLOCK
#error "OFT_BLOCK must be defined"
#endif
#ifndef OFT_VEC
#define OFT_VEC 1
#endif
#ifndef OFT_WG
#define OFT_WG 64
#endif

#if OFT_VEC == 4
#define ACC_TYPE float4
#define LOAD_R(p, i) vload4(0, (p) + (i))
#elif OFT_VEC == 2
#define ACC_TYPE float2
#define LOAD_R(p, i) vload2(0, (p) + (i))
#else
#define ACC_TYPE float
#define LOAD_R(p, i) ((p)[i])
#endif

/* x, y: [rows][d] with d = blocks * OFT_BLOCK; R: [R_rows][OFT_BLOCK][OFT_BLOCK]
 * (R_rows = 1 when share != 0). y may not alias x. When row_select is not NULL,
 * only rows with row_select[row] == select are written (mixed-adapter batches). */
__kernel __attribute__((reqd_work_group_size(OFT_WG, 1, 1)))
void oft_rotate(__global const X_TYPE *x, __global X_TYPE *y, __global const float *R,
                         uint rows, uint d, uint share, __global const int *row_select, int select)
{
  const uint col = (uint)get_global_id(0) * OFT_VEC;
  const uint row = (uint)get_global_id(1);
  if (col >= d || row >= rows) return;
  if (row_select && row_select[row] != select) return;
  const uint blk = col / OFT_BLOCK;
  const uint c = col - blk * OFT_BLOCK;
  __global const X_TYPE *xb = x + (size_t)row * d + (size_t)blk * OFT_BLOCK;
  __global const float *Rb = R + (share ? (size_t)0 : (size_t)blk * OFT_BLOCK * OFT_BLOCK) + c;
  ACC_TYPE acc = (ACC_TYPE)(0.0f);
  for (uint k = 0; k < OFT_BLOCK; k++)
    acc = fma((ACC_TYPE)(LOAD_X(xb, k)), LOAD_R(Rb, (size_t)k * OFT_BLOCK), acc);

  __global X_TYPE *yo = y + (size_t)row * d + col;
#if X_DTYPE == 2
#if OFT_VEC == 4
  vstore4((ushort4)(bf16_bits(acc.s0), bf16_bits(acc.s1), bf16_bits(acc.s2), bf16_bits(acc.s3)), 0, yo);
#elif OFT_VEC == 2
  vstore2((ushort2)(bf16_bits(acc.s0), bf16_bits(acc.s1)), 0, yo);
#else
  *yo = bf16_bits(acc);
#endif
#elif X_DTYPE == 1
#if OFT_VEC == 4
  vstore_half4_rte(acc, 0, yo);
#elif OFT_VEC == 2
  vstore_half2_rte(acc, 0, yo);
#else
  vstore_half_rte(acc, 0, yo);
#endif
#else
#if OFT_VEC == 4
  vstore4(acc, 0, yo);
#elif OFT_VEC == 2
  vstore2(acc, 0, yo);
#else
  *yo = acc;
#endif
#endif
}
