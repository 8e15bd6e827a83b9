/* awq_grad.cl: the AWQ base layer's input gradient dx = dy . W^T straight from the packed 4-bit weights (no dense
 * copy of W), fp32 sums, rounded to the activation dtype (SPEC 12).
 *
 * Layout (SPEC 4): qweight uint [K][N/8], qzeros uint [K/G][N/8], scales half [K/G][N];
 * column 8j+c of a word sits at nibble 4 * {0,4,1,5,2,6,3,7}[c]. W[k][n] = (q - z) * s = q s - z s, exact in
 * fp32 (s has 11 significant bits, q and z 4): awq_grad_scales turns s and z s into floats once, since
 * converting halves inside the loop costs more than the products on devices without fp16 hardware.
 * Row k of W is a contiguous row of qweight: a work-item streams AG_KI rows of it (values of k in one group,
 * so they share each word column's scales and zeros) against AG_MI rows of dy, 8 columns at a time.
 * (Written with scalar arrays: oclgrind 21.10's uninitialized-value checker crashes on private arrays of
 * float8; the compiler vectorises the loop over the 8 columns alike.)
 *
 * Build parameters (-D), besides X_DTYPE (common.cl):
 *   AG_G    group size (a multiple of AG_KI)
 *   AG_KI   values of k per work-item
 *   AG_MI   rows per work-item
 */
#ifndef AG_G
#error "AG_G must be defined"
#endif
#ifndef AG_KI
#define AG_KI 4
#endif
#ifndef AG_MI
#define AG_MI 4
#endif

#define AG_SHIFT(c) (4u * (((c) & 1u) * 4u + ((c) >> 1)))

/* The scales and zero points in float, for every kernel below: S[g][n] = s, Z[g][n] = z s (so that
 * W = q S - Z, exact: z s is exact in fp32). global = (N, K / G). */
__kernel void awq_grad_scales(__global const uint *qzeros, __global const half *scales, __global float *S,
                              __global float *Z, uint N)
{
  const uint n = (uint)get_global_id(0), g = (uint)get_global_id(1);
  if (n >= N) return;
  const size_t i = (size_t)g * N + n;
  const float s = vload_half(i, scales);
  S[i] = s;
  Z[i] = (float)((qzeros[(size_t)g * (N / 8) + n / 8] >> AG_SHIFT(n & 7u)) & 0xfu) * s;
}

#if X_DTYPE != 0 && X_DTYPE != 1
#error "awq_grad takes F32 or F16 activations"
#endif

/* dx[m][k] for AG_KI values of k (one group) and AG_MI rows per work-item: along each row of qweight, a
 * word's 8 columns are dequantised and multiplied with 8 elements of each dy row (8 partial sums per
 * output, which the compiler keeps in one vector register). global = (K / AG_KI, ceil(rows / AG_MI)). */
__kernel void awq_grad_x(__global const X_TYPE *dy, __global X_TYPE *dx, __global const uint *qweight,
                         __global const float *S, __global const float *Z, uint K, uint N, uint rows)
{
  const uint k0 = (uint)get_global_id(0) * AG_KI, m0 = (uint)get_global_id(1) * AG_MI, W = N / 8;
  if (k0 >= K || m0 >= rows) return;
  const uint g = k0 / AG_G;
  __global const float *Sg = S + (size_t)g * N, *Zg = Z + (size_t)g * N;
  float acc[AG_KI][AG_MI][8];
  for (uint a = 0; a < AG_KI; a++)
    for (uint b = 0; b < AG_MI; b++)
      for (uint c = 0; c < 8; c++) acc[a][b][c] = 0.0f;
  for (uint j = 0; j < W; j++) {
    float sv[8], zv[8], y[AG_MI][8];
    for (uint c = 0; c < 8; c++) {
      sv[c] = Sg[8 * j + c];
      zv[c] = Zg[8 * j + c];
    }
    for (uint b = 0; b < AG_MI; b++) {
      const size_t m = m0 + b < rows ? m0 + b : rows - 1; /* past the last row: computed, not stored */
      for (uint c = 0; c < 8; c++) y[b][c] = LOAD_X(dy, m * N + 8 * j + c);
    }
    for (uint a = 0; a < AG_KI; a++) {
      const uint qv = qweight[(size_t)(k0 + a) * W + j];
      for (uint c = 0; c < 8; c++) {
        const float w = fma((float)((qv >> AG_SHIFT(c)) & 0xfu), sv[c], -zv[c]);
        for (uint b = 0; b < AG_MI; b++) acc[a][b][c] = fma(y[b][c], w, acc[a][b][c]);
      }
    }
  }
  for (uint b = 0; b < AG_MI; b++) {
    if (m0 + b >= rows) continue;
    for (uint a = 0; a < AG_KI; a++)
      STORE_X(((acc[a][b][0] + acc[a][b][4]) + (acc[a][b][2] + acc[a][b][6])) +
                ((acc[a][b][1] + acc[a][b][5]) + (acc[a][b][3] + acc[a][b][7])),
              dx, (size_t)(m0 + b) * K + k0 + a);
  }
}
