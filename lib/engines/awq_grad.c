/* awq_grad.c: the AWQ base layer's input gradient dx = dy . W^T from the packed 4-bit weights (no dense W; SPEC 12). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "engines/awq.h"
#include "engines/awq_grad.h"
#include "runtime/buffer.h"

/* A work-item's share: up to MAX_K_PER_ITEM values of k (within one AWQ group, so dividing G) and up to
 * MAX_ROWS_PER_ITEM rows; each packed word read is used for rows x 8 products, each dy load for k x 8. */
#define MAX_K_PER_ITEM 8
#define MAX_ROWS_PER_ITEM 2

void oftawq__awq_grad_plan_for(size_t rows, int G, oftawq__awq_grad_plan *p)
{
  for (p->ki = MAX_K_PER_ITEM; G % p->ki;) p->ki /= 2;
  for (p->mi = 1; p->mi < MAX_ROWS_PER_ITEM && (size_t)(2 * p->mi) <= rows;) p->mi *= 2;
}

void oftawq__awq_grad_free(oftawq__awq_grad *g)
{
  oftawq__kernel_list_free(g->kernels);
  if (g->S) clReleaseMemObject(g->S);
  if (g->Z) clReleaseMemObject(g->Z);
  memset(g, 0, sizeof *g);
}

/* The float scales and zero points, once per layer. */
static oftawq_status float_scales(oftawq_awq *awq, oftawq__awq_grad *grad, int K, int N, int G)
{
  oftawq_context *ctx = oftawq__awq_context(awq);
  size_t bytes = (size_t)(K / G) * (size_t)N * sizeof(float), gl[2];
  cl_mem qweight, qzeros, scales;
  cl_uint n = (cl_uint)N;
  oftawq_status status;
  cl_kernel k;
  cl_int err = CL_SUCCESS;
  char opts[64];
  if (grad->S) return OFTAWQ_OK;
  grad->S = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (grad->S) grad->Z = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (!grad->S || !grad->Z) {
    status = oftawq__cl_fail(ctx, err, "allocating %zu bytes for the backward's scales", 2 * bytes);
    goto fail;
  }
  if ((status = oftawq__awq_buffers(awq, &qweight, &qzeros, &scales)) < 0) goto fail;
  snprintf(opts, sizeof opts, "-DAG_G=%d -DAG_KI=1", G);
  if ((status = oftawq__kernel_cached(ctx, &grad->kernels, "awq_grad", opts, "awq_grad_scales", &k)) < 0) goto fail;
  err = OFTAWQ__ARG(k, 0, qzeros) | OFTAWQ__ARG(k, 1, scales) | OFTAWQ__ARG(k, 2, grad->S) | OFTAWQ__ARG(k, 3, grad->Z) |
        OFTAWQ__ARG(k, 4, n);
  if (err != CL_SUCCESS) {
    status = oftawq__cl_fail(ctx, err, "setting awq_grad_scales arguments");
    goto fail;
  }
  gl[0] = (size_t)N;
  gl[1] = (size_t)(K / G);
  if ((status = oftawq__enqueue(ctx, k, "awq_grad_scales", 2, gl, NULL, 0, NULL, NULL)) < 0 ||
      (status = oftawq__ordered(ctx)) < 0)
    goto fail;
  return OFTAWQ_OK;
fail:
  if (grad->S) clReleaseMemObject(grad->S);
  if (grad->Z) clReleaseMemObject(grad->Z);
  grad->S = grad->Z = NULL;
  return status;
}

oftawq_status oftawq__awq_enqueue_grad(oftawq_awq *awq, oftawq__awq_grad *grad, oftawq_dtype dtype, cl_mem dy,
                                       cl_mem dx, size_t rows)
{
  oftawq_context *ctx = oftawq__awq_context(awq);
  oftawq__awq_grad_plan p;
  cl_mem qweight, qzeros, scales;
  cl_uint K, N, nrows = (cl_uint)rows;
  int k, n, g;
  size_t gl[2];
  oftawq_status status;
  cl_kernel kern;
  cl_int err;
  char opts[160];
  oftawq_awq_get_shape(awq, &k, &n, &g, NULL);
  K = (cl_uint)k;
  N = (cl_uint)n;
  if ((status = float_scales(awq, grad, k, n, g)) < 0) return status;
  oftawq__awq_grad_plan_for(rows, g, &p);
  if ((status = oftawq__awq_buffers(awq, &qweight, &qzeros, &scales)) < 0) return status;
  snprintf(opts, sizeof opts, "-DAG_G=%d -DAG_KI=%d -DAG_MI=%d -DX_DTYPE=%d", g, p.ki, p.mi, (int)dtype);
  if ((status = oftawq__kernel_cached(ctx, &grad->kernels, "awq_grad", opts, "awq_grad_x", &kern)) < 0) return status;
  err = OFTAWQ__ARG(kern, 0, dy) | OFTAWQ__ARG(kern, 1, dx) | OFTAWQ__ARG(kern, 2, qweight) |
        OFTAWQ__ARG(kern, 3, grad->S) | OFTAWQ__ARG(kern, 4, grad->Z) | OFTAWQ__ARG(kern, 5, K) |
        OFTAWQ__ARG(kern, 6, N) | OFTAWQ__ARG(kern, 7, nrows);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting awq_grad_x arguments");
  gl[0] = (size_t)K / (size_t)p.ki;
  gl[1] = (rows + (size_t)p.mi - 1) / (size_t)p.mi;
  return oftawq__enqueue(ctx, kern, "awq_grad_x", 2, gl, NULL, 0, NULL, NULL);
}
