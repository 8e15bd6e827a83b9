/* load.c: from folders to a layer in one call - a model's module as the base, adapter folders on top. */
#include "config.h"

#include "model/model.h"
#include "runtime/context.h"

oftawq_status oftawq_layer_load(oftawq_context *ctx, const char *model_dir, const char *module,
                                const char *const *adapter_dirs, const char *const *adapter_names, size_t n,
                                oftawq_layer **out)
{
  oftawq_model *m = NULL;
  oftawq_status status;
  size_t i;
  if (out) *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out || !model_dir || !module || (n && !adapter_dirs))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_layer_load: NULL argument");
  *out = NULL;
  for (i = 0; i < n; i++)
    if (!adapter_dirs[i]) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_layer_load: adapter folder %zu is NULL", i);
  if ((status = oftawq_model_open(ctx, model_dir, NULL, &m)) < 0) return status;
  /* the module first: its errors come before the adapters' */
  status = oftawq__model_check_module(m, module);
  for (i = 0; i < n && status >= 0; i++)
    status = oftawq_model_load_adapter(m, adapter_dirs[i], adapter_names ? adapter_names[i] : NULL);
  if (status >= 0) status = oftawq__model_take_layer(m, module, out);
  oftawq_model_destroy(m);
  return status;
}
