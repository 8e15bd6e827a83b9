/* awq.h: internal interface of awq.c - the base layer as the OFT layer drives it. */
#ifndef OFTAWQ_AWQ_H
#define OFTAWQ_AWQ_H

#include "runtime/buffer.h"
#include "runtime/context.h"

/* How one call runs: the path and its kernel's launch parameters (tuned per shape class). */
typedef struct oftawq__awq_plan {
  oftawq_awq_path path;
  int split, cols, rpi;            /* GEMV: split-K, word columns per group, rows per work-item */
  int gcols, grows, grgroups;      /* GEMM: word columns per group, rows per work-item, row groups */
  int fuse;                        /* GEMV: apply a single adapter's rotation inside the kernel */
  int tuned;                       /* 1: from the tuning database */
  int test_wrong;                  /* tests only: a variant whose output is deliberately off */
} oftawq__awq_plan;

/* The untuned plan for `rows` rows on this device. */
void oftawq__awq_default_plan(const oftawq_context *ctx, size_t rows, oftawq__awq_plan *plan);
/* The plan a call with `rows` rows uses: tuned if the database has it, else the default; a forced path wins. */
void oftawq__awq_plan_for(const oftawq_awq *awq, size_t rows, oftawq__awq_plan *plan);
/* The rotation a fused GEMV applies while loading x (R = NULL: none). */
typedef struct oftawq__fused_oft {
  cl_mem R;
  int block_size, share;
} oftawq__fused_oft;

/* Whether a plan can fuse a rotation of block size b for `rows` rows on this layer (local memory, path). */
int oftawq__awq_can_fuse(const oftawq_awq *awq, const oftawq__awq_plan *plan, size_t rows);

/* Enqueues the base layer with an explicit plan (the tuner's candidates); with `fused` (may be NULL)
 * the GEMV rotates x by fused->R first. */
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
/* The device tensors in AutoAWQ's layout (SPEC 4), for kernels that read W another way (the backward's dx). */
void oftawq__awq_buffers(const oftawq_awq *awq, cl_mem *qweight, cl_mem *qzeros, cl_mem *scales);

/* Bytes of the dense copy of W the layer holds for its dense path (0: none). */
size_t oftawq__awq_dense_bytes(const oftawq_awq *awq);

/* The context a base layer belongs to. */
oftawq_context *oftawq__awq_context(const oftawq_awq *awq);

#endif /* OFTAWQ_AWQ_H */
