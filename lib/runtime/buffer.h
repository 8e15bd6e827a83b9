/* buffer.h: internal interface of buffer.c - device buffer checks, scratch buffers, host round trips. */
#ifndef OFTAWQ_BUFFER_H
#define OFTAWQ_BUFFER_H

#include "runtime/context.h"

/* Element size of an activation dtype (0 for an unknown one). */
size_t oftawq__dtype_size(oftawq_dtype dtype);

/* rows x cols elements of dtype in bytes; fails (with a message on ctx) on overflow or a bad dtype. */
oftawq_status oftawq__rows_bytes(oftawq_context *ctx, oftawq_dtype dtype, size_t rows, size_t cols, size_t *bytes);

/* Checks that `m` is a buffer of at least `need` bytes. */
oftawq_status oftawq__check_buffer(oftawq_context *ctx, cl_mem m, size_t need, const char *what);

/* Grows *buf to at least `bytes` (contents are not kept). */
oftawq_status oftawq__scratch(oftawq_context *ctx, cl_mem *buf, size_t *have, size_t bytes);

/* On an out-of-order queue, makes what is enqueued next wait for everything enqueued before (for steps
 * that depend on each other without events); nothing on an in-order queue. */
oftawq_status oftawq__ordered(oftawq_context *ctx);
/* The context's shared scratch: slot `slot` with at least `bytes` bytes (contents are kept only when it
 * was big enough already; then *tag says who filled it, else it is reset to 0 and the contents are
 * undefined). An allocation the device refuses releases every shared buffer (memory pressure) and is
 * tried once more. */
oftawq_status oftawq__scratch_shared(oftawq_context *ctx, int slot, size_t bytes, cl_mem *out, uint64_t **tag);
/* Releases the shared scratch (memory pressure, or the end of the context). */
void oftawq__scratch_release_all(oftawq_context *ctx);
/* The largest buffer the shared scratch asks for: the device's max allocation, at most a quarter of its memory. */
uint64_t oftawq__scratch_limit(const oftawq_context *ctx);

/* Something that computes y from x on the device (a layer, an adapter, a base layer). */
typedef oftawq_status (*oftawq__device_op)(void *obj, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                           cl_uint n_wait, const cl_event *wait, cl_event *done);

/* Runs `op` on host arrays: uploads x (xbytes), runs, reads y (ybytes), waits. */
oftawq_status oftawq__run_on_host(oftawq_context *ctx, oftawq__device_op op, void *obj, oftawq_dtype dtype,
                                  const void *x, size_t xbytes, void *y, size_t ybytes, size_t rows);

/* The checks every *_forward_cl entry makes, then `op`; rows == 0 enqueues a marker. */
oftawq_status oftawq__run_on_device(oftawq_context *ctx, oftawq__device_op op, void *obj, oftawq_dtype dtype,
                                    cl_mem x, size_t xbytes, cl_mem y, size_t ybytes, size_t rows, cl_uint n_wait,
                                    const cl_event *wait, cl_event *done);

#endif /* OFTAWQ_BUFFER_H */
