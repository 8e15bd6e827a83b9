/* safetensors.h: internal interface of safetensors.c - parsing from memory (fuzzing) and dtype sizes. */
#ifndef OFTAWQ_SAFETENSORS_H
#define OFTAWQ_SAFETENSORS_H

#include "common/internal.h"

/* Parses a whole safetensors image held in memory; tensors point into `buf`, which must outlive the result. */
oftawq_status oftawq__safetensors_parse(const unsigned char *buf, size_t len, oftawq_safetensors **out, char *why,
                                        size_t why_capacity);

/* Name and offset comparisons parsing made: at most a few times n log2 n for n tensors, whatever the header
 * (tests bound it, since parsing must stay near-linear for crafted files). */
size_t oftawq__safetensors_comparisons(const oftawq_safetensors *f);

/* Bytes per element of a tensor dtype (0 for an unknown one). */
size_t oftawq__dtype_bytes(oftawq_tensor_dtype dtype);

#endif /* OFTAWQ_SAFETENSORS_H */
