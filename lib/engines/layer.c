/* layer.c: AwqOFTLinear - adapters in front of an AWQ base layer: management, forward, mixed batches, description. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/awq.h"
#include "runtime/buffer.h"
#include "engines/layer.h"
#include "engines/oft.h"
#include "engines/train.h"

typedef struct adapter {
  char name[OFTAWQ_MAX_ADAPTER_NAME];
  oftawq_oft *oft;
} adapter;

struct oftawq_layer {
  oftawq_context *ctx;
  oftawq_awq *base;
  adapter *adapters;         /* in the order added */
  size_t n_adapters;
  char **active;             /* names, in order; unknown ones are skipped at forward */
  size_t n_active;
  int enabled;
  cl_mem tmp[2];             /* rotated activations, ping-pong */
  size_t tmp_bytes[2];
  cl_mem select;             /* per-row adapter index of a mixed batch */
  size_t select_bytes;
  int fusion;                /* -1 as tuned, 0 never, 1 whenever possible */
  uint64_t changes;          /* counts changes of the adapters, their order or the enabled flag */
  struct oftawq__train_state *train; /* engines/train.c: what the backward needs */
};

oftawq_status oftawq_layer_create(oftawq_context *ctx, const oftawq_awq_tensors *base, oftawq_layer **out)
{
  oftawq_layer *layer;
  oftawq_status status;
  if (out) *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_layer_create: NULL output");
  *out = NULL;
  if (!(layer = calloc(1, sizeof *layer))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  layer->ctx = ctx;
  layer->enabled = 1;
  layer->fusion = -1;
  if ((status = oftawq_awq_create(ctx, base, &layer->base)) < 0) {
    free(layer);
    return status;
  }
  *out = layer;
  return OFTAWQ_OK;
}

static void clear_active(oftawq_layer *layer)
{
  size_t i;
  for (i = 0; i < layer->n_active; i++) free(layer->active[i]);
  free(layer->active);
  layer->active = NULL;
  layer->n_active = 0;
}

void oftawq_layer_destroy(oftawq_layer *layer)
{
  size_t i;
  if (!layer) return;
  for (i = 0; i < layer->n_adapters; i++) oftawq_oft_destroy(layer->adapters[i].oft);
  free(layer->adapters);
  clear_active(layer);
  for (i = 0; i < 2; i++)
    if (layer->tmp[i]) clReleaseMemObject(layer->tmp[i]);
  if (layer->select) clReleaseMemObject(layer->select);
  oftawq__train_state_free(layer->train);
  oftawq_awq_destroy(layer->base);
  free(layer);
}

oftawq_awq *oftawq_layer_base(oftawq_layer *layer) { return layer ? layer->base : NULL; }

oftawq_awq *oftawq_layer_quant_linear_module(oftawq_layer *layer) { return oftawq_layer_base(layer); }

static size_t in_features(const oftawq_layer *layer)
{
  int K = 0;
  oftawq_awq_get_shape(layer->base, &K, NULL, NULL, NULL);
  return (size_t)K;
}

static adapter *find(const oftawq_layer *layer, const char *name)
{
  size_t i;
  for (i = 0; name && i < layer->n_adapters; i++)
    if (!strcmp(layer->adapters[i].name, name)) return &layer->adapters[i];
  return NULL;
}

static oftawq_status set_active_names(oftawq_layer *layer, const char *const *names, size_t n)
{
  char **copy = NULL;
  size_t i;
  for (i = 0; i < n; i++)
    if (!names || !names[i])
      return oftawq__fail(layer->ctx, OFTAWQ_E_INVALID_ARGUMENT, "active adapter name %zu is NULL", i);
  if (n && !(copy = calloc(n, sizeof *copy))) return oftawq__fail(layer->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < n; i++) {
    if (!(copy[i] = oftawq__strdup(names[i]))) {
      while (i--) free(copy[i]);
      free(copy);
      return oftawq__fail(layer->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    }
  }
  clear_active(layer);
  layer->active = copy;
  layer->n_active = n;
  layer->changes++;
  return OFTAWQ_OK;
}

oftawq_status oftawq_layer_add_adapter(oftawq_layer *layer, const char *name, const oftawq_oft_config *config,
                                       const float *weights, size_t count)
{
  oftawq_oft *oft = NULL;
  adapter *grown;
  oftawq_status status;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!name || !*name || strlen(name) >= OFTAWQ_MAX_ADAPTER_NAME)
    return oftawq__fail(layer->ctx, OFTAWQ_E_INVALID_ARGUMENT, "adapter names must have 1 to %d bytes",
                        OFTAWQ_MAX_ADAPTER_NAME - 1);
  if (find(layer, name)) return oftawq__fail(layer->ctx, OFTAWQ_E_EXISTS, "the layer already has an adapter '%s'", name);
  status = oftawq_oft_create(layer->ctx, config, (int)in_features(layer), weights, count, &oft);
  if (status < 0) return status;
  grown = realloc(layer->adapters, (layer->n_adapters + 1) * sizeof *grown);
  if (!grown) {
    oftawq_oft_destroy(oft);
    return oftawq__fail(layer->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  layer->adapters = grown;
  snprintf(grown[layer->n_adapters].name, OFTAWQ_MAX_ADAPTER_NAME, "%s", name);
  grown[layer->n_adapters].oft = oft;
  layer->n_adapters++;
  layer->changes++;
  if (layer->n_adapters == 1 && layer->n_active == 0 && (status = set_active_names(layer, &name, 1)) < 0) {
    oftawq_oft_destroy(oft);
    layer->n_adapters--;
    return status;
  }
  return OFTAWQ_OK;
}

oftawq_status oftawq_layer_set_adapter_weights(oftawq_layer *layer, const char *name, const float *weights,
                                               size_t count)
{
  adapter *a;
  if (!layer || !name) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(a = find(layer, name))) return oftawq__fail(layer->ctx, OFTAWQ_E_NOT_FOUND, "no adapter named '%s'", name);
  return oftawq_oft_set_weights(a->oft, weights, count);
}

oftawq_status oftawq_layer_delete_adapter(oftawq_layer *layer, const char *name)
{
  adapter *a;
  size_t i, j;
  if (!layer || !name) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(a = find(layer, name))) return oftawq__fail(layer->ctx, OFTAWQ_E_NOT_FOUND, "no adapter named '%s'", name);
  for (i = j = 0; i < layer->n_active; i++) {
    if (!strcmp(layer->active[i], name))
      free(layer->active[i]);
    else
      layer->active[j++] = layer->active[i];
  }
  layer->n_active = j;
  oftawq_oft_destroy(a->oft);
  memmove(a, a + 1, (size_t)(layer->adapters + layer->n_adapters - (a + 1)) * sizeof *a);
  layer->n_adapters--;
  layer->changes++;
  return OFTAWQ_OK;
}

size_t oftawq_layer_adapter_count(const oftawq_layer *layer) { return layer ? layer->n_adapters : 0; }

const char *oftawq_layer_adapter_name(const oftawq_layer *layer, size_t index)
{
  return (layer && index < layer->n_adapters) ? layer->adapters[index].name : NULL;
}

oftawq_oft *oftawq_layer_adapter(oftawq_layer *layer, const char *name)
{
  adapter *a = layer ? find(layer, name) : NULL;
  return a ? a->oft : NULL;
}

oftawq_status oftawq_layer_set_active(oftawq_layer *layer, const char *const *names, size_t n)
{
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  return set_active_names(layer, names, n);
}

oftawq_status oftawq_layer_enable_adapters(oftawq_layer *layer, int enabled)
{
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  layer->enabled = enabled != 0;
  layer->changes++;
  return OFTAWQ_OK;
}

oftawq_status oftawq_layer_merge(oftawq_layer *layer)
{
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  return oftawq__fail(layer->ctx, OFTAWQ_E_MERGE_REFUSED,
                      "cannot merge OFT adapters into AWQ 4-bit weights: the rotated weight is not representable in "
                      "the quantised format (PEFT refuses too); keep the adapters unmerged");
}

/* Releases an event the chain no longer needs. */
static void drop(cl_event *ev)
{
  if (*ev) clReleaseEvent(*ev);
  *ev = NULL;
}

void oftawq__layer_set_fusion(oftawq_layer *layer, int mode) { layer->fusion = mode < 0 ? -1 : mode != 0; }

oftawq_context *oftawq__layer_context(const oftawq_layer *layer) { return layer->ctx; }

size_t oftawq__layer_active(const oftawq_layer *layer, oftawq_oft **out, size_t cap)
{
  size_t i, n = 0;
  for (i = 0; layer->enabled && i < layer->n_active; i++) {
    adapter *a = find(layer, layer->active[i]);
    if (!a) continue; /* skipped, as forward skips it */
    if (n < cap) out[n] = a->oft;
    n++;
  }
  return n;
}

uint64_t oftawq__layer_changes(const oftawq_layer *layer) { return layer->changes; }

struct oftawq__train_state **oftawq__layer_train_state(oftawq_layer *layer) { return &layer->train; }

/* The only active adapter that exists, or NULL when there are none or several. */
static adapter *single_active(oftawq_layer *layer)
{
  adapter *one = NULL, *a;
  size_t i;
  for (i = 0; layer->enabled && i < layer->n_active; i++) {
    if (!(a = find(layer, layer->active[i]))) continue;
    if (one) return NULL;
    one = a;
  }
  return one;
}

/* One launch for a single adapter at small M, where the plan (tuned) or the test switch asks for it. */
static int forward_fused(oftawq_layer *layer, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                         const oftawq__awq_plan *p, cl_uint n_wait, const cl_event *wait, cl_event *done,
                         oftawq_status *status)
{
  adapter *a = single_active(layer);
  oftawq__fused_oft f;
  oftawq_oft_shape s;
  oftawq_oft_config c;
  if (!a || layer->fusion == 0) return 0;
  if (!(layer->fusion == 1 || p->fuse) || !oftawq__awq_can_fuse(layer->base, p, rows)) return 0;
  oftawq_oft_shape_init(&s);
  oftawq_oft_config_init(&c);
  oftawq_oft_get_shape(a->oft, &s);
  oftawq_oft_get_config(a->oft, &c);
  if ((*status = oftawq__oft_rotation_buffer(a->oft, &f.R)) < 0) return 1;
  f.block_size = s.block_size;
  f.share = c.block_share;
  *status = oftawq__awq_enqueue_plan(layer->base, dtype, x, y, rows, p, &f, n_wait, wait, done);
  return 1;
}

static oftawq_status forward_op(void *obj, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows, cl_uint n_wait,
                                const cl_event *wait, cl_event *done)
{
  oftawq_layer *layer = obj;
  oftawq_status status = OFTAWQ_OK;
  cl_mem src = x;
  cl_event ev = NULL, next = NULL;
  size_t i, bytes, used = 0;
  oftawq__awq_plan plan;

  if ((status = oftawq__rows_bytes(layer->ctx, dtype, rows, in_features(layer), &bytes)) < 0) return status;
  oftawq__awq_plan_for(layer->base, rows, &plan); /* once per call: the fused and the separate path share it */
  if (forward_fused(layer, dtype, x, y, rows, &plan, n_wait, wait, done, &status)) return status;
  for (i = 0; layer->enabled && i < layer->n_active; i++) {
    adapter *a = find(layer, layer->active[i]);
    cl_mem *dst = &layer->tmp[used % 2];
    if (!a) continue; /* PEFT skips names that are not adapters of this layer */
    if ((status = oftawq__scratch(layer->ctx, dst, &layer->tmp_bytes[used % 2], bytes)) < 0) goto done;
    /* An in-order queue orders the steps itself; otherwise each step waits for the previous one. */
    status = oftawq__oft_enqueue_rotate(a->oft, dtype, src, *dst, rows, NULL, 0, n_wait, wait,
                                        layer->ctx->in_order ? NULL : &next);
    drop(&ev);
    if (status < 0) goto done;
    ev = next;
    next = NULL;
    n_wait = ev ? 1 : 0;
    wait = ev ? &ev : NULL;
    src = *dst;
    used++;
  }
  status = oftawq__awq_enqueue_plan(layer->base, dtype, src, y, rows, &plan, NULL, n_wait, wait, done);
done:
  drop(&ev);
  return status;
}

oftawq_status oftawq_layer_forward_cl(oftawq_layer *layer, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                      cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  if (done) *done = NULL;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  return oftawq__awq_run(layer->base, forward_op, layer, dtype, 0, NULL, NULL, x, y, rows, n_wait, wait, done);
}

oftawq_status oftawq_layer_forward(oftawq_layer *layer, oftawq_dtype dtype, const void *x, void *y, size_t rows)
{
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  if (rows && (!x || !y)) return oftawq__fail(layer->ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL x or y");
  return oftawq__awq_run(layer->base, forward_op, layer, dtype, 1, x, y, NULL, NULL, rows, 0, NULL, NULL);
}

typedef struct mixed_args {
  oftawq_layer *layer;
  const int *index;
} mixed_args;

/* Copies x to the scratch, rotates each adapter's rows in place of the copy, then the base layer. */
static oftawq_status mixed_op(void *obj, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows, cl_uint n_wait,
                              const cl_event *wait, cl_event *done)
{
  mixed_args *m = obj;
  oftawq_layer *layer = m->layer;
  oftawq_context *ctx = layer->ctx;
  oftawq_status status;
  size_t bytes, a, r;
  cl_int err;
  if ((status = oftawq__rows_bytes(ctx, dtype, rows, in_features(layer), &bytes)) < 0 ||
      (status = oftawq__scratch(ctx, &layer->tmp[0], &layer->tmp_bytes[0], bytes)) < 0 ||
      (status = oftawq__scratch(ctx, &layer->select, &layer->select_bytes, rows * sizeof(cl_int))) < 0)
    return status;
  err = clEnqueueWriteBuffer(ctx->queue, layer->select, CL_TRUE, 0, rows * sizeof(cl_int), m->index, n_wait, wait,
                             NULL);
  if (err == CL_SUCCESS) err = clEnqueueCopyBuffer(ctx->queue, x, layer->tmp[0], 0, 0, bytes, 0, NULL, NULL);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "preparing a mixed-adapter batch");
  for (a = 0; a < layer->n_adapters; a++) {
    for (r = 0; r < rows && m->index[r] != (int)a; r++) continue;
    if (r == rows) continue; /* no row uses this adapter */
    status = oftawq__oft_enqueue_rotate(layer->adapters[a].oft, dtype, x, layer->tmp[0], rows, layer->select,
                                        (cl_int)a, 0, NULL, NULL);
    if (status < 0) return status;
  }
  return oftawq__awq_enqueue(layer->base, dtype, layer->tmp[0], y, rows, 0, NULL, done);
}

oftawq_status oftawq_layer_forward_mixed(oftawq_layer *layer, oftawq_dtype dtype, const void *x, void *y, size_t rows,
                                         const int *adapter_index)
{
  mixed_args m;
  size_t r;
  if (!layer) return OFTAWQ_E_INVALID_ARGUMENT;
  if (rows && (!x || !y)) return oftawq__fail(layer->ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL x or y");
  if (rows && !adapter_index) return oftawq__fail(layer->ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL adapter_index");
  for (r = 0; r < rows; r++)
    if (adapter_index[r] < -1 || adapter_index[r] >= (int)layer->n_adapters)
      return oftawq__fail(layer->ctx, OFTAWQ_E_INVALID_ARGUMENT,
                          "row %zu: adapter index %d is out of range (-1 .. %zu)", r, adapter_index[r],
                          layer->n_adapters - 1);
  m.layer = layer;
  m.index = adapter_index;
  return oftawq__awq_run(layer->base, mixed_op, &m, dtype, 1, x, y, NULL, NULL, rows, 0, NULL, NULL);
}

/* Appends to a bounded buffer, counting the full length. */
static void emit(char *buf, size_t cap, size_t *len, const char *fmt, ...) OFTAWQ__PRINTF(4, 5);

static void emit(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(*len < cap ? buf + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
  va_end(ap);
  if (n > 0) *len += (size_t)n;
}

static int is_active(const oftawq_layer *layer, const char *name)
{
  size_t i;
  for (i = 0; i < layer->n_active; i++)
    if (!strcmp(layer->active[i], name)) return 1;
  return 0;
}

oftawq_status oftawq_layer_describe(const oftawq_layer *layer, char *buf, size_t capacity, size_t *needed)
{
  size_t len = 0, i, k;
  int K, N, G, bias;
  if (!layer || (capacity && !buf)) return OFTAWQ_E_INVALID_ARGUMENT;
  if (capacity) buf[0] = '\0';
  oftawq_awq_get_shape(layer->base, &K, &N, &G, &bias);
  emit(buf, capacity, &len,
       "oft.AwqOFTLinear(in_features=%d, out_features=%d, group_size=%d, bias=%s, adapters_enabled=%s, adapters=[", K,
       N, G, bias ? "True" : "False", layer->enabled ? "True" : "False");
  for (i = 0; i < layer->n_adapters; i++) {
    oftawq_oft_shape s;
    oftawq_oft_config c;
    oftawq_oft_shape_init(&s);
    oftawq_oft_config_init(&c);
    oftawq_oft_get_shape(layer->adapters[i].oft, &s);
    oftawq_oft_get_config(layer->adapters[i].oft, &c);
    emit(buf, capacity, &len, "%s%s(r=%d, block_size=%d, ", i ? ", " : "", layer->adapters[i].name, s.r,
         s.block_size);
    if (c.use_cayley_neumann)
      emit(buf, capacity, &len, "neumann_terms=%d%s", c.num_cayley_neumann_terms,
           s.legacy_neumann ? " (pre-0.18 formula)" : "");
    else
      emit(buf, capacity, &len, "cayley=exact");
    emit(buf, capacity, &len, ", coft=%s, block_share=%s, module_dropout=%g, %s)", c.coft ? "True" : "False",
         c.block_share ? "True" : "False", c.module_dropout,
         is_active(layer, layer->adapters[i].name) ? "active" : "inactive");
  }
  emit(buf, capacity, &len, "]");
  /* active adapters this layer does not carry: skipped here, as PEFT skips them */
  for (i = 0, k = 0; i < layer->n_active; i++)
    if (!find(layer, layer->active[i])) emit(buf, capacity, &len, "%s%s", k++ ? ", " : ", skipped=[", layer->active[i]);
  emit(buf, capacity, &len, "%s)", k ? "]" : "");
  if (capacity && len >= capacity) buf[capacity - 1] = '\0';
  if (needed) *needed = len;
  return OFTAWQ_OK;
}
