/* dispatch.c: the version-gated factory, PEFT's dispatch_awq in C. */
#include "config.h"

#include <string.h>

#include "runtime/context.h"
#include "common/version.h"

void oftawq_target_init(oftawq_target *target)
{
  if (!target) return;
  memset(target, 0, sizeof *target);
  target->size = sizeof *target;
  target->kind = OFTAWQ_TARGET_AWQ_GEMM;
  oftawq_awq_tensors_init(&target->tensors);
}

oftawq_status oftawq_dispatch(oftawq_context *ctx, const oftawq_target *target, const char *adapter_name,
                              const oftawq_oft_config *config, const float *weights, size_t count,
                              oftawq_layer **out)
{
  oftawq_layer *layer = NULL;
  oftawq_status status;
  if (out) *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_dispatch: NULL output");
  *out = NULL;
  if (!target || target->size < sizeof *target)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_dispatch: NULL or uninitialised target");
  if (target->kind < OFTAWQ_TARGET_AWQ_GEMM || target->kind > OFTAWQ_TARGET_LINEAR_F32)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_dispatch: unknown target kind %d", (int)target->kind);
  if (target->kind != OFTAWQ_TARGET_AWQ_GEMM) {
    oftawq__clear_error(ctx);
    return OFTAWQ_NOT_APPLICABLE;
  }
  if (target->awq_version) {
    oftawq__version found, min;
    if (!oftawq__version_parse(target->awq_version, &found))
      return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "the AWQ version '%s' is not a PEP 440 version",
                          target->awq_version);
    oftawq__version_parse(OFTAWQ_MIN_AWQ_VERSION, &min);
    if (oftawq__version_cmp(&found, &min) < 0)
      return oftawq__fail(ctx, OFTAWQ_E_INCOMPATIBLE_VERSION,
                          "Found an incompatible version of auto-awq. Found version %s, but only versions above "
                          OFTAWQ_MIN_AWQ_VERSION " are supported.",
                          target->awq_version);
  }
  if (ctx->info.opencl_c_major * 10 + ctx->info.opencl_c_minor < 12)
    return oftawq__fail(ctx, OFTAWQ_E_DEVICE_UNSUPPORTED, "device '%s' supports only '%s'; OpenCL C 1.2 is required",
                        ctx->info.name, ctx->info.opencl_c_version);
  if ((status = oftawq_layer_create(ctx, &target->tensors, &layer)) < 0) return status;
  if ((status = oftawq_layer_add_adapter(layer, adapter_name, config, weights, count)) < 0) {
    oftawq_layer_destroy(layer);
    return status;
  }
  *out = layer;
  return OFTAWQ_OK;
}
