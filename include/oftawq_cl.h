/* oftawq_cl.h: OpenCL interop for liboftawq - the caller's cl_context, cl_command_queue and cl_mem. */
#ifndef OFTAWQ_CL_H
#define OFTAWQ_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#  define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "oftawq.h"

#ifdef __cplusplus
extern "C" {
#endif

/*! oftawq_context_create_from_cl() :
 *  Wraps the caller's OpenCL objects instead of creating new ones. The
 *  context retains `context` and `queue` (clRetain*) and releases them when
 *  destroyed; the device is the queue's device. Work is enqueued on `queue`,
 *  which may be in-order or out-of-order (the library orders its own kernels
 *  with events). options->device is ignored; the other options apply.
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT (NULL handles, or a queue not
 *            belonging to `context`), OFTAWQ_E_OPENCL. */
OFTAWQ_API OFTAWQ_NODISCARD oftawq_status oftawq_context_create_from_cl(const oftawq_context_options *options,
                                                                        cl_context context, cl_command_queue queue,
                                                                        oftawq_context **out);

/*! oftawq_context_get_cl() : the OpenCL objects a context uses (owned by the
 *  context; retain them to keep them beyond its life). Any output may be NULL. */
OFTAWQ_API oftawq_status oftawq_context_get_cl(const oftawq_context *ctx, cl_context *context,
                                               cl_command_queue *queue, cl_device_id *device);

/*! oftawq_context_last_cl_error() : the OpenCL error code behind the last
 *  OFTAWQ_E_OPENCL / OFTAWQ_E_BUILD / OFTAWQ_E_DEVICE_MEMORY, or CL_SUCCESS. */
OFTAWQ_API cl_int oftawq_context_last_cl_error(const oftawq_context *ctx);

/*! oftawq_oft_rotate_cl() :
 *  y = x . BD(R) on device buffers of the adapter's context: `rows` rows of
 *  in_features elements of `dtype`, starting at byte offsets 0. y must not
 *  alias x. Non-blocking: waits for `wait` (n_wait events), and `done` (may
 *  be NULL) receives an event the caller releases.
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT (too small buffers), OFTAWQ_E_OPENCL. */
OFTAWQ_API oftawq_status oftawq_oft_rotate_cl(oftawq_oft *oft, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                              cl_uint n_wait, const cl_event *wait, cl_event *done);

/*! oftawq_awq_forward_cl() : oftawq_awq_forward() on device buffers (rows x K in, rows x N out,
 *  no aliasing), non-blocking with an optional wait list and completion event. */
OFTAWQ_API oftawq_status oftawq_awq_forward_cl(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                               cl_uint n_wait, const cl_event *wait, cl_event *done);

/*! oftawq_layer_forward_cl() : oftawq_layer_forward() on device buffers (rows x K in,
 *  rows x N out, no aliasing; x is not modified), non-blocking with an optional
 *  wait list and completion event. */
OFTAWQ_API oftawq_status oftawq_layer_forward_cl(oftawq_layer *layer, oftawq_dtype dtype, cl_mem x, cl_mem y,
                                                 size_t rows, cl_uint n_wait, const cl_event *wait, cl_event *done);

/*! oftawq_layer_forward_train_cl() : oftawq_layer_forward_train() on device buffers (rows x K in,
 *  rows x N out, no aliasing; x is copied, so the caller may reuse it), non-blocking. */
OFTAWQ_API oftawq_status oftawq_layer_forward_train_cl(oftawq_layer *layer, oftawq_dtype dtype, cl_mem x, cl_mem y,
                                                       size_t rows, cl_uint n_wait, const cl_event *wait,
                                                       cl_event *done);

/*! oftawq_layer_backward_cl() : oftawq_layer_backward() on device buffers (dy rows x N, dx rows x K
 *  or NULL, no aliasing), non-blocking. */
OFTAWQ_API oftawq_status oftawq_layer_backward_cl(oftawq_layer *layer, oftawq_dtype dtype, cl_mem dy, cl_mem dx,
                                                  size_t rows, cl_uint n_wait, const cl_event *wait, cl_event *done);

#ifdef __cplusplus
}
#endif

#endif /* OFTAWQ_CL_H */
