/* train.h: internal interface of train.c - the layer's training state, and switches for tests and benchmarks. */
#ifndef OFTAWQ_TRAIN_H
#define OFTAWQ_TRAIN_H

#include "runtime/context.h"

struct oftawq__train_state;

/* Releases a layer's training state (NULL is a no-op). */
void oftawq__train_state_free(struct oftawq__train_state *state);

/* What the training forward keeps for the backward: 0 the input of every active adapter (the default),
 * 1 only the layer's input, recomputing the inner adapters' inputs in the backward. */
oftawq_status oftawq__layer_set_train_recompute(oftawq_layer *layer, int recompute);

/* Bytes of device memory the training state holds (saved activations and scratch). */
size_t oftawq__layer_train_bytes(oftawq_layer *layer);

#endif /* OFTAWQ_TRAIN_H */
