/* buffer.c: device buffers - size checks, scratch growth, and running a device operation on host arrays. */
#include "config.h"

#include "runtime/buffer.h"

size_t oftawq__dtype_size(oftawq_dtype dtype)
{
  return dtype == OFTAWQ_F32 ? 4 : (dtype == OFTAWQ_F16 || dtype == OFTAWQ_BF16) ? 2 : 0;
}

oftawq_status oftawq__rows_bytes(oftawq_context *ctx, oftawq_dtype dtype, size_t rows, size_t cols, size_t *bytes)
{
  size_t es = oftawq__dtype_size(dtype), n;
  if (!es) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "unknown dtype %d", (int)dtype);
  if (!oftawq__mul_size(rows, cols, &n) || !oftawq__mul_size(n, es, bytes) || rows > UINT32_MAX)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "%zu rows of %zu elements overflow", rows, cols);
  return OFTAWQ_OK;
}

oftawq_status oftawq__check_buffer(oftawq_context *ctx, cl_mem m, size_t need, const char *what)
{
  size_t have = 0;
  if (!m || clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof have, &have, NULL) != CL_SUCCESS)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "%s is not a valid buffer", what);
  if (have < need)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "%s buffer holds %zu bytes, %zu needed", what, have, need);
  return OFTAWQ_OK;
}

oftawq_status oftawq__scratch(oftawq_context *ctx, cl_mem *buf, size_t *have, size_t bytes)
{
  cl_int err = CL_SUCCESS;
  if (*buf && *have >= bytes) return OFTAWQ_OK;
  if (*buf) clReleaseMemObject(*buf);
  *have = 0;
  *buf = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
  if (!*buf) return oftawq__cl_fail(ctx, err, "allocating %zu bytes of scratch", bytes);
  *have = bytes;
  return OFTAWQ_OK;
}

oftawq_status oftawq__ordered(oftawq_context *ctx)
{
  cl_int err;
  if (ctx->in_order) return OFTAWQ_OK;
  err = clEnqueueBarrierWithWaitList(ctx->queue, 0, NULL, NULL);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(ctx, err, "enqueueing a barrier");
}

void oftawq__scratch_release_all(oftawq_context *ctx)
{
  int i;
  for (i = 0; i < OFTAWQ__SCRATCH_SLOTS; i++) {
    if (ctx->scratch[i].buf) clReleaseMemObject(ctx->scratch[i].buf);
    ctx->scratch[i].buf = NULL;
    ctx->scratch[i].bytes = 0;
    ctx->scratch[i].tag = 0;
  }
}

uint64_t oftawq__scratch_limit(const oftawq_context *ctx)
{
  uint64_t limit = ctx->info.max_alloc_size, quarter = ctx->info.global_mem_size / 4;
  return quarter && quarter < limit ? quarter : limit;
}

static int out_of_memory(cl_int err)
{
  return err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY ||
         err == CL_INVALID_BUFFER_SIZE;
}

oftawq_status oftawq__scratch_shared(oftawq_context *ctx, int slot, size_t bytes, cl_mem *out, uint64_t **tag)
{
  oftawq__scratch_slot *s = &ctx->scratch[slot];
  cl_int err = CL_SUCCESS;
  int attempt;
  *out = NULL;
  if (!s->buf || s->bytes < bytes) {
    if (s->buf) clReleaseMemObject(s->buf);
    s->buf = NULL;
    s->bytes = 0;
    s->tag = 0;
    for (attempt = 0; attempt < 2 && !s->buf; attempt++) {
      if (attempt) oftawq__scratch_release_all(ctx); /* memory pressure: give back what the layers share */
      s->buf = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
      if (!s->buf && !out_of_memory(err)) break;
    }
    if (!s->buf) return oftawq__cl_fail(ctx, err, "allocating %zu bytes of shared scratch", bytes);
    s->bytes = bytes; /* not cleared: each user writes what it reads (oclgrind 21.10 also mis-tracks a fill) */
  }
  *out = s->buf;
  if (tag) *tag = &s->tag;
  return OFTAWQ_OK;
}

oftawq_status oftawq__run_on_host(oftawq_context *ctx, oftawq__device_op op, void *obj, oftawq_dtype dtype,
                                  const void *x, size_t xbytes, void *y, size_t ybytes, size_t rows)
{
  oftawq_status status;
  cl_mem bx = NULL, by = NULL;
  cl_int err = CL_SUCCESS;
  if (rows == 0) return OFTAWQ_OK;
  if (!x || !y) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL x or y");
  bx = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, xbytes, (void *)(uintptr_t)x, &err);
  if (bx) by = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, ybytes, NULL, &err);
  if (!bx || !by) {
    status = oftawq__cl_fail(ctx, err, "allocating %zu + %zu bytes for activations", xbytes, ybytes);
    goto done;
  }
  if ((status = op(obj, dtype, bx, by, rows, 0, NULL, NULL)) < 0 || (status = oftawq__ordered(ctx)) < 0) goto done;
  err = clEnqueueReadBuffer(ctx->queue, by, CL_TRUE, 0, ybytes, y, 0, NULL, NULL);
  if (err != CL_SUCCESS) status = oftawq__cl_fail(ctx, err, "reading the result back");
done:
  if (bx) clReleaseMemObject(bx);
  if (by) clReleaseMemObject(by);
  return status;
}

oftawq_status oftawq__run_on_device(oftawq_context *ctx, oftawq__device_op op, void *obj, oftawq_dtype dtype,
                                    cl_mem x, size_t xbytes, cl_mem y, size_t ybytes, size_t rows, cl_uint n_wait,
                                    const cl_event *wait, cl_event *done)
{
  oftawq_status status;
  if (x == y) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "x and y must be different buffers");
  if (n_wait && !wait) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "a wait list of %u events but no events", n_wait);
  if ((status = oftawq__check_buffer(ctx, x, xbytes, "x")) < 0 ||
      (status = oftawq__check_buffer(ctx, y, ybytes, "y")) < 0)
    return status;
  if (rows == 0) {
    cl_int err = clEnqueueMarkerWithWaitList(ctx->queue, n_wait, wait, done);
    return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(ctx, err, "enqueueing a marker");
  }
  return op(obj, dtype, x, y, rows, n_wait, wait, done);
}
