/* oft_cayley.cl: building R from OFT weights on the device - skew matrices and the Cayley-Neumann series.
 *
 * Build parameters (-D):
 *   OFT_BLOCK   block size b
 *   OFT_TILE    tile edge of the batched matrix product (work-group OFT_TILE x OFT_TILE)
 */
#ifndef OFT_BLOCK
#error "OFT_BLOCK must be defined"
#endif
#ifndef OFT_TILE
#define OFT_TILE 8
#endif

#define BB (OFT_BLOCK * OFT_BLOCK)

/* Q_i = skew(w_i) and R_i = I (+ 2 Q_i when two_q != 0).
 * w: [blocks][b(b-1)/2]; Q, R: [blocks][b][b]. global = (>= b*b, blocks). */
__kernel void oft_skew(__global const float *w, __global float *Q, __global float *R, uint two_q)
{
  const uint idx = (uint)get_global_id(0);
  const uint blk = (uint)get_global_id(1);
  if (idx >= BB) return;
  const uint r = idx / OFT_BLOCK, c = idx - r * OFT_BLOCK;
  const uint n_el = OFT_BLOCK * (OFT_BLOCK - 1) / 2;
  __global const float *wb = w + (size_t)blk * n_el;
  float q = 0.0f;
  /* index of (lo, hi) in the row-major strict upper triangle */
  if (r < c)
    q = wb[r * OFT_BLOCK - r * (r + 1) / 2 + (c - r - 1)];
  else if (r > c)
    q = -wb[c * OFT_BLOCK - c * (c + 1) / 2 + (r - c - 1)];
  Q[(size_t)blk * BB + idx] = q;
  R[(size_t)blk * BB + idx] = (r == c ? 1.0f : 0.0f) + (two_q ? 2.0f * q : 0.0f);
}

/* C_i = A_i . Q_i and R_i += alpha * C_i, for every block i.
 * global = (ceil(b / T) * T, ceil(b / T) * T, blocks), local = (T, T, 1). */
__kernel void oft_power_step(__global const float *A, __global const float *Q, __global float *C,
                             __global float *R, float alpha)
{
  __local float As[OFT_TILE][OFT_TILE];
  __local float Qs[OFT_TILE][OFT_TILE];
  const uint col = (uint)get_global_id(0), row = (uint)get_global_id(1), blk = (uint)get_global_id(2);
  const uint lc = (uint)get_local_id(0), lr = (uint)get_local_id(1);
  const size_t base = (size_t)blk * BB;
  float acc = 0.0f;
  for (uint t = 0; t < OFT_BLOCK; t += OFT_TILE) {
    const uint ak = t + lc, qk = t + lr;
    As[lr][lc] = (row < OFT_BLOCK && ak < OFT_BLOCK) ? A[base + (size_t)row * OFT_BLOCK + ak] : 0.0f;
    Qs[lr][lc] = (qk < OFT_BLOCK && col < OFT_BLOCK) ? Q[base + (size_t)qk * OFT_BLOCK + col] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint k = 0; k < OFT_TILE; k++) acc = fma(As[lr][k], Qs[k][lc], acc);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row < OFT_BLOCK && col < OFT_BLOCK) {
    const size_t i = base + (size_t)row * OFT_BLOCK + col;
    C[i] = acc;
    R[i] += alpha * acc;
  }
}
