/* oft.h: internal interface of oft.c - OFT adapters as the layer uses them. */
#ifndef OFTAWQ_OFT_H
#define OFTAWQ_OFT_H

#include "runtime/context.h"
#include "runtime/program.h"

struct oftawq__oft_grad; /* engines/oft_grad.c: a trainable adapter's gradient and scratch */

/* An adapter (the handle of the public API). */
struct oftawq_oft {
  oftawq_context *ctx;
  oftawq_oft_config config;
  char *peft_version;
  oftawq_oft_shape shape;
  float *weights;            /* host copy, COFT-projected */
  size_t weight_count;
  cl_mem R;                  /* [weight_rows][b][b] */
  int dirty;                 /* weights changed since R was built */
  uint64_t rebuilds;
  oftawq__kernel_list *kernels; /* kernel variants used so far */
  int exact_on_device;       /* -1 the default, 0 host LU, 1 device Gauss-Jordan */
  int warned_neumann;        /* the divergence warning was given */
  int forced_wg, forced_tile, forced_gj_wg; /* the tuner's candidate parameters (0: as tuned) */
  cl_mem build_w, build_Q, build_A, build_P[2]; /* scratch of the R builds, kept between builds */
  /* training (engines/train.c, oft_grad.c, optim.c) */
  cl_mem w_dev;              /* once trainable: the weights on the device, the current copy */
  int needs_projection;      /* COFT: w_dev changed on the device and is projected before R is built */
  uint64_t generation;       /* counts weight changes */
  struct oftawq__oft_grad *grad; /* non-NULL while trainable */
};

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

/* y = x . BD(R) with a caller's R of the adapter's layout (the backward passes R^T). */
oftawq_status oftawq__oft_enqueue_rotate_by(oftawq_oft *oft, cl_mem R, oftawq_dtype dtype, cl_mem x, cl_mem y,
                                            size_t rows, cl_mem row_select, cl_int select, cl_uint n_wait,
                                            const cl_event *wait, cl_event *done);

/* Enqueues Q = skew(w) ([weight_rows][b][b]) from the current weights. */
oftawq_status oftawq__oft_enqueue_skew(oftawq_oft *oft, cl_mem Q);

/* The Cayley-Neumann series R = sum_k c_k Q^k of the adapter's formula (SPEC 3.3): its highest power
 * (0 for n = 1) and the coefficient c_k of power k. */
int oftawq__oft_neumann_last(const oftawq_oft *oft);
float oftawq__oft_neumann_coef(const oftawq_oft *oft, int k);

/* The tuner's candidate parameters, used instead of the tuned ones (0: as tuned): the rotation's
 * work-group, the Neumann products' tile, the Gauss-Jordan work-group. Marks R for a rebuild. */
void oftawq__oft_force_params(oftawq_oft *oft, int rotate_wg, int tile, int gj_wg);

/* The context an adapter belongs to. */
oftawq_context *oftawq__oft_context(const oftawq_oft *oft);

/* The rotation's work-group size when the device is not tuned. */
int oftawq__oft_default_rotate_wg(void);
/* The R build's parameters when the device is not tuned. */
int oftawq__oft_default_cayley_tile(void);
int oftawq__oft_default_exact_wg(void);

#endif /* OFTAWQ_OFT_H */
