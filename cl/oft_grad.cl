/* oft_grad.cl: OFT training kernels - COFT projection on the device, dR = sum x_blk^T g_blk, the batched
 * b x b products that take dR back through the Cayley map, and dQ -> the packed weight gradient (SPEC 12).
 *
 * Build parameters (-D), besides X_DTYPE (common.cl):
 *   OFT_BLOCK     block size b
 *   OFT_VEC       columns per work-item of oft_grad_dr and oft_grad_mm: 1, 2, 4 or 8 (must divide b)
 *   OFT_WG        work-group size of the 1-D kernels (a power of two)
 */
#ifndef OFT_BLOCK
#error "OFT_BLOCK must be defined"
#endif
#ifndef OFT_WG
#define OFT_WG 64
#endif
#ifndef OFT_VEC
#define OFT_VEC 1
#endif

/* VLOAD / VSTORE: OFT_VEC floats; VLOAD_X: OFT_VEC activations of the dtype, as floats */
#if OFT_VEC == 8
#define VEC_T float8
#define VLOAD(p) vload8(0, (p))
#define VSTORE(v, p) vstore8((v), 0, (p))
#define VLOAD_HALF(p) vload_half8(0, (p))
#elif OFT_VEC == 4
#define VEC_T float4
#define VLOAD(p) vload4(0, (p))
#define VSTORE(v, p) vstore4((v), 0, (p))
#define VLOAD_HALF(p) vload_half4(0, (p))
#elif OFT_VEC == 2
#define VEC_T float2
#define VLOAD(p) vload2(0, (p))
#define VSTORE(v, p) vstore2((v), 0, (p))
#define VLOAD_HALF(p) vload_half2(0, (p))
#else
#define VEC_T float
#define VLOAD(p) (*(p))
#define VSTORE(v, p) (*(p) = (v))
#define VLOAD_HALF(p) vload_half(0, (p))
#endif
#if X_DTYPE == 1
#define VLOAD_X(p) VLOAD_HALF(p)
#elif X_DTYPE == 0
#define VLOAD_X(p) VLOAD(p)
#else
#error "oft_grad takes F32 or F16 activations"
#endif
/* work-items per block of the vector kernels: one per row and OFT_VEC columns */
#define VITEMS (BB / OFT_VEC)

#define BB (OFT_BLOCK * OFT_BLOCK)
#define N_EL (OFT_BLOCK * (OFT_BLOCK - 1) / 2)

/* COFT (PEFT's _project_batch) in place: per weight row, w *= e / (sqrt(2) |w|) when sqrt(2) |w| > e,
 * e = eps / sqrt(rows) computed by the host. One work-group per row: global = (OFT_WG, rows), local = (OFT_WG, 1). */
__kernel __attribute__((reqd_work_group_size(OFT_WG, 1, 1)))
void oft_coft(__global float *w, float e)
{
  __local float part[OFT_WG];
  const uint lid = (uint)get_local_id(0);
  __global float *row = w + (size_t)get_group_id(1) * N_EL;
  float s = 0.0f;
  for (uint m = lid; m < N_EL; m += OFT_WG) s = fma(row[m], row[m], s);
  part[lid] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint h = OFT_WG / 2; h > 0; h >>= 1) {
    if (lid < h) part[lid] += part[lid + h];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float norm = sqrt(2.0f * part[0]);
  if (norm > e)
    for (uint m = lid; m < N_EL; m += OFT_WG) row[m] = e * (row[m] / norm);
}

/* dR per block: D[blk][k][c] = sum_m x[m][blk b + k] * g[m][blk b + c] (fp32), x and g [rows][d]; a work-item
 * takes OFT_VEC consecutive columns c. global = (b*b/OFT_VEC rounded up to OFT_WG, blocks), local = (OFT_WG, 1). */
__kernel __attribute__((reqd_work_group_size(OFT_WG, 1, 1)))
void oft_grad_dr(__global const X_TYPE *x, __global const X_TYPE *g, __global float *D, uint rows, uint d)
{
  const uint idx = (uint)get_global_id(0), blk = (uint)get_global_id(1);
  if (idx >= VITEMS) return;
  const uint k = idx / (OFT_BLOCK / OFT_VEC), c = (idx - k * (OFT_BLOCK / OFT_VEC)) * OFT_VEC;
  __global const X_TYPE *xb = x + (size_t)blk * OFT_BLOCK + k;
  __global const X_TYPE *gb = g + (size_t)blk * OFT_BLOCK + c;
  VEC_T acc = (VEC_T)(0.0f);
  for (uint m = 0; m < rows; m++) acc = fma((VEC_T)(LOAD_X(xb, (size_t)m * d)), VLOAD_X(gb + (size_t)m * d), acc);
  VSTORE(acc, D + (size_t)blk * BB + (size_t)k * OFT_BLOCK + c);
}

/* block_share: S[i] = sum over the blocks of D[blk][i] (one R serves every block). global = (b*b rounded up). */
__kernel __attribute__((reqd_work_group_size(OFT_WG, 1, 1)))
void oft_grad_sum_blocks(__global const float *D, __global float *S, uint blocks)
{
  const uint i = (uint)get_global_id(0);
  if (i >= BB) return;
  float acc = 0.0f;
  for (uint blk = 0; blk < blocks; blk++) acc += D[(size_t)blk * BB + i];
  S[i] = acc;
}

/* B[blk] = A[blk]^T + alpha I. global = (b*b rounded up to OFT_WG, blocks). */
__kernel __attribute__((reqd_work_group_size(OFT_WG, 1, 1)))
void oft_grad_transpose(__global const float *A, __global float *B, float alpha)
{
  const uint idx = (uint)get_global_id(0), blk = (uint)get_global_id(1);
  if (idx >= BB) return;
  const uint r = idx / OFT_BLOCK, c = idx - r * OFT_BLOCK;
  B[(size_t)blk * BB + idx] = A[(size_t)blk * BB + (size_t)c * OFT_BLOCK + r] + (r == c ? alpha : 0.0f);
}

/* C[blk] = alpha A[blk] B[blk] + beta C[blk] + gamma D[blk]; D may be NULL when gamma is 0; C must not alias A,
 * B or D. A work-item takes OFT_VEC consecutive columns of a row. global = (b*b/OFT_VEC rounded up to OFT_WG,
 * blocks), local = (OFT_WG, 1). */
__kernel __attribute__((reqd_work_group_size(OFT_WG, 1, 1)))
void oft_grad_mm(__global const float *A, __global const float *B, __global float *C, __global const float *D,
                 float alpha, float beta, float gamma)
{
  const uint idx = (uint)get_global_id(0), blk = (uint)get_global_id(1);
  if (idx >= VITEMS) return;
  const uint row = idx / (OFT_BLOCK / OFT_VEC), col = (idx - row * (OFT_BLOCK / OFT_VEC)) * OFT_VEC;
  const size_t base = (size_t)blk * BB, at = base + (size_t)row * OFT_BLOCK + col;
  __global const float *a = A + base + (size_t)row * OFT_BLOCK;
  __global const float *b = B + base + col;
  VEC_T acc = (VEC_T)(0.0f);
  for (uint k = 0; k < OFT_BLOCK; k++) acc = fma((VEC_T)(a[k]), VLOAD(b + (size_t)k * OFT_BLOCK), acc);
  VEC_T v = alpha * acc;
  if (beta != 0.0f) v += beta * VLOAD(C + at);
  if (gamma != 0.0f) v += gamma * VLOAD(D + at);
  VSTORE(v, C + at);
}

/* The packed weight gradient from dQ = A + B (Q[r][c] = w[m], Q[c][r] = -w[m]; B may be NULL):
 * grad[blk][m] += scale (dQ[r][c] - dQ[c][r]) over the row-major strict upper triangle, one addition per
 * call, as PyTorch adds a new gradient to .grad. global = (b*b rounded up to OFT_WG, weight rows). */
__kernel __attribute__((reqd_work_group_size(OFT_WG, 1, 1)))
void oft_grad_dw(__global const float *A, __global const float *B, __global float *grad, float scale)
{
  const uint idx = (uint)get_global_id(0), blk = (uint)get_global_id(1);
  if (idx >= BB) return;
  const uint r = idx / OFT_BLOCK, c = idx - r * OFT_BLOCK;
  if (r >= c) return;
  const size_t rc = (size_t)blk * BB + (size_t)r * OFT_BLOCK + c, cr = (size_t)blk * BB + (size_t)c * OFT_BLOCK + r;
  float d = A[rc] - A[cr];
  if (B) d += B[rc] - B[cr];
  grad[(size_t)blk * N_EL + r * OFT_BLOCK - r * (r + 1) / 2 + (c - r - 1)] += scale * d;
}
