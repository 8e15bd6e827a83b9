/* oft.h: internal interface of oft.c - OFT adapters as the layer uses them. */
#ifndef OFTAWQ_OFT_H
#define OFTAWQ_OFT_H

#include "runtime/context.h"

/* R on the device, built if the weights changed since the last build. The
 * adapter owns the buffer: [weight_rows][b][b] floats. */
oftawq_status oftawq__oft_rotation_buffer(oftawq_oft *oft, cl_mem *R);

/* Enqueues y = x . BD(R) for rows x in_features elements (no alias). With a
 * row_select buffer (int per row), only rows whose entry equals `select` are
 * written; the others of y are left as they are. */
oftawq_status oftawq__oft_enqueue_rotate(oftawq_oft *oft, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                         cl_mem row_select, cl_int select, cl_uint n_wait, const cl_event *wait,
                                         cl_event *done);

/* Exact Cayley: -1 the default, 0 on the host (LU in double), 1 on the device (Gauss-Jordan, fp32). */
void oftawq__oft_set_exact_on_device(oftawq_oft *oft, int mode);

/* The context an adapter belongs to. */
oftawq_context *oftawq__oft_context(const oftawq_oft *oft);

/* The rotation's work-group size when the device is not tuned. */
int oftawq__oft_default_rotate_wg(void);
/* The R build's parameters when the device is not tuned. */
int oftawq__oft_default_cayley_tile(void);
int oftawq__oft_default_exact_wg(void);

#endif /* OFTAWQ_OFT_H */
