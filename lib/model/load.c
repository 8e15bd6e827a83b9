/* load.c: from folders to a layer in one call - a model's module as the base, adapter folders on top. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "runtime/context.h"

#define WHY 512

/* The last component of a folder path ("a/b/" gives "b"). */
static void base_name(const char *dir, char *out, size_t cap)
{
  size_t end = strlen(dir), start;
  while (end > 1 && dir[end - 1] == '/') end--;
  for (start = end; start > 0 && dir[start - 1] != '/'; start--) continue;
  snprintf(out, cap, "%.*s", (int)(end - start), dir + start);
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
  if ((status = oftawq_oft_resolve(&c, base->K, ctx->log, ctx->log_user, &s, why, sizeof why)) < 0) {
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
  oftawq_status status;
  char why[WHY];
  size_t i;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out || !model_dir || !module || (n && !adapter_dirs))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_layer_load: NULL argument");
  *out = NULL;
  if ((status = oftawq_model_file_open(model_dir, &m, why, sizeof why)) < 0) return oftawq__fail(ctx, status, "%s", why);
  oftawq_awq_tensors_init(&base);
  if ((status = oftawq_model_file_module(m, module, &base, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", model_dir, why);
    goto done;
  }
  if (n == 0) {
    status = oftawq_layer_create(ctx, &base, &layer);
  }
  for (i = 0; i < n && status >= 0; i++) {
    char name[OFTAWQ_MAX_ADAPTER_NAME];
    if (adapter_names && adapter_names[i])
      snprintf(name, sizeof name, "%s", adapter_names[i]);
    else if (i == 0)
      snprintf(name, sizeof name, "default");
    else
      base_name(adapter_dirs[i], name, sizeof name);
    status = load_adapter(ctx, &base, module, adapter_dirs[i], name, &layer);
  }
done:
  if (status < 0) {
    oftawq_layer_destroy(layer);
    layer = NULL;
  }
  oftawq_model_file_close(m);
  *out = layer;
  return status;
}
