/* load.c: from folders to a layer in one call - a model's module as the base, adapter folders on top. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/context.h"

#define WHY 512

/* The last component of a folder path ("a/b/" gives "b"): its start and length. */
static const char *base_name(const char *dir, size_t *len)
{
  size_t end = strlen(dir), start;
  while (end > 1 && dir[end - 1] == '/') end--;
  for (start = end; start > 0 && dir[start - 1] != '/'; start--) continue;
  *len = end - start;
  return dir + start;
}

/* The name adapter i takes: the caller's, "default" for the first, else its folder's. Never truncated. */
static oftawq_status adapter_name(oftawq_context *ctx, const char *const *dirs, const char *const *names, size_t i,
                                  char *out)
{
  const char *name = names && names[i] ? names[i] : i == 0 ? "default" : NULL;
  size_t len = name ? strlen(name) : 0;
  if (!name) name = base_name(dirs[i], &len);
  if (len == 0 || len >= OFTAWQ_MAX_ADAPTER_NAME)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "adapter %zu: the name '%.*s' is %zu bytes; names have 1 to %d",
                        i, (int)(len > 64 ? 64 : len), name, len, OFTAWQ_MAX_ADAPTER_NAME - 1);
  memcpy(out, name, len);
  out[len] = '\0';
  return OFTAWQ_OK;
}

/* Adds one adapter folder's weights for `module` to the layer (or makes the layer with it). */
static oftawq_status load_adapter(oftawq_context *ctx, const oftawq_awq_tensors *base, const char *module,
                                  const char *dir, const char *name, oftawq_layer **layer)
{
  oftawq_adapter_file *a = NULL;
  oftawq_oft_config c;
  oftawq_oft_shape s;
  const float *w;
  size_t rows, cols;
  char why[WHY];
  oftawq_status status;
  if ((status = oftawq_adapter_open(dir, &a, why, sizeof why)) < 0) return oftawq__fail(ctx, status, "%s", why);
  oftawq_oft_config_init(&c);
  oftawq_adapter_config(a, &c);
  oftawq_oft_shape_init(&s);
  /* no log: the layer's own resolve warns (once) about adjusted sizes */
  if ((status = oftawq_oft_resolve(&c, base->K, NULL, NULL, &s, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", dir, why);
    goto done;
  }
  if ((status = oftawq_adapter_weights(a, module, &w, &rows, &cols, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", dir, why);
    goto done;
  }
  if (rows != (size_t)s.weight_rows || cols != (size_t)s.n_elements) {
    status = oftawq__fail(ctx, OFTAWQ_E_FORMAT,
                          "%s: oft_R.weight of '%s' is [%zu, %zu], expected [%d, %d] for in_features %d (r %d, "
                          "block size %d%s)",
                          dir, module, rows, cols, s.weight_rows, s.n_elements, base->K, s.r, s.block_size,
                          c.block_share ? ", block_share" : "");
    goto done;
  }
  if (!*layer) {
    oftawq_target t;
    oftawq_target_init(&t);
    t.tensors = *base;
    status = oftawq_dispatch(ctx, &t, name, &c, w, rows * cols, layer);
  } else {
    status = oftawq_layer_add_adapter(*layer, name, &c, w, rows * cols);
  }
done:
  oftawq_adapter_close(a);
  return status;
}

oftawq_status oftawq_layer_load(oftawq_context *ctx, const char *model_dir, const char *module,
                                const char *const *adapter_dirs, const char *const *adapter_names, size_t n,
                                oftawq_layer **out)
{
  oftawq_model_file *m = NULL;
  oftawq_awq_tensors base;
  oftawq_layer *layer = NULL;
  oftawq_status status = OFTAWQ_OK;
  char why[WHY], (*names)[OFTAWQ_MAX_ADAPTER_NAME] = NULL;
  size_t i;
  if (out) *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out || !model_dir || !module || (n && !adapter_dirs))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_layer_load: NULL argument");
  *out = NULL;
  for (i = 0; i < n; i++)
    if (!adapter_dirs[i]) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_layer_load: adapter folder %zu is NULL", i);
  if (n && !(names = calloc(n, sizeof *names))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < n && status == OFTAWQ_OK; i++) status = adapter_name(ctx, adapter_dirs, adapter_names, i, names[i]);
  if (status < 0) goto done;
  if ((status = oftawq_model_file_open(model_dir, &m, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s", why);
    goto done;
  }
  oftawq_awq_tensors_init(&base);
  if ((status = oftawq_model_file_module(m, module, &base, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", model_dir, why);
    goto done;
  }
  if (n == 0) status = oftawq_layer_create(ctx, &base, &layer);
  for (i = 0; i < n && status >= 0; i++) status = load_adapter(ctx, &base, module, adapter_dirs[i], names[i], &layer);
done:
  if (status < 0) {
    oftawq_layer_destroy(layer);
    layer = NULL;
  }
  oftawq_model_file_close(m);
  free(names);
  *out = layer;
  return status;
}
