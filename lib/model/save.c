/* save.c: saving an adapter of one or many layers (a whole model) as one PEFT folder. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/version.h"
#include "engines/layer.h"
#include "engines/oft.h"

#define WHY 512

/* The fields PEFT keeps once per adapter; they must agree across the saved modules. */
static int same_config(const oftawq_oft_config *a, const oftawq_oft_config *b)
{
  int legacy_a = 0, legacy_b = 0;
  if (a->use_cayley_neumann && a->peft_version) oftawq__peft_legacy_neumann(a->peft_version, &legacy_a);
  if (b->use_cayley_neumann && b->peft_version) oftawq__peft_legacy_neumann(b->peft_version, &legacy_b);
  return a->r == b->r && a->oft_block_size == b->oft_block_size && a->module_dropout == b->module_dropout &&
         a->coft == b->coft && a->eps == b->eps && a->block_share == b->block_share &&
         a->fan_in_fan_out == b->fan_in_fan_out && a->init_weights == b->init_weights &&
         a->use_cayley_neumann == b->use_cayley_neumann &&
         a->num_cayley_neumann_terms == b->num_cayley_neumann_terms && legacy_a == legacy_b;
}

oftawq_status oftawq_adapter_save(const char *dir, const char *adapter_name, const char *const *modules,
                                  oftawq_layer *const *layers, size_t n, const oftawq_adapter_save_options *options)
{
  oftawq_adapter_module *m = NULL;
  float **weights = NULL;
  oftawq_context *ctx;
  oftawq_oft *first;
  oftawq_oft_config config;
  oftawq_status status = OFTAWQ_OK;
  char why[WHY];
  size_t i;

  if (!layers || n == 0 || !layers[0]) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(first = oftawq_layer_adapter(layers[0], adapter_name))) {
    ctx = oftawq__layer_context(layers[0]);
    return oftawq__fail(ctx, OFTAWQ_E_NOT_FOUND, "the first layer has no adapter '%s'",
                        adapter_name ? adapter_name : "(null)");
  }
  ctx = oftawq__oft_context(first);
  if (!dir || !modules) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_adapter_save: NULL folder or modules");
  oftawq_oft_config_init(&config);
  oftawq_oft_get_config(first, &config);
  m = calloc(n, sizeof *m);
  weights = calloc(n, sizeof *weights);
  if (!m || !weights) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (i = 0; i < n; i++) {
    oftawq_oft *oft = layers[i] ? oftawq_layer_adapter(layers[i], adapter_name) : NULL;
    oftawq_oft_config c;
    oftawq_oft_shape s;
    if (!modules[i] || !layers[i]) {
      status = oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "module or layer %zu is NULL", i);
      goto done;
    }
    if (!oft) {
      status = oftawq__fail(ctx, OFTAWQ_E_NOT_FOUND, "the layer of module '%s' has no adapter '%s'", modules[i],
                            adapter_name);
      goto done;
    }
    oftawq_oft_config_init(&c);
    oftawq_oft_get_config(oft, &c);
    if (!same_config(&c, &config)) {
      status = oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                            "adapter '%s' of module '%s' has another config than that of '%s'; one folder holds one "
                            "config",
                            adapter_name, modules[i], modules[0]);
      goto done;
    }
    oftawq_oft_shape_init(&s);
    oftawq_oft_get_shape(oft, &s);
    oftawq_adapter_module_init(&m[i]);
    m[i].module = modules[i];
    m[i].rows = (size_t)s.weight_rows;
    m[i].cols = (size_t)s.n_elements;
    if (!(weights[i] = malloc((m[i].rows * m[i].cols + 1) * sizeof(float)))) {
      status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    if ((status = oftawq_oft_get_weights(oft, weights[i], m[i].rows * m[i].cols)) < 0) goto done;
    m[i].weights = weights[i];
  }
  if ((status = oftawq_adapter_write(dir, &config, m, n, options, why, sizeof why)) < 0)
    status = oftawq__fail(ctx, status, "saving adapter '%s': %s", adapter_name, why);
done:
  for (i = 0; weights && i < n; i++) free(weights[i]);
  free(weights);
  free(m);
  return status;
}
