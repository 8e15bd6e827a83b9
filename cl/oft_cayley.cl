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

/* Q_i = skew(w_i) and, unless R is NULL, R_i = I (+ 2 Q_i when two_q != 0).
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
  if (R) R[(size_t)blk * BB + idx] = (r == c ? 1.0f : 0.0f) + (two_q ? 2.0f * q : 0.0f);
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

#ifndef OFT_GJ_WG
#define OFT_GJ_WG 64
#endif

/* Exact Cayley R = (I - Q)(I + Q)^-1 by Gauss-Jordan with partial pivoting, one work-group per block:
 * since Q^T = -Q, (I - Q) X^T = (I + Q) with X = R, so the augmented [I - Q | I + Q] reduces to [I | R^T].
 * Q: [blocks][b][b] (from oft_skew); A: scratch [blocks][b][2b]; R: [blocks][b][b].
 * global = (OFT_GJ_WG, blocks), local = (OFT_GJ_WG, 1). */
__kernel __attribute__((reqd_work_group_size(OFT_GJ_WG, 1, 1)))
void oft_cayley_exact(__global const float *Q, __global float *A, __global float *R)
{
  __local float best[OFT_GJ_WG];
  __local int where[OFT_GJ_WG];
  __local float factor[OFT_BLOCK];
  const uint lid = (uint)get_local_id(0), blk = (uint)get_group_id(1);
  const uint W2 = 2 * OFT_BLOCK;
  __global const float *Qb = Q + (size_t)blk * BB;
  __global float *Ab = A + (size_t)blk * OFT_BLOCK * W2;

  for (uint i = lid; i < OFT_BLOCK * W2; i += OFT_GJ_WG) {
    const uint r = i / W2, c = i - r * W2, cc = c < OFT_BLOCK ? c : c - OFT_BLOCK;
    const float q = Qb[r * OFT_BLOCK + cc], id = (r == cc) ? 1.0f : 0.0f;
    Ab[i] = c < OFT_BLOCK ? id - q : id + q;
  }
  barrier(CLK_GLOBAL_MEM_FENCE);

  for (uint k = 0; k < OFT_BLOCK; k++) {
    /* pivot: the largest |A[i][k]| for i >= k */
    float m = -1.0f;
    int at = (int)k;
    for (uint i = k + lid; i < OFT_BLOCK; i += OFT_GJ_WG) {
      const float v = fabs(Ab[i * W2 + k]);
      if (v > m) {
        m = v;
        at = (int)i;
      }
    }
    best[lid] = m;
    where[lid] = at;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = OFT_GJ_WG / 2; s > 0; s >>= 1) {
      if (lid < s && (best[lid + s] > best[lid] || (best[lid + s] == best[lid] && where[lid + s] < where[lid]))) {
        best[lid] = best[lid + s];
        where[lid] = where[lid + s];
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    const uint p = (uint)where[0];
    if (p != k)
      for (uint c = lid; c < W2; c += OFT_GJ_WG) {
        const float t = Ab[k * W2 + c];
        Ab[k * W2 + c] = Ab[p * W2 + c];
        Ab[p * W2 + c] = t;
      }
    barrier(CLK_GLOBAL_MEM_FENCE);
    const float pivot = Ab[k * W2 + k];
    barrier(CLK_GLOBAL_MEM_FENCE);
    for (uint c = lid; c < W2; c += OFT_GJ_WG) Ab[k * W2 + c] /= pivot;
    for (uint i = lid; i < OFT_BLOCK; i += OFT_GJ_WG) factor[i] = i == k ? 0.0f : Ab[i * W2 + k];
    barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
    for (uint i = lid; i < OFT_BLOCK * W2; i += OFT_GJ_WG) {
      const uint r = i / W2, c = i - r * W2;
      if (r != k) Ab[i] = fma(-factor[r], Ab[k * W2 + c], Ab[i]);
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
  }
  for (uint i = lid; i < BB; i += OFT_GJ_WG) {
    const uint r = i / OFT_BLOCK, c = i - r * OFT_BLOCK;
    R[(size_t)blk * BB + i] = Ab[c * W2 + OFT_BLOCK + r];
  }
}
