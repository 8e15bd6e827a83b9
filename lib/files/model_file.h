/* model_file.h: internal interface of model_file.c - what the device-side model reads of a model folder. */
#ifndef OFTAWQ_MODEL_FILE_H
#define OFTAWQ_MODEL_FILE_H

#include "common/internal.h"

/* Every tensor of the model (from the index's weight_map, or the one weights file), sorted by name. */
size_t oftawq__model_file_tensor_count(const oftawq_model_file *m);
const char *oftawq__model_file_tensor_name(const oftawq_model_file *m, size_t index);
/* A tensor by name, read from exactly the file that holds it (the index's word): OFTAWQ_E_NOT_FOUND when
 * the model has no such tensor, OFTAWQ_E_FORMAT when its shard does not hold it. */
oftawq_status oftawq__model_file_tensor(const oftawq_model_file *m, const char *name, oftawq_tensor *tensor,
                                        char *why, size_t why_capacity);
/* Whether a module is listed in modules_to_not_convert (kept in full precision). */
int oftawq__model_file_not_converted(const oftawq_model_file *m, const char *module);
/* config.json's model_type (NULL when absent). */
const char *oftawq__model_file_model_type(const oftawq_model_file *m);
/* The producer the quantization config records in meta.quantizer ("gptqmodel" or "autoawq") and its
 * version; both NULL when it records none. */
void oftawq__model_file_producer(const oftawq_model_file *m, const char **producer, const char **version);

#endif /* OFTAWQ_MODEL_FILE_H */
