/* layer.h: internal interface of layer.c - switches for tests and measurements. */
#ifndef OFTAWQ_LAYER_H
#define OFTAWQ_LAYER_H

#include "runtime/context.h"

/* Fusing a single adapter's rotation into the GEMV: -1 as tuned (the default), 0 never, 1 whenever possible. */
void oftawq__layer_set_fusion(oftawq_layer *layer, int mode);

#endif /* OFTAWQ_LAYER_H */
