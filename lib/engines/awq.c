/* awq.c: AWQ GEMM base layers - validation, upload, and the choice among GEMV, tiled GEMM and dense (CLBlast) paths. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef OFTAWQ_HAVE_CLBLAST
#include <clblast_c.h>
#endif

#include "engines/awq.h"
#include "runtime/buffer.h"
#include "runtime/program.h"
#include "tools/tune.h"

#define GEMV_MAX_ROWS_PER_ITEM 4
/* Largest k-chunk: bounds the GEMM's local tile. */
#define MAX_CHUNK 64
#define NEVER ((size_t)-1)

/* Shipped defaults until a device is tuned (oftawq tune), most specific first: the first row whose
 * platform / vendor / name substrings (NULL: any) and device type (-1: any) match the device wins. */
static const struct device_defaults {
  const char *platform, *vendor, *name;
  int gpu;
  size_t gemv_max_rows, dense_min_rows;   /* GEMV up to, the dense (CLBlast) path from this many rows */
  int split, cols, gcols, grows, grgroups;
} defaults[] = {
  /* PoCL on CPUs, measured (oftawq tune 2048x2048, 2 cores): the GEMV for decode, the tiled GEMM with
   * one-row work-groups from 2 rows (3x to 4x faster there than 4x4 tiles), never the dense path. */
  {"Portable Computing Language", NULL, NULL, -1, 1, NEVER, 8, 16, 16, 2, 1},
  /* GPUs: GEMV for a few tokens, dense from 256 (vLLM's switch; AutoAWQ's is 1024). */
  {NULL, NULL, NULL, 1, 8, 256, 8, 16, 16, 4, 4},
  /* anything else (other CPU runtimes, accelerators) */
  {NULL, NULL, NULL, -1, 4, 256, 8, 16, 16, 2, 1},
};

enum { K_GEMV, K_GEMM, K_ROUND, K_FINISH, K_COUNT };

struct oftawq_awq {
  oftawq_context *ctx;
  int K, N, G, chunk, has_bias;
  cl_mem qweight, qzeros, scales, bias;
  oftawq_awq_path forced;
  oftawq__kernel_list *kernels;  /* every variant used so far */
  cl_mem dense;                  /* [K][N] fp32, built on first dense use */
  cl_mem scratch_x, scratch_y;   /* dense path, grown as needed */
  size_t scratch_x_bytes, scratch_y_bytes;
};

void oftawq_awq_tensors_init(oftawq_awq_tensors *t)
{
  if (!t) return;
  memset(t, 0, sizeof *t);
  t->size = sizeof *t;
}

void oftawq_awq_destroy(oftawq_awq *awq)
{
  if (!awq) return;
  {
    cl_mem bufs[] = {awq->qweight, awq->qzeros, awq->scales, awq->bias, awq->dense, awq->scratch_x, awq->scratch_y};
    size_t i;
    for (i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
      if (bufs[i]) clReleaseMemObject(bufs[i]);
  }
  oftawq__kernel_list_free(awq->kernels);
  free(awq);
}

static oftawq_status upload(oftawq_awq *awq, cl_mem *out, const void *host, size_t bytes, const char *name)
{
  cl_int err = CL_SUCCESS;
  *out = clCreateBuffer(awq->ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, (void *)(uintptr_t)host,
                        &err);
  if (!*out) return oftawq__cl_fail(awq->ctx, err, "uploading %s (%zu bytes)", name, bytes);
  return OFTAWQ_OK;
}

oftawq_status oftawq_awq_create(oftawq_context *ctx, const oftawq_awq_tensors *t, oftawq_awq **out)
{
  oftawq_awq *awq = NULL;
  oftawq_status status = OFTAWQ_OK;
  size_t W, groups, qw_bytes, qz_bytes, sc_bytes;
  int G;
  if (out) *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_awq_create: NULL output");
  *out = NULL;
  if (!t || t->size < sizeof *t) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL or uninitialised tensors");
  if (t->K < 1 || t->N < 1)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: K (%d) and N (%d) must be positive", t->K, t->N);
  G = t->G == -1 ? t->K : t->G;
  if (G < 1 || t->K % G != 0)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "AWQ layer: group size %d must divide in_features K = %d (or be -1)", t->G, t->K);
  if (t->N % 8 != 0)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: out_features N = %d is not a multiple of 8",
                        t->N);
  if (!t->qweight || !t->qzeros || !t->scales)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: missing tensor %s",
                        !t->qweight ? "qweight" : !t->qzeros ? "qzeros" : "scales");
  W = (size_t)t->N / 8;
  groups = (size_t)(t->K / G);
  if (!oftawq__mul_size((size_t)t->K, W * 4, &qw_bytes) || !oftawq__mul_size(groups, W * 4, &qz_bytes) ||
      !oftawq__mul_size(groups, (size_t)t->N * 2, &sc_bytes))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: K = %d x N = %d overflows", t->K, t->N);
  if (!(awq = calloc(1, sizeof *awq))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  awq->ctx = ctx;
  awq->K = t->K;
  awq->N = t->N;
  awq->G = G;
  awq->chunk = G;
  while (awq->chunk > MAX_CHUNK && awq->chunk % 2 == 0) awq->chunk /= 2;
  if (awq->chunk > 4 * MAX_CHUNK) awq->chunk = 1; /* an odd huge group: fall back to single-k chunks */
  awq->has_bias = t->bias != NULL;
  OFTAWQ__CHECK(upload(awq, &awq->qweight, t->qweight, qw_bytes, "qweight"));
  OFTAWQ__CHECK(upload(awq, &awq->qzeros, t->qzeros, qz_bytes, "qzeros"));
  OFTAWQ__CHECK(upload(awq, &awq->scales, t->scales, sc_bytes, "scales"));
  if (t->bias) OFTAWQ__CHECK(upload(awq, &awq->bias, t->bias, (size_t)t->N * 2, "bias"));
  *out = awq;
  return OFTAWQ_OK;
fail:
  oftawq_awq_destroy(awq);
  return status;
}

static int have_dense(void)
{
#ifdef OFTAWQ_HAVE_CLBLAST
  return 1;
#else
  return 0;
#endif
}

oftawq_status oftawq_awq_set_path(oftawq_awq *awq, oftawq_awq_path path)
{
  if (!awq || path < OFTAWQ_AWQ_AUTO || path > OFTAWQ_AWQ_DENSE) return OFTAWQ_E_INVALID_ARGUMENT;
  awq->forced = path;
  return OFTAWQ_OK;
}

static int matches(const char *have, const char *want) { return !want || strstr(have, want) != NULL; }

void oftawq__awq_default_plan(const oftawq_context *ctx, size_t rows, oftawq__awq_plan *p)
{
  const oftawq_device_info *i = &ctx->info;
  const struct device_defaults *d = defaults;
  while (d < defaults + sizeof defaults / sizeof defaults[0] - 1 &&
         !(matches(i->platform_name, d->platform) && matches(i->vendor, d->vendor) && matches(i->name, d->name) &&
           (d->gpu < 0 || d->gpu == i->is_gpu)))
    d++;
  memset(p, 0, sizeof *p);
  p->path = rows <= d->gemv_max_rows ? OFTAWQ_AWQ_GEMV : rows >= d->dense_min_rows ? OFTAWQ_AWQ_DENSE : OFTAWQ_AWQ_GEMM;
  p->split = d->split;
  p->cols = d->cols;
  for (p->rpi = 1; p->rpi < GEMV_MAX_ROWS_PER_ITEM && (size_t)(2 * p->rpi) <= rows;) p->rpi *= 2;
  p->gcols = d->gcols;
  p->grows = d->grows;
  p->grgroups = d->grgroups;
}

void oftawq__awq_plan_for(const oftawq_awq *awq, size_t rows, oftawq__awq_plan *p)
{
  oftawq__awq_default_plan(awq->ctx, rows, p);
  oftawq__tune_awq_plan(awq->ctx, awq->K, awq->N, awq->G, rows, p);
  if (awq->forced != OFTAWQ_AWQ_AUTO) p->path = awq->forced;
  if (p->path == OFTAWQ_AWQ_DENSE && !have_dense()) p->path = OFTAWQ_AWQ_GEMM;
}

oftawq_awq_path oftawq_awq_path_for(const oftawq_awq *awq, size_t rows)
{
  oftawq__awq_plan p;
  if (!awq) return OFTAWQ_AWQ_AUTO;
  oftawq__awq_plan_for(awq, rows, &p);
  return p.path;
}

/* The kernel `which` built for a plan (and dtype), from the layer's small cache. */
static oftawq_status kernel(oftawq_awq *awq, oftawq_dtype dtype, int which, const oftawq__awq_plan *p,
                            const oftawq__fused_oft *fused, cl_kernel *out)
{
  static const char *const names[K_COUNT] = {"awq_gemv", "awq_gemm", "awq_round_x", "awq_finish"};
  char opts[320], fuse[64] = "";
  if (fused && fused->R)
    snprintf(fuse, sizeof fuse, " -DAWQ_FUSE_OFT=1 -DOFT_BLOCK=%d -DAWQ_K=%d", fused->block_size, awq->K);
  snprintf(opts, sizeof opts,
           "-DAWQ_G=%d -DAWQ_CHUNK=%d -DX_DTYPE=%d -DAWQ_HAS_BIAS=%d -DAWQ_SPLIT=%d -DAWQ_COLS=%d -DAWQ_ROWS=%d "
           "-DAWQ_RGROUPS=%d -DAWQ_GEMV_ROWS=%d%s%s",
           awq->G, awq->chunk, (int)dtype, awq->has_bias, p->split, which == K_GEMV ? p->cols : p->gcols,
           p->grows, p->grgroups, p->rpi, p->test_wrong ? " -DAWQ_TEST_WRONG=1" : "", fuse);
  return oftawq__kernel_cached(awq->ctx, &awq->kernels, "awq", opts, names[which], out);
}

static oftawq_status set_common_args(oftawq_awq *awq, cl_kernel k, cl_mem x, cl_mem y)
{
  cl_uint K = (cl_uint)awq->K, N = (cl_uint)awq->N;
  cl_int err = OFTAWQ__ARG(k, 0, x) | OFTAWQ__ARG(k, 1, y) | OFTAWQ__ARG(k, 2, awq->qweight) |
               OFTAWQ__ARG(k, 3, awq->qzeros) | OFTAWQ__ARG(k, 4, awq->scales) | OFTAWQ__ARG(k, 5, awq->bias) |
               OFTAWQ__ARG(k, 6, K) | OFTAWQ__ARG(k, 7, N);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(awq->ctx, err, "setting AWQ kernel arguments");
}

#ifdef OFTAWQ_HAVE_CLBLAST
static oftawq_status dense_forward(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                   const oftawq__awq_plan *p, cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  oftawq_context *ctx = awq->ctx;
  oftawq_status status;
  cl_kernel k;
  cl_uint K = (cl_uint)awq->K, N = (cl_uint)awq->N, n, nrows = (cl_uint)rows;
  size_t g[2];
  CLBlastStatusCode cb;
  cl_int err;

  if (!awq->dense) { /* dequantise once; reused by every later dense call */
    cl_kernel dq = NULL;
    size_t bytes = (size_t)awq->K * awq->N * sizeof(float);
    char opts[64];
    snprintf(opts, sizeof opts, "-DAWQ_G=%d", awq->G);
    awq->dense = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (!awq->dense) return oftawq__cl_fail(ctx, err, "allocating %zu bytes for the dequantised weight", bytes);
    if ((status = oftawq__kernel_create(ctx, "awq", opts, "awq_dequant", &dq)) < 0) goto dq_fail;
    err = OFTAWQ__ARG(dq, 0, awq->qweight) | OFTAWQ__ARG(dq, 1, awq->qzeros) | OFTAWQ__ARG(dq, 2, awq->scales) |
          OFTAWQ__ARG(dq, 3, awq->dense) | OFTAWQ__ARG(dq, 4, K) | OFTAWQ__ARG(dq, 5, N);
    g[0] = (size_t)N / 8;
    g[1] = (size_t)K;
    status = err != CL_SUCCESS ? oftawq__cl_fail(ctx, err, "setting awq_dequant arguments")
                               : oftawq__enqueue(ctx, dq, "awq_dequant", 2, g, NULL, 0, NULL, NULL);
    clReleaseKernel(dq);
  dq_fail:
    if (status < 0) {
      clReleaseMemObject(awq->dense);
      awq->dense = NULL;
      return status;
    }
  }
  if ((status = oftawq__scratch(ctx, &awq->scratch_x, &awq->scratch_x_bytes, rows * awq->K * sizeof(float))) < 0 ||
      (status = oftawq__scratch(ctx, &awq->scratch_y, &awq->scratch_y_bytes, rows * awq->N * sizeof(float))) < 0)
    return status;
  if ((status = kernel(awq, dtype, K_ROUND, p, NULL, &k)) < 0) return status;
  n = (cl_uint)(rows * awq->K);
  err = OFTAWQ__ARG(k, 0, x) | OFTAWQ__ARG(k, 1, awq->scratch_x) | OFTAWQ__ARG(k, 2, n);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting awq_round_x arguments");
  g[0] = n;
  if ((status = oftawq__enqueue(ctx, k, "awq_round_x", 1, g, NULL, n_wait, wait, NULL)) < 0) return status;
  cb = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, rows, (size_t)N, (size_t)K, 1.0f,
                    awq->scratch_x, 0, (size_t)K, awq->dense, 0, (size_t)N, 0.0f, awq->scratch_y, 0, (size_t)N,
                    &ctx->queue, NULL);
  if (cb != CLBlastSuccess) return oftawq__fail(ctx, OFTAWQ_E_OPENCL, "CLBlastSgemm failed with status %d", (int)cb);
  if ((status = kernel(awq, dtype, K_FINISH, p, NULL, &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, awq->scratch_y) | OFTAWQ__ARG(k, 1, y) | OFTAWQ__ARG(k, 2, awq->bias) |
        OFTAWQ__ARG(k, 3, N) | OFTAWQ__ARG(k, 4, nrows);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting awq_finish arguments");
  g[0] = N;
  g[1] = rows;
  return oftawq__enqueue(ctx, k, "awq_finish", 2, g, NULL, 0, NULL, done);
}
#endif

int oftawq__awq_can_fuse(const oftawq_awq *awq, const oftawq__awq_plan *p, size_t rows)
{
  (void)rows; /* each row group of the GEMV rotates its own rows */
  return p->path == OFTAWQ_AWQ_GEMV &&
         (size_t)p->rpi * (size_t)awq->K * 4 + (size_t)p->split * p->cols * p->rpi * 32 <= awq->ctx->info.local_mem_size / 2;
}

oftawq_status oftawq__awq_enqueue_plan(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                       const oftawq__awq_plan *p, const oftawq__fused_oft *fused, cl_uint n_wait,
                                       const cl_event *wait, cl_event *done)
{
  cl_mem R = fused ? fused->R : NULL;
  cl_uint share = R ? (cl_uint)fused->share : 0;
  oftawq_context *ctx = awq->ctx;
  oftawq_status status;
  cl_kernel k;
  size_t W = (size_t)awq->N / 8, g[3], l[3];
  cl_uint nrows = (cl_uint)rows;
  if (rows > UINT32_MAX / (size_t)(awq->K > awq->N ? awq->K : awq->N))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "too many rows (%zu)", rows);
#ifdef OFTAWQ_HAVE_CLBLAST
  if (p->path == OFTAWQ_AWQ_DENSE) return dense_forward(awq, dtype, x, y, rows, p, n_wait, wait, done);
#endif
  if (p->path == OFTAWQ_AWQ_GEMV) {
    if ((status = kernel(awq, dtype, K_GEMV, p, fused, &k)) < 0 || (status = set_common_args(awq, k, x, y)) < 0)
      return status;
    if ((OFTAWQ__ARG(k, 8, nrows) | OFTAWQ__ARG(k, 9, R) | OFTAWQ__ARG(k, 10, share)) !=
        CL_SUCCESS)
      return oftawq__fail(ctx, OFTAWQ_E_OPENCL, "setting awq_gemv arguments");
    g[0] = W;
    g[1] = (size_t)p->split;
    g[2] = (rows + (size_t)p->rpi - 1) / (size_t)p->rpi;
    l[0] = (size_t)p->cols;
    l[1] = (size_t)p->split;
    l[2] = 1;
    return oftawq__enqueue(ctx, k, "awq_gemv", 3, g, l, n_wait, wait, done);
  }
  if ((status = kernel(awq, dtype, K_GEMM, p, NULL, &k)) < 0 || (status = set_common_args(awq, k, x, y)) < 0) return status;
  if (OFTAWQ__ARG(k, 8, nrows) != CL_SUCCESS) return oftawq__fail(ctx, OFTAWQ_E_OPENCL, "setting awq_gemm rows");
  g[0] = W;
  g[1] = (rows + (size_t)p->grows - 1) / (size_t)p->grows;
  l[0] = (size_t)p->gcols;
  l[1] = (size_t)p->grgroups;
  return oftawq__enqueue(ctx, k, "awq_gemm", 2, g, l, n_wait, wait, done);
}

oftawq_status oftawq__awq_enqueue(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                  cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  oftawq__awq_plan p;
  oftawq__awq_plan_for(awq, rows, &p);
  return oftawq__awq_enqueue_plan(awq, dtype, x, y, rows, &p, NULL, n_wait, wait, done);
}

static oftawq_status forward_op(void *obj, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows, cl_uint n_wait,
                                const cl_event *wait, cl_event *done)
{
  return oftawq__awq_enqueue(obj, dtype, x, y, rows, n_wait, wait, done);
}

oftawq_status oftawq__awq_run(oftawq_awq *awq, oftawq__device_op op, void *obj, oftawq_dtype dtype, int on_host,
                              const void *x, void *y, cl_mem dx, cl_mem dy, size_t rows, cl_uint n_wait,
                              const cl_event *wait, cl_event *done)
{
  oftawq_status status;
  size_t xb, yb;
  if (done) *done = NULL;
  if ((status = oftawq__rows_bytes(awq->ctx, dtype, rows, (size_t)awq->K, &xb)) < 0 ||
      (status = oftawq__rows_bytes(awq->ctx, dtype, rows, (size_t)awq->N, &yb)) < 0)
    return status;
  if (on_host) return oftawq__run_on_host(awq->ctx, op, obj, dtype, x, xb, y, yb, rows);
  return oftawq__run_on_device(awq->ctx, op, obj, dtype, dx, xb, dy, yb, rows, n_wait, wait, done);
}

oftawq_status oftawq_awq_forward_cl(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                    cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  if (done) *done = NULL;
  if (!awq) return OFTAWQ_E_INVALID_ARGUMENT;
  return oftawq__awq_run(awq, forward_op, awq, dtype, 0, NULL, NULL, x, y, rows, n_wait, wait, done);
}

oftawq_status oftawq_awq_forward(oftawq_awq *awq, oftawq_dtype dtype, const void *x, void *y, size_t rows)
{
  if (!awq) return OFTAWQ_E_INVALID_ARGUMENT;
  if (rows && (!x || !y)) return oftawq__fail(awq->ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL x or y");
  return oftawq__awq_run(awq, forward_op, awq, dtype, 1, x, y, NULL, NULL, rows, 0, NULL, NULL);
}

oftawq_status oftawq_awq_get_shape(const oftawq_awq *awq, int *K, int *N, int *G, int *has_bias)
{
  if (!awq) return OFTAWQ_E_INVALID_ARGUMENT;
  if (K) *K = awq->K;
  if (N) *N = awq->N;
  if (G) *G = awq->G;
  if (has_bias) *has_bias = awq->has_bias;
  return OFTAWQ_OK;
}

oftawq_context *oftawq__awq_context(const oftawq_awq *awq) { return awq->ctx; }

void oftawq__awq_buffers(const oftawq_awq *awq, cl_mem *qweight, cl_mem *qzeros, cl_mem *scales)
{
  *qweight = awq->qweight;
  *qzeros = awq->qzeros;
  *scales = awq->scales;
}

size_t oftawq__awq_dense_bytes(const oftawq_awq *awq) { return awq->dense ? (size_t)awq->K * awq->N * sizeof(float) : 0; }
