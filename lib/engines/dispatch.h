/* dispatch.h: internal interface of dispatch.c - the factory's decision without making a layer. */
#ifndef OFTAWQ_DISPATCH_H
#define OFTAWQ_DISPATCH_H

#include "runtime/context.h"

/* What oftawq_dispatch() decides for a target of this kind and producer version, before any layer is made:
 * OFTAWQ_NOT_APPLICABLE, OFTAWQ_E_INCOMPATIBLE_VERSION (PEFT's message), OFTAWQ_E_INVALID_ARGUMENT (an
 * unparsable version or unknown producer), OFTAWQ_E_DEVICE_UNSUPPORTED, or OFTAWQ_OK; the detail in `why`. */
oftawq_status oftawq__dispatch_check(const oftawq_context *ctx, oftawq_target_kind kind, oftawq_awq_producer producer,
                                     const char *version, char *why, size_t why_capacity);

#endif /* OFTAWQ_DISPATCH_H */
