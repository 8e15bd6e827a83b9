/* oft_grad.c: a trainable OFT adapter on the device - its weights and gradient, COFT, and dR -> dQ -> dw (SPEC 12). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/oft_grad.h"
#include "runtime/buffer.h"
#include "runtime/program.h"

/* Work-group size of the 1-D kernels of cl/oft_grad.cl. */
#define GRAD_WG 64

struct oftawq__oft_grad {
  cl_mem grad;               /* [weight_rows][n_el], accumulated */
  cl_mem D;                  /* dR per block [r][b][b] */
  cl_mem G;                  /* dR [weight_rows][b][b]: D itself, or its sum over blocks with block_share */
  cl_mem Q, dQ, H[2];        /* dR -> dQ */
  cl_mem *P;                 /* Neumann: Q^2 .. Q^(last-1) */
  int n_P;
  oftawq__kernel_list *kernels;
};

static void release(cl_mem *m)
{
  if (*m) clReleaseMemObject(*m);
  *m = NULL;
}

static void grad_free(struct oftawq__oft_grad *g)
{
  int i;
  if (!g) return;
  release(&g->grad);
  if (g->G != g->D) release(&g->G);
  release(&g->D);
  release(&g->Q);
  release(&g->dQ);
  release(&g->H[0]);
  release(&g->H[1]);
  for (i = 0; i < g->n_P; i++) release(&g->P[i]);
  free(g->P);
  oftawq__kernel_list_free(g->kernels);
  free(g);
}

void oftawq__oft_grad_free(oftawq_oft *oft)
{
  grad_free(oft->grad);
  oft->grad = NULL;
}

void oftawq__oft_grad_disable(oftawq_oft *oft) { oftawq__oft_grad_free(oft); }

/* Enqueues one step of the chain, after the previous ones. */
static oftawq_status enqueue(oftawq_context *ctx, cl_kernel k, const char *what, cl_uint dims, const size_t *g,
                             const size_t *l)
{
  oftawq_status status = oftawq__enqueue(ctx, k, what, dims, g, l, 0, NULL, NULL);
  return status < 0 ? status : oftawq__ordered(ctx);
}

static oftawq_status new_buffer(oftawq_context *ctx, size_t bytes, cl_mem *out, const char *what)
{
  cl_int err = CL_SUCCESS;
  *out = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
  return *out ? OFTAWQ_OK : oftawq__cl_fail(ctx, err, "allocating %zu bytes for %s", bytes, what);
}

oftawq_status oftawq__zero_floats(oftawq_context *ctx, oftawq__kernel_list **kernels, cl_mem buf, size_t n)
{
  oftawq_status status;
  cl_kernel k;
  cl_uint count = (cl_uint)n;
  cl_int err;
  if (!n) return OFTAWQ_OK;
  if ((status = oftawq__kernel_cached(ctx, kernels, "optim", "", "optim_zero", &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, buf) | OFTAWQ__ARG(k, 1, count);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting optim_zero arguments");
  return enqueue(ctx, k, "optim_zero", 1, &n, NULL);
}

oftawq_status oftawq__oft_grad_zero(oftawq_oft *oft)
{
  if (!oft->grad) return OFTAWQ_OK;
  return oftawq__zero_floats(oft->ctx, &oft->grad->kernels, oft->grad->grad, oft->weight_count);
}

oftawq_status oftawq__oft_grad_enable(oftawq_oft *oft)
{
  oftawq_context *ctx = oft->ctx;
  size_t bytes = oft->weight_count * sizeof(float);
  oftawq_status status;
  cl_int err = CL_SUCCESS;
  if (oft->grad) return OFTAWQ_OK;
  if (!oft->w_dev) {
    oft->w_dev = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
    if (!oft->w_dev) return oftawq__cl_fail(ctx, err, "allocating %zu bytes for trainable OFT weights", bytes);
    if (bytes && (err = clEnqueueWriteBuffer(ctx->queue, oft->w_dev, CL_TRUE, 0, bytes, oft->weights, 0, NULL, NULL)) !=
                   CL_SUCCESS) {
      clReleaseMemObject(oft->w_dev);
      oft->w_dev = NULL;
      return oftawq__cl_fail(ctx, err, "uploading trainable OFT weights");
    }
  }
  if (!(oft->grad = calloc(1, sizeof *oft->grad))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = new_buffer(ctx, bytes, &oft->grad->grad, "an OFT gradient")) < 0 ||
      (status = oftawq__oft_grad_zero(oft)) < 0) {
    oftawq__oft_grad_free(oft);
    return status;
  }
  return OFTAWQ_OK;
}

cl_mem oftawq__oft_grad_buffer(const oftawq_oft *oft) { return oft->grad ? oft->grad->grad : NULL; }

void oftawq__oft_device_weights_changed(oftawq_oft *oft)
{
  oft->dirty = 1;
  oft->generation++;
  oft->needs_projection = oft->config.coft;
}

/* Columns per work-item of the vector kernels: the widest of 8, 4, 2, 1 that divides b. */
static int vec_width(int b) { return b % 8 == 0 ? 8 : b % 4 == 0 ? 4 : b % 2 == 0 ? 2 : 1; }

/* A kernel of cl/oft_grad.cl for the adapter's block size (and, for dR, the activation dtype). */
static oftawq_status grad_kernel(oftawq_oft *oft, oftawq__kernel_list **list, const char *name, int dtype,
                                 cl_kernel *out)
{
  char opts[128];
  snprintf(opts, sizeof opts, "-DOFT_BLOCK=%d -DOFT_VEC=%d -DOFT_WG=%d -DX_DTYPE=%d", oft->shape.block_size,
           vec_width(oft->shape.block_size), GRAD_WG, dtype);
  return oftawq__kernel_cached(oft->ctx, list, "oft_grad", opts, name, out);
}

oftawq_status oftawq__oft_grad_project(oftawq_oft *oft)
{
  oftawq_context *ctx = oft->ctx;
  cl_float e = (cl_float)(oft->config.eps / sqrt((double)oft->shape.weight_rows));
  size_t g[2], l[2];
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  if ((status = grad_kernel(oft, &oft->kernels, "oft_coft", 0, &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, oft->w_dev) | OFTAWQ__ARG(k, 1, e);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting oft_coft arguments");
  g[0] = l[0] = GRAD_WG;
  g[1] = (size_t)oft->shape.weight_rows;
  l[1] = 1;
  return enqueue(ctx, k, "oft_coft", 2, g, l);
}

/* Launches a kernel over the b*b elements (vector: b*b / OFT_VEC work-items) of `blocks` blocks. */
static oftawq_status per_block(oftawq_oft *oft, cl_kernel k, const char *what, size_t blocks, int vector)
{
  size_t g[2], l[2];
  g[0] = (size_t)oft->shape.block_size * oft->shape.block_size / (size_t)(vector ? vec_width(oft->shape.block_size) : 1);
  g[1] = blocks;
  l[0] = GRAD_WG;
  l[1] = 1;
  return enqueue(oft->ctx, k, what, 2, g, l);
}

static oftawq_status per_element(oftawq_oft *oft, cl_kernel k, const char *what, size_t blocks)
{
  return per_block(oft, k, what, blocks, 0);
}

static oftawq_status transpose(oftawq_oft *oft, oftawq__kernel_list **list, cl_mem A, cl_mem B, cl_float alpha)
{
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  if ((status = grad_kernel(oft, list, "oft_grad_transpose", 0, &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, A) | OFTAWQ__ARG(k, 1, B) | OFTAWQ__ARG(k, 2, alpha);
  if (err != CL_SUCCESS) return oftawq__cl_fail(oft->ctx, err, "setting oft_grad_transpose arguments");
  return per_element(oft, k, "oft_grad_transpose", (size_t)oft->shape.weight_rows);
}

oftawq_status oftawq__oft_grad_transpose(oftawq_oft *oft, cl_mem Rt)
{
  cl_mem R;
  oftawq_status status;
  if ((status = oftawq__oft_rotation_buffer(oft, &R)) < 0) return status;
  return transpose(oft, &oft->kernels, R, Rt, 0.0f);
}

/* C = alpha A B + beta C + gamma D per block (D may be NULL when gamma is 0). */
static oftawq_status mm(oftawq_oft *oft, cl_mem A, cl_mem B, cl_mem C, cl_float alpha, cl_float beta, cl_mem D,
                        cl_float gamma)
{
  struct oftawq__oft_grad *gr = oft->grad;
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  if ((status = grad_kernel(oft, &gr->kernels, "oft_grad_mm", 0, &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, A) | OFTAWQ__ARG(k, 1, B) | OFTAWQ__ARG(k, 2, C) | OFTAWQ__ARG(k, 3, D) |
        OFTAWQ__ARG(k, 4, alpha) | OFTAWQ__ARG(k, 5, beta) | OFTAWQ__ARG(k, 6, gamma);
  if (err != CL_SUCCESS) return oftawq__cl_fail(oft->ctx, err, "setting oft_grad_mm arguments");
  return per_block(oft, k, "oft_grad_mm", (size_t)oft->shape.weight_rows, 1);
}

/* The scratch of dR -> dQ, made on first use. */
static oftawq_status scratch(oftawq_oft *oft)
{
  struct oftawq__oft_grad *g = oft->grad;
  oftawq_context *ctx = oft->ctx;
  const size_t bb = (size_t)oft->shape.block_size * oft->shape.block_size * sizeof(float);
  const size_t wr = (size_t)oft->shape.weight_rows;
  oftawq_status status;
  int i, powers = oft->config.use_cayley_neumann ? oftawq__oft_neumann_last(oft) - 2 : 0;
  if (g->D) return OFTAWQ_OK;
  if ((status = new_buffer(ctx, bb * (size_t)oft->shape.r, &g->D, "dR")) < 0) return status;
  if (oft->config.block_share) {
    if ((status = new_buffer(ctx, bb, &g->G, "dR")) < 0) return status;
  } else {
    g->G = g->D;
  }
  if ((status = new_buffer(ctx, bb * wr, &g->H[0], "dQ")) < 0 ||
      (status = new_buffer(ctx, bb * wr, &g->H[1], "dQ")) < 0 || (status = new_buffer(ctx, bb * wr, &g->dQ, "dQ")) < 0 ||
      (status = new_buffer(ctx, bb * wr, &g->Q, "Q")) < 0)
    return status;
  if (powers > 0) {
    if (!(g->P = calloc((size_t)powers, sizeof *g->P))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    for (i = 0; i < powers; i++, g->n_P++)
      if ((status = new_buffer(ctx, bb * wr, &g->P[i], "Q powers")) < 0) return status;
  }
  return OFTAWQ_OK;
}

/* grad += scale (dQ[r][c] - dQ[c][r]) over the packed upper triangle, with dQ = A + B (B may be NULL). */
static oftawq_status add_dw(oftawq_oft *oft, cl_mem A, cl_mem B, cl_float scale)
{
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  if ((status = grad_kernel(oft, &oft->grad->kernels, "oft_grad_dw", 0, &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, A) | OFTAWQ__ARG(k, 1, B) | OFTAWQ__ARG(k, 2, oft->grad->grad) | OFTAWQ__ARG(k, 3, scale);
  if (err != CL_SUCCESS) return oftawq__cl_fail(oft->ctx, err, "setting oft_grad_dw arguments");
  return per_element(oft, k, "oft_grad_dw", (size_t)oft->shape.weight_rows);
}

/* Exact Cayley: R = 2 A^-1 - I with A = I + Q, so A^-1 = (R + I) / 2 and dQ = -2 A^-T dR A^-T
 * = -1/2 S dR S with S = (R + I)^T. */
static oftawq_status exact_dw(oftawq_oft *oft)
{
  struct oftawq__oft_grad *g = oft->grad;
  cl_mem R;
  oftawq_status status;
  if ((status = oftawq__oft_rotation_buffer(oft, &R)) < 0 || (status = transpose(oft, &g->kernels, R, g->Q, 1.0f)) < 0 ||
      (status = mm(oft, g->Q, g->G, g->H[0], 1.0f, 0.0f, NULL, 0.0f)) < 0 ||
      (status = mm(oft, g->H[0], g->Q, g->dQ, -0.5f, 0.0f, NULL, 0.0f)) < 0)
    return status;
  return add_dw(oft, g->dQ, NULL, 1.0f);
}

/* Neumann: R = I + sum_{k=1..K} c_k P_k with P_1 = Q, P_k = P_{k-1} Q. Reverse mode through that loop:
 * H_K = c_K dR; for k = K..2: dQ += P_{k-1}^T H_k and H_{k-1} = H_k Q^T + c_{k-1} dR; then dQ += H_1.
 * Q is skew-symmetric, so Q^T = -Q and P_{k-1}^T = (-1)^(k-1) P_{k-1}: no transposed products (PEFT's autograd
 * transposes its computed powers, which differ from these by fp32 rounding). H_K is not formed: its factor
 * c_K rides on the first products. */
static oftawq_status neumann_dw(oftawq_oft *oft)
{
  struct oftawq__oft_grad *g = oft->grad;
  const int last = oftawq__oft_neumann_last(oft);
  oftawq_status status;
  cl_mem h = g->G;
  cl_float hs = oftawq__oft_neumann_coef(oft, last);
  int k, cur = 0;
  if (last == 0) return OFTAWQ_OK; /* R = I: no gradient */
  if (last == 1) return add_dw(oft, g->G, NULL, hs); /* R = I + 2Q */
  if ((status = oftawq__oft_enqueue_skew(oft, g->Q)) < 0 || (status = oftawq__ordered(oft->ctx)) < 0)
    return status;
  for (k = 2; k < last; k++) /* P_k = P_{k-1} Q into P[k-2] */
    if ((status = mm(oft, k == 2 ? g->Q : g->P[k - 3], g->Q, g->P[k - 2], 1.0f, 0.0f, NULL, 0.0f)) < 0) return status;
  for (k = last; k >= 2; k--) {
    cl_mem prev = k == 2 ? g->Q : g->P[k - 3]; /* P_{k-1} */
    cl_float sign = (k - 1) % 2 ? -1.0f : 1.0f;
    if ((status = mm(oft, prev, h, g->dQ, sign * hs, k == last ? 0.0f : 1.0f, NULL, 0.0f)) < 0 ||
        (status = mm(oft, h, g->Q, g->H[cur], -hs, 0.0f, g->G, oftawq__oft_neumann_coef(oft, k - 1))) < 0)
      return status;
    h = g->H[cur];
    cur ^= 1;
    hs = 1.0f;
  }
  return add_dw(oft, g->dQ, h, 1.0f); /* dQ + H_1 */
}

oftawq_status oftawq__oft_grad_accumulate(oftawq_oft *oft, oftawq_dtype dtype, cl_mem x, cl_mem g, size_t rows)
{
  struct oftawq__oft_grad *gr = oft->grad;
  oftawq_context *ctx = oft->ctx;
  cl_uint nrows = (cl_uint)rows, d = (cl_uint)oft->shape.in_features, blocks = (cl_uint)oft->shape.r;
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  if (!gr) return oftawq__fail(ctx, OFTAWQ_E_INTERNAL, "accumulating into a frozen adapter");
  if (oft->shape.n_elements == 0) return OFTAWQ_OK; /* b = 1: no weights */
  if ((status = scratch(oft)) < 0 || (status = grad_kernel(oft, &gr->kernels, "oft_grad_dr", (int)dtype, &k)) < 0)
    return status;
  err = OFTAWQ__ARG(k, 0, x) | OFTAWQ__ARG(k, 1, g) | OFTAWQ__ARG(k, 2, gr->D) | OFTAWQ__ARG(k, 3, nrows) |
        OFTAWQ__ARG(k, 4, d);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting oft_grad_dr arguments");
  if ((status = per_block(oft, k, "oft_grad_dr", (size_t)oft->shape.r, 1)) < 0) return status;
  if (oft->config.block_share) {
    if ((status = grad_kernel(oft, &gr->kernels, "oft_grad_sum_blocks", 0, &k)) < 0) return status;
    err = OFTAWQ__ARG(k, 0, gr->D) | OFTAWQ__ARG(k, 1, gr->G) | OFTAWQ__ARG(k, 2, blocks);
    if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting oft_grad_sum_blocks arguments");
    if ((status = per_element(oft, k, "oft_grad_sum_blocks", 1)) < 0) return status;
  }
  return oft->config.use_cayley_neumann ? neumann_dw(oft) : exact_dw(oft);
}
