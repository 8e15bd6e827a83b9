/* model.h: internal interface of model.c - handing a model's layer over to the caller (oftawq_layer_load). */
#ifndef OFTAWQ_MODEL_H
#define OFTAWQ_MODEL_H

#include "common/internal.h"

/* OFTAWQ_OK when `module` is an AWQ GEMM module of the model; else the error (and message) of what it is. */
oftawq_status oftawq__model_check_module(oftawq_model *model, const char *module);

/* oftawq_model_layer(), then the layer belongs to the caller (oftawq_layer_destroy) instead of the model. */
oftawq_status oftawq__model_take_layer(oftawq_model *model, const char *module, oftawq_layer **layer);

#endif /* OFTAWQ_MODEL_H */
