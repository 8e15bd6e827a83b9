/* layer.h: internal interface of layer.c - switches for tests and measurements. */
#ifndef OFTAWQ_LAYER_H
#define OFTAWQ_LAYER_H

#include "runtime/context.h"

/* Fusing a single adapter's rotation into the GEMV: -1 as tuned (the default), 0 never, 1 whenever possible. */
void oftawq__layer_set_fusion(oftawq_layer *layer, int mode);

/* The context a layer belongs to. */
oftawq_context *oftawq__layer_context(const oftawq_layer *layer);

/* The adapters forward applies, in order (none while adapters are disabled; unknown names skipped):
 * writes up to `cap` of them to `out` and returns how many there are. */
size_t oftawq__layer_active(const oftawq_layer *layer, oftawq_oft **out, size_t cap);

/* A counter that moves whenever adapters are added or deleted, the active list is set or adapters are
 * enabled or disabled: what a training forward saw is still valid while it stays the same. */
uint64_t oftawq__layer_changes(const oftawq_layer *layer);

struct oftawq__train_state;
/* The slot of the layer's training state (engines/train.c owns what it points to; the layer frees it). */
struct oftawq__train_state **oftawq__layer_train_state(oftawq_layer *layer);

#endif /* OFTAWQ_LAYER_H */
