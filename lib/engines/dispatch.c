/* dispatch.c: the version-gated factory, PEFT's dispatch_awq in C, for AutoAWQ and GPT-QModel layers. */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "engines/dispatch.h"
#include "common/version.h"

/* The size of an oftawq_target before `producer` was added: such callers get OFTAWQ_PRODUCER_UNKNOWN. */
#define TARGET_SIZE_WITHOUT_PRODUCER offsetof(oftawq_target, producer)

void oftawq_target_init(oftawq_target *target)
{
  if (!target) return;
  memset(target, 0, sizeof *target);
  target->size = sizeof *target;
  target->kind = OFTAWQ_TARGET_AWQ_GEMM;
  target->producer = OFTAWQ_PRODUCER_UNKNOWN;
  oftawq_awq_tensors_init(&target->tensors);
}

oftawq_status oftawq__dispatch_check(const oftawq_context *ctx, oftawq_target_kind kind, oftawq_awq_producer producer,
                                     const char *version, char *why, size_t cap)
{
  if (kind != OFTAWQ_TARGET_AWQ_GEMM) {
    if (why && cap) why[0] = '\0';
    return OFTAWQ_NOT_APPLICABLE;
  }
  if ((int)producer < (int)OFTAWQ_PRODUCER_UNKNOWN || (int)producer > (int)OFTAWQ_PRODUCER_GPTQMODEL)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "unknown AWQ producer %d", (int)producer);
  if (version) {
    /* PEFT's gates: AutoAWQ (0.16-0.18), GPT-QModel's AWQ GEMM layer (0.19+) */
    const int gptq = producer == OFTAWQ_PRODUCER_GPTQMODEL;
    const char *min_text = gptq ? OFTAWQ_MIN_GPTQMODEL_VERSION : OFTAWQ_MIN_AWQ_VERSION;
    oftawq__version found, min;
    if (!oftawq__version_parse(version, &found))
      return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "the %s version '%s' is not a PEP 440 version",
                         gptq ? "GPT-QModel" : "AWQ", version);
    oftawq__version_parse(min_text, &min);
    if (oftawq__version_cmp(&found, &min) < 0)
      return oftawq__why(why, cap, OFTAWQ_E_INCOMPATIBLE_VERSION,
                         "Found an incompatible version of %s. Found version %s, but only versions above %s are "
                         "supported.",
                         gptq ? "gptqmodel" : "auto-awq", version, min_text);
  }
  if (ctx->info.opencl_c_major * 10 + ctx->info.opencl_c_minor < 12)
    return oftawq__why(why, cap, OFTAWQ_E_DEVICE_UNSUPPORTED, "device '%s' supports only '%s'; OpenCL C 1.2 is required",
                       ctx->info.name, ctx->info.opencl_c_version);
  if (why && cap) why[0] = '\0';
  return OFTAWQ_OK;
}

oftawq_status oftawq_dispatch(oftawq_context *ctx, const oftawq_target *target, const char *adapter_name,
                              const oftawq_oft_config *config, const float *weights, size_t count,
                              oftawq_layer **out)
{
  oftawq_layer *layer = NULL;
  oftawq_status status;
  oftawq_awq_producer producer;
  char why[512];
  if (out) *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_dispatch: NULL output");
  *out = NULL;
  if (!target || target->size < TARGET_SIZE_WITHOUT_PRODUCER)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_dispatch: NULL or uninitialised target");
  if ((int)target->kind < (int)OFTAWQ_TARGET_AWQ_GEMM || (int)target->kind > (int)OFTAWQ_TARGET_OTHER)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_dispatch: unknown target kind %d", (int)target->kind);
  producer = target->size >= sizeof *target ? target->producer : OFTAWQ_PRODUCER_UNKNOWN;
  status = oftawq__dispatch_check(ctx, target->kind, producer, target->awq_version, why, sizeof why);
  if (status == OFTAWQ_NOT_APPLICABLE) {
    oftawq__clear_error(ctx);
    return status;
  }
  if (status < 0) return oftawq__fail(ctx, status, "%s", why);
  if ((status = oftawq_layer_create(ctx, &target->tensors, &layer)) < 0) return status;
  if ((status = oftawq_layer_add_adapter(layer, adapter_name, config, weights, count)) < 0) {
    oftawq_layer_destroy(layer);
    return status;
  }
  *out = layer;
  return OFTAWQ_OK;
}
