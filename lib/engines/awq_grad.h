/* awq_grad.h: internal interface of awq_grad.c - the AWQ base layer's input gradient. */
#ifndef OFTAWQ_AWQ_GRAD_H
#define OFTAWQ_AWQ_GRAD_H

#include "runtime/program.h"

/* Launch parameters of awq_grad_x (see cl/awq_grad.cl): values of k and rows per work-item. */
typedef struct oftawq__awq_grad_plan {
  int ki, mi;
} oftawq__awq_grad_plan;

/* The parameters for `rows` rows of a layer with group size G. */
void oftawq__awq_grad_plan_for(size_t rows, int G, oftawq__awq_grad_plan *plan);

/* What the backward keeps for a base layer: the kernels used and the scales and zero points as floats
 * (2 (K / G) N floats, made on first use; W itself stays packed). */
typedef struct oftawq__awq_grad {
  oftawq__kernel_list *kernels;
  cl_mem S, Z;
} oftawq__awq_grad;

void oftawq__awq_grad_free(oftawq__awq_grad *g);

/* Enqueues dx = dy . W^T (dy rows x N, dx rows x K of dtype; fp32 sums, rounded to dtype) straight from
 * the packed weights. */
oftawq_status oftawq__awq_enqueue_grad(oftawq_awq *awq, oftawq__awq_grad *grad, oftawq_dtype dtype, cl_mem dy,
                                       cl_mem dx, size_t rows);

#endif /* OFTAWQ_AWQ_GRAD_H */
