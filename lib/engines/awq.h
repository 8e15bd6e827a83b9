/* awq.h: internal interface of awq.c - the base layer as the OFT layer, the benchmark and the tuner drive it. */
#ifndef OFTAWQ_AWQ_H
#define OFTAWQ_AWQ_H

#include "runtime/buffer.h"
#include "runtime/context.h"
#include "runtime/tuning.h"

/* oftawq_awq_create with a device layout (engines/awq_repack.h: OFTAWQ__LAYOUT_AWQ, _K4 or _KC; -1: the tuned
 * one for the shape class, else AutoAWQ's). */
oftawq_status oftawq__awq_create_layout(oftawq_context *ctx, const oftawq_awq_tensors *t, int layout, oftawq_awq **out);
/* A layer's device layout. */
int oftawq__awq_layout(const oftawq_awq *awq);
/* The layout a new K x N layer (group G) takes: the tuned one for its shape class, else AutoAWQ's own. */
int oftawq__awq_default_layout(const oftawq_context *ctx, int K, int N, int G);

/* The untuned plan for a K x N layer (group G) in `layout` (OFTAWQ__LAYOUT_*) and `rows` rows on this device:
 * the shipped defaults for the paths, the launch geometry sized from the device's compute units and
 * work-group multiple (and, on an interleaved layout, for one word per work-item). */
void oftawq__awq_default_plan(oftawq_context *ctx, int K, int N, int G, size_t rows, int layout,
                              oftawq__awq_plan *plan);
/* The plan a call with `rows` rows uses: tuned if the database has it, else the default; a forced path wins. */
void oftawq__awq_plan_for(oftawq_awq *awq, size_t rows, oftawq__awq_plan *plan);

/* The rotation a fused matmul applies while staging x (R = NULL: none). */
typedef struct oftawq__fused_oft {
  cl_mem R;
  int block_size, share;
} oftawq__fused_oft;

/* Whether a plan can fuse a rotation for `rows` rows on this layer (the matmul paths can). */
int oftawq__awq_can_fuse(const oftawq_awq *awq, const oftawq__awq_plan *plan, size_t rows);

/* Enqueues the base layer with an explicit plan (the tuner's candidates); with `fused` (may be NULL)
 * the matmul rotates x by fused->R first. A tuned plan that fails on the device is dropped from the
 * database and the default plan runs instead. */
oftawq_status oftawq__awq_enqueue_plan(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                       const oftawq__awq_plan *plan, const oftawq__fused_oft *fused, cl_uint n_wait,
                                       const cl_event *wait, cl_event *done);

/* Enqueues y = x . W + bias (rows x K in, rows x N out) on the path for `rows`. */
oftawq_status oftawq__awq_enqueue(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                  cl_uint n_wait, const cl_event *wait, cl_event *done);
/* Runs `op` (the base layer's or a layer's forward) on host arrays x, y (on_host) or on the device
 * buffers dx, dy, with the size checks of a rows x K -> rows x N call. */
oftawq_status oftawq__awq_run(oftawq_awq *awq, oftawq__device_op op, void *obj, oftawq_dtype dtype, int on_host,
                              const void *x, void *y, cl_mem dx, cl_mem dy, size_t rows, cl_uint n_wait,
                              const cl_event *wait, cl_event *done);
/* The device tensors in AutoAWQ's layout (SPEC 4), for kernels that read W another way (the backward's dx).
 * An interleaved (K4, KC) layer unpacks them on the device the first time (and keeps them: training
 * memory). */
oftawq_status oftawq__awq_buffers(oftawq_awq *awq, cl_mem *qweight, cl_mem *qzeros, cl_mem *scales);

/* The context a base layer belongs to. */
oftawq_context *oftawq__awq_context(const oftawq_awq *awq);
/* The dense path's last call: how many K tiles the dequantised weight took (0: it did not run), for tests. */
int oftawq__awq_dense_tiles(const oftawq_awq *awq);
/* Bytes the layer keeps on the device for good (its tensors; the shared scratch is the context's). */
size_t oftawq__awq_device_bytes(const oftawq_awq *awq);

#endif /* OFTAWQ_AWQ_H */
