/* awq.h: internal interface of awq.c - the base layer as the OFT layer drives it. */
#ifndef OFTAWQ_AWQ_H
#define OFTAWQ_AWQ_H

#include "internal.h"

/* Enqueues y = x . W + bias (rows x K in, rows x N out) on the path for `rows`. */
oftawq_status oftawq__awq_enqueue(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                  cl_uint n_wait, const cl_event *wait, cl_event *done);
/* Bytes of x and y for `rows` rows (overflow-checked). */
oftawq_status oftawq__awq_io_bytes(oftawq_awq *awq, oftawq_dtype dtype, size_t rows, size_t *xb, size_t *yb);
/* in_features of a base layer. */
int oftawq__awq_in_features(const oftawq_awq *awq);

#endif /* OFTAWQ_AWQ_H */
