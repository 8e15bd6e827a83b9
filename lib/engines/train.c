/* train.c: training an AwqOFTLinear - trainable adapters, the training forward that keeps what the backward
 * needs, and the backward through the frozen AWQ base and the active adapters in reverse order (SPEC 12). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "engines/awq.h"
#include "engines/awq_grad.h"
#include "engines/layer.h"
#include "engines/oft_grad.h"
#include "engines/train.h"
#include "runtime/buffer.h"

/* Keep every adapter's input (0) or recompute the inner ones (1). bench --train times both with three
 * adapters: recomputing costs one to three rotations more per backward (about a quarter of the backward at
 * K = N = 2048, M = 256 on PoCL) and saves one activation buffer per adapter beyond two. */
#define DEFAULT_RECOMPUTE 0

struct oftawq__train_state {
  int valid;                 /* a training forward is waiting for its backward */
  size_t rows;
  oftawq_dtype dtype;
  uint64_t changes;          /* the layer's counter at the training forward */
  oftawq_oft **chain;        /* the adapters applied, in order */
  uint64_t *generation;      /* their weights' generation at the training forward */
  size_t n, cap;
  int recompute;
  cl_mem *X;                 /* X[i]: the input of chain[i] (only X[0] when recomputing) */
  size_t *X_bytes;
  cl_mem tmp[2], G[2], Rt;   /* rotated activations, gradients, R^T */
  size_t tmp_bytes[2], G_bytes[2], Rt_bytes;
  oftawq__awq_grad awq;       /* the base layer's part of the backward */
};

static void release(cl_mem *m, size_t *bytes)
{
  if (*m) clReleaseMemObject(*m);
  *m = NULL;
  *bytes = 0;
}

void oftawq__train_state_free(struct oftawq__train_state *st)
{
  size_t i;
  if (!st) return;
  for (i = 0; i < st->cap; i++) release(&st->X[i], &st->X_bytes[i]);
  for (i = 0; i < 2; i++) {
    release(&st->tmp[i], &st->tmp_bytes[i]);
    release(&st->G[i], &st->G_bytes[i]);
  }
  release(&st->Rt, &st->Rt_bytes);
  oftawq__awq_grad_free(&st->awq);
  free(st->chain);
  free(st->generation);
  free(st->X);
  free(st->X_bytes);
  free(st);
}

/* The layer's state, made on first use. */
static oftawq_status state_of(oftawq_layer *layer, struct oftawq__train_state **out)
{
  struct oftawq__train_state **slot = oftawq__layer_train_state(layer);
  if (!*slot) {
    if (!(*slot = calloc(1, sizeof **slot)))
      return oftawq__fail(oftawq__layer_context(layer), OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    (*slot)->recompute = DEFAULT_RECOMPUTE;
  }
  *out = *slot;
  return OFTAWQ_OK;
}

/* Room for n adapters in the chain arrays. */
static oftawq_status reserve(oftawq_context *ctx, struct oftawq__train_state *st, size_t n)
{
  oftawq_oft **chain;
  uint64_t *gen = NULL;
  cl_mem *X = NULL;
  size_t *Xb, cap = st->cap;
  if (n <= cap) return OFTAWQ_OK;
  if ((chain = realloc(st->chain, n * sizeof *chain))) st->chain = chain;
  if (chain && (gen = realloc(st->generation, n * sizeof *gen))) st->generation = gen;
  if (chain && gen && (X = realloc(st->X, n * sizeof *X))) st->X = X;
  if (!chain || !gen || !X || !(Xb = realloc(st->X_bytes, n * sizeof *Xb)))
    return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  st->X_bytes = Xb;
  memset(st->X + cap, 0, (n - cap) * sizeof *st->X);
  memset(st->X_bytes + cap, 0, (n - cap) * sizeof *st->X_bytes);
  st->cap = n;
  return OFTAWQ_OK;
}

static oftawq_status wait_for(oftawq_context *ctx, cl_uint n_wait, const cl_event *wait)
{
  cl_int err;
  if (!n_wait) return OFTAWQ_OK;
  err = clEnqueueBarrierWithWaitList(ctx->queue, n_wait, wait, NULL);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(ctx, err, "waiting for the caller's events");
}

/* The caller's completion event (a marker after everything enqueued); without one, on an out-of-order
 * queue, a barrier so that what the caller enqueues next (reading y back, say) comes after. */
static oftawq_status finish(oftawq_context *ctx, cl_event *done)
{
  cl_int err;
  if (!done) return oftawq__ordered(ctx);
  err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, done);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(ctx, err, "enqueueing a marker");
}

/* Training kernels take the activation dtypes they are tested with. */
static oftawq_status train_dtype(oftawq_layer *layer, oftawq_dtype dtype)
{
  if (dtype == OFTAWQ_F32 || dtype == OFTAWQ_F16) return OFTAWQ_OK;
  return oftawq__fail(oftawq__layer_context(layer), OFTAWQ_E_UNSUPPORTED,
                      "training takes F32 or F16 activations, not dtype %d", (int)dtype);
}

static size_t in_features(oftawq_layer *layer)
{
  int K = 0;
  oftawq_awq_get_shape(oftawq_layer_base(layer), &K, NULL, NULL, NULL);
  return (size_t)K;
}

/* ------------------------------------------------------------------ trainable adapters */

static oftawq_status find_adapter(oftawq_layer *layer, const char *name, oftawq_oft **oft)
{
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(*oft = oftawq_layer_adapter(layer, name)))
    return oftawq__fail(oftawq__layer_context(layer), OFTAWQ_E_NOT_FOUND, "no adapter named '%s'",
                        name ? name : "(null)");
  return OFTAWQ_OK;
}

oftawq_status oftawq_layer_set_trainable(oftawq_layer *layer, const char *name, int trainable)
{
  oftawq_oft *oft;
  oftawq_status status;
  if ((status = find_adapter(layer, name, &oft)) < 0) return status;
  if (!trainable) {
    oftawq__oft_grad_disable(oft);
    return OFTAWQ_OK;
  }
  return oftawq__oft_grad_enable(oft);
}

oftawq_status oftawq_layer_is_trainable(const oftawq_layer *layer, const char *name, int *trainable)
{
  oftawq_oft *oft;
  oftawq_status status;
  if (!trainable) return OFTAWQ_E_INVALID_ARGUMENT;
  *trainable = 0;
  if ((status = find_adapter((oftawq_layer *)(uintptr_t)layer, name, &oft)) < 0) return status;
  *trainable = oftawq__oft_grad_buffer(oft) != NULL;
  return OFTAWQ_OK;
}

oftawq_status oftawq_layer_get_grad(oftawq_layer *layer, const char *name, float *grad, size_t count)
{
  oftawq_oft *oft;
  oftawq_status status;
  cl_mem buf;
  cl_int err;
  if ((status = find_adapter(layer, name, &oft)) < 0) return status;
  if (!(buf = oftawq__oft_grad_buffer(oft)))
    return oftawq__fail(oft->ctx, OFTAWQ_E_INVALID_ARGUMENT, "adapter '%s' is not trainable", name);
  if (count != oft->weight_count || (count && !grad))
    return oftawq__fail(oft->ctx, OFTAWQ_E_INVALID_ARGUMENT, "expected room for %zu gradient floats, got %zu",
                        oft->weight_count, count);
  if (!count) return OFTAWQ_OK;
  err = clEnqueueReadBuffer(oft->ctx->queue, buf, CL_TRUE, 0, count * sizeof *grad, grad, 0, NULL, NULL);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(oft->ctx, err, "reading a gradient back");
}

oftawq_status oftawq_layer_zero_grad(oftawq_layer *layer)
{
  oftawq_status status;
  size_t i;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  for (i = 0; i < oftawq_layer_adapter_count(layer); i++)
    if ((status = oftawq__oft_grad_zero(oftawq_layer_adapter(layer, oftawq_layer_adapter_name(layer, i)))) < 0)
      return status;
  return OFTAWQ_OK;
}

oftawq_status oftawq__layer_set_train_recompute(oftawq_layer *layer, int recompute)
{
  struct oftawq__train_state *st = NULL;
  oftawq_status status;
  if ((status = state_of(layer, &st)) < 0) return status;
  st->recompute = recompute != 0;
  st->valid = 0;
  return OFTAWQ_OK;
}

size_t oftawq__layer_train_bytes(oftawq_layer *layer)
{
  struct oftawq__train_state *st = *oftawq__layer_train_state(layer);
  size_t i, total = 0;
  if (!st) return 0;
  for (i = 0; i < st->cap; i++) total += st->X_bytes[i];
  return total + st->tmp_bytes[0] + st->tmp_bytes[1] + st->G_bytes[0] + st->G_bytes[1] + st->Rt_bytes;
}

/* ------------------------------------------------------------------ training forward */

static oftawq_status forward_train_op(void *obj, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows, cl_uint n_wait,
                                      const cl_event *wait, cl_event *done)
{
  oftawq_layer *layer = obj;
  oftawq_context *ctx = oftawq__layer_context(layer);
  struct oftawq__train_state *st = NULL;
  oftawq__awq_plan plan;
  oftawq_status status;
  size_t i, n, bytes, saved;
  cl_mem src = x;
  cl_int err;

  if ((status = state_of(layer, &st)) < 0) return status;
  st->valid = 0;
  n = oftawq__layer_active(layer, NULL, 0);
  if ((status = reserve(ctx, st, n)) < 0) return status;
  oftawq__layer_active(layer, st->chain, n);
  if ((status = oftawq__rows_bytes(ctx, dtype, rows, in_features(layer), &bytes)) < 0) return status;
  saved = n == 0 ? 0 : st->recompute ? 1 : n;
  for (i = 0; i < saved; i++)
    if ((status = oftawq__scratch(ctx, &st->X[i], &st->X_bytes[i], bytes)) < 0) return status;
  for (i = saved; i < st->cap; i++) release(&st->X[i], &st->X_bytes[i]); /* what another mode kept */
  if ((status = wait_for(ctx, n_wait, wait)) < 0) return status;
  if (n) {
    err = clEnqueueCopyBuffer(ctx->queue, x, st->X[0], 0, 0, bytes, 0, NULL, NULL);
    if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "keeping the input for the backward");
    src = st->X[0];
  }
  for (i = 0; i < n; i++) {
    cl_mem *dst = i + 1 < saved ? &st->X[i + 1] : &st->tmp[i % 2];
    if (dst == &st->tmp[i % 2] && (status = oftawq__scratch(ctx, dst, &st->tmp_bytes[i % 2], bytes)) < 0) return status;
    if ((status = oftawq__ordered(ctx)) < 0 ||
        (status = oftawq__oft_enqueue_rotate(st->chain[i], dtype, src, *dst, rows, NULL, 0, 0, NULL, NULL)) < 0)
      return status;
    src = *dst;
  }
  /* the fused paths only: a dense copy of W (K x N floats) is what training on a phone cannot afford */
  oftawq__awq_plan_for(oftawq_layer_base(layer), rows, &plan);
  if (plan.path == OFTAWQ_AWQ_DENSE) plan.path = OFTAWQ_AWQ_GEMM;
  if ((status = oftawq__ordered(ctx)) < 0 ||
      (status = oftawq__awq_enqueue_plan(oftawq_layer_base(layer), dtype, src, y, rows, &plan, NULL, 0, NULL, NULL)) < 0)
    return status;
  for (i = 0; i < n; i++) st->generation[i] = st->chain[i]->generation;
  st->n = n;
  st->rows = rows;
  st->dtype = dtype;
  st->changes = oftawq__layer_changes(layer);
  st->valid = 1;
  return finish(ctx, done);
}

oftawq_status oftawq_layer_forward_train(oftawq_layer *layer, oftawq_dtype dtype, const void *x, void *y, size_t rows)
{
  oftawq_status status;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  if (rows && (!x || !y)) return oftawq__fail(oftawq__layer_context(layer), OFTAWQ_E_INVALID_ARGUMENT, "NULL x or y");
  if ((status = train_dtype(layer, dtype)) < 0) return status;
  return oftawq__awq_run(oftawq_layer_base(layer), forward_train_op, layer, dtype, 1, x, y, NULL, NULL, rows, 0, NULL,
                         NULL);
}

oftawq_status oftawq_layer_forward_train_cl(oftawq_layer *layer, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                            cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  oftawq_status status;
  if (done) *done = NULL;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  if ((status = train_dtype(layer, dtype)) < 0) return status;
  return oftawq__awq_run(oftawq_layer_base(layer), forward_train_op, layer, dtype, 0, NULL, NULL, x, y, rows, n_wait,
                         wait, done);
}

/* ------------------------------------------------------------------ backward */

/* Whether the last training forward can be differentiated now. */
static oftawq_status check_state(oftawq_layer *layer, struct oftawq__train_state *st, oftawq_dtype dtype, size_t rows)
{
  oftawq_context *ctx = oftawq__layer_context(layer);
  size_t i;
  if (!st || !st->valid)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "backward without a training forward (each oftawq_layer_forward_train allows one backward)");
  if (rows != st->rows || dtype != st->dtype)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "backward of %zu rows of dtype %d after a training forward of %zu rows of dtype %d", rows,
                        (int)dtype, st->rows, (int)st->dtype);
  if (st->changes != oftawq__layer_changes(layer))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "the adapters, their active list or the enabled flag changed since the training forward");
  for (i = 0; i < st->n; i++)
    if (st->generation[i] != st->chain[i]->generation)
      return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                          "adapter weights changed since the training forward (an optimizer step between forward and "
                          "backward?)");
  return OFTAWQ_OK;
}

/* The input of chain[i]: kept, or recomputed from the layer's input into the rotation scratch. */
static oftawq_status adapter_input(struct oftawq__train_state *st, oftawq_context *ctx, size_t i, size_t bytes,
                                   cl_mem *out)
{
  oftawq_status status;
  size_t j;
  cl_mem src = st->X[0];
  if (!st->recompute || i == 0) {
    *out = st->X[i];
    return OFTAWQ_OK;
  }
  for (j = 0; j < i; j++) {
    if ((status = oftawq__scratch(ctx, &st->tmp[j % 2], &st->tmp_bytes[j % 2], bytes)) < 0 ||
        (status = oftawq__ordered(ctx)) < 0 ||
        (status = oftawq__oft_enqueue_rotate(st->chain[j], st->dtype, src, st->tmp[j % 2], st->rows, NULL, 0, 0, NULL,
                                             NULL)) < 0)
      return status;
    src = st->tmp[j % 2];
  }
  *out = src;
  return oftawq__ordered(ctx);
}

static int trainable_before(const struct oftawq__train_state *st, size_t i)
{
  size_t j;
  for (j = 0; j < i; j++)
    if (oftawq__oft_grad_buffer(st->chain[j])) return 1;
  return 0;
}

/* dy -> dx (dx may be NULL) and the adapters' gradients. */
static oftawq_status backward_op(void *obj, oftawq_dtype dtype, cl_mem dy, cl_mem dx, size_t rows, cl_uint n_wait,
                                 const cl_event *wait, cl_event *done)
{
  oftawq_layer *layer = obj;
  oftawq_context *ctx = oftawq__layer_context(layer);
  struct oftawq__train_state *st = *oftawq__layer_train_state(layer);
  oftawq_status status;
  size_t i, bytes, rt = 0;
  int cur = 0;

  if ((status = check_state(layer, st, dtype, rows)) < 0) return status;
  st->valid = 0; /* consumed, as PyTorch frees the graph */
  if ((status = oftawq__rows_bytes(ctx, dtype, rows, in_features(layer), &bytes)) < 0) return status;
  for (i = 0; i < st->n; i++) {
    size_t b = (size_t)st->chain[i]->shape.block_size;
    size_t need = (size_t)st->chain[i]->shape.weight_rows * b * b * sizeof(float);
    if (need > rt) rt = need;
  }
  if ((status = oftawq__scratch(ctx, &st->G[0], &st->G_bytes[0], bytes)) < 0 ||
      (status = oftawq__scratch(ctx, &st->G[1], &st->G_bytes[1], bytes)) < 0 ||
      (rt && (status = oftawq__scratch(ctx, &st->Rt, &st->Rt_bytes, rt)) < 0) || (status = wait_for(ctx, n_wait, wait)) < 0)
    return status;
  if (st->n == 0) {
    if (dx && (status = oftawq__awq_enqueue_grad(oftawq_layer_base(layer), &st->awq, dtype, dy, dx, rows)) < 0)
      return status;
    return finish(ctx, done);
  }
  if ((status = oftawq__awq_enqueue_grad(oftawq_layer_base(layer), &st->awq, dtype, dy, st->G[0], rows)) < 0)
    return status;
  for (i = st->n; i-- > 0;) {
    oftawq_oft *a = st->chain[i];
    cl_mem in, dst;
    if (oftawq__oft_grad_buffer(a)) {
      if ((status = oftawq__ordered(ctx)) < 0 || (status = adapter_input(st, ctx, i, bytes, &in)) < 0 ||
          (status = oftawq__oft_grad_accumulate(a, dtype, in, st->G[cur], rows)) < 0)
        return status;
    }
    if (!dx && !trainable_before(st, i)) break; /* nothing upstream needs the gradient */
    dst = i == 0 ? dx : st->G[cur ^ 1];
    if ((status = oftawq__ordered(ctx)) < 0 || (status = oftawq__oft_grad_transpose(a, st->Rt)) < 0 ||
        (status = oftawq__ordered(ctx)) < 0 ||
        (status = oftawq__oft_enqueue_rotate_by(a, st->Rt, dtype, st->G[cur], dst, rows, NULL, 0, 0, NULL, NULL)) < 0)
      return status;
    cur ^= 1;
  }
  if ((status = oftawq__ordered(ctx)) < 0) return status;
  return finish(ctx, done);
}

/* The checks of a backward call: dy rows x N in, dx rows x K out (or none). */
static oftawq_status backward_sizes(oftawq_layer *layer, oftawq_dtype dtype, size_t rows, size_t *dy_bytes,
                                    size_t *dx_bytes)
{
  oftawq_context *ctx = oftawq__layer_context(layer);
  oftawq_status status;
  int K, N;
  oftawq_awq_get_shape(oftawq_layer_base(layer), &K, &N, NULL, NULL);
  if ((status = oftawq__rows_bytes(ctx, dtype, rows, (size_t)N, dy_bytes)) < 0 ||
      (status = oftawq__rows_bytes(ctx, dtype, rows, (size_t)K, dx_bytes)) < 0)
    return status;
  return OFTAWQ_OK;
}

oftawq_status oftawq_layer_backward(oftawq_layer *layer, oftawq_dtype dtype, const void *dy, void *dx, size_t rows)
{
  oftawq_context *ctx;
  oftawq_status status;
  size_t dyb, dxb;
  cl_mem bdy = NULL;
  cl_int err = CL_SUCCESS;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  ctx = oftawq__layer_context(layer);
  if (rows && !dy) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL dy");
  if ((status = train_dtype(layer, dtype)) < 0 || (status = backward_sizes(layer, dtype, rows, &dyb, &dxb)) < 0 || rows == 0) return status;
  if (dx) return oftawq__run_on_host(ctx, backward_op, layer, dtype, dy, dyb, dx, dxb, rows);
  /* no input gradient wanted: the adapters' gradients only */
  if (!(bdy = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, dyb, (void *)(uintptr_t)dy,
                                     &err)))
    return oftawq__cl_fail(ctx, err, "allocating %zu bytes for dy", dyb);
  status = backward_op(layer, dtype, bdy, NULL, rows, 0, NULL, NULL);
  if (status >= 0 && (err = clFinish(ctx->queue)) != CL_SUCCESS) status = oftawq__cl_fail(ctx, err, "the backward");
  clReleaseMemObject(bdy);
  return status;
}

oftawq_status oftawq_layer_backward_cl(oftawq_layer *layer, oftawq_dtype dtype, cl_mem dy, cl_mem dx, size_t rows,
                                       cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  oftawq_context *ctx;
  oftawq_status status;
  size_t dyb, dxb;
  if (done) *done = NULL;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  ctx = oftawq__layer_context(layer);
  if ((status = train_dtype(layer, dtype)) < 0 || (status = backward_sizes(layer, dtype, rows, &dyb, &dxb)) < 0)
    return status;
  if (dx) return oftawq__run_on_device(ctx, backward_op, layer, dtype, dy, dyb, dx, dxb, rows, n_wait, wait, done);
  if ((status = oftawq__check_buffer(ctx, dy, dyb, "dy")) < 0) return status;
  return backward_op(layer, dtype, dy, NULL, rows, n_wait, wait, done);
}
