/* optim.cl: optimizer kernels on flat fp32 parameters - gradient sums of squares, AdamW and SGD updates with
 * torch.optim's arithmetic (SPEC 12).
 *
 * Build parameters (-D):
 *   OPT_WG   work-group size of the reduction (a power of two)
 * The host computes every scalar in double, as PyTorch does in Python, and passes it as float.
 */
#pragma OPENCL FP_CONTRACT OFF

#ifndef OPT_WG
#define OPT_WG 64
#endif

/* p[i] = 0: gradients and optimizer state (a kernel rather than clEnqueueFillBuffer, which oclgrind's
 * uninitialized-value checker does not see as a write). global = (n). */
__kernel void optim_zero(__global float *p, uint n)
{
  const uint i = (uint)get_global_id(0);
  if (i < n) p[i] = 0.0f;
}

/* partial[offset + group] = sum of g[i]^2 over the group's strided share of n.
 * global = (groups * OPT_WG), local = (OPT_WG). */
__kernel __attribute__((reqd_work_group_size(OPT_WG, 1, 1)))
void optim_sumsq(__global const float *g, uint n, __global float *partial, uint offset)
{
  __local float part[OPT_WG];
  const uint lid = (uint)get_local_id(0), stride = (uint)get_global_size(0);
  float s = 0.0f;
  for (uint i = (uint)get_global_id(0); i < n; i += stride) s += g[i] * g[i];
  part[lid] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint h = OPT_WG / 2; h > 0; h >>= 1) {
    if (lid < h) part[lid] += part[lid + h];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) partial[offset + get_group_id(0)] = part[0];
}

/* The gradient, scaled by clip_grad_norm_'s factor when clipping (and written back, as torch scales .grad). */
inline float clipped_grad(__global float *grad, uint i, uint clip, float coef)
{
  float g = grad[i];
  if (clip) {
    g = g * coef;
    grad[i] = g;
  }
  return g;
}

/* torch.optim.AdamW, single-tensor path, after an optional clip_grad_norm_ scaling (clip != 0: g *= coef,
 * written back as torch scales .grad in place):
 *   w *= decay (= 1 - lr wd);  m = lerp(m, g, c1) (= m + c1 (g - m), fused as torch's vector lerp);
 *   v = v * beta2 + (c2 g) g;  w += (neg_step m) / (sqrt(v) / bc2_sqrt + eps). global = (n). */
__kernel void optim_adamw(__global float *w, __global float *grad, __global float *m, __global float *v, uint n,
                          uint clip, float coef, float decay, float c1, float beta2, float c2, float bc2_sqrt,
                          float neg_step, float eps)
{
  const uint i = (uint)get_global_id(0);
  if (i >= n) return;
  const float g = clipped_grad(grad, i, clip, coef);
  const float p = w[i] * decay;
  const float mi = fma(c1, g - m[i], m[i]);
  const float vi = v[i] * beta2 + (c2 * g) * g;
  const float denom = sqrt(vi) / bc2_sqrt + eps;
  m[i] = mi;
  v[i] = vi;
  w[i] = p + (neg_step * mi) / denom;
}

/* SGD without momentum or decay: w -= lr g, fused as torch's vector add with alpha. global = (n). */
__kernel void optim_sgd(__global float *w, __global float *grad, uint n, uint clip, float coef, float neg_lr)
{
  const uint i = (uint)get_global_id(0);
  if (i >= n) return;
  w[i] = fma(clipped_grad(grad, i, clip, coef), neg_lr, w[i]);
}
