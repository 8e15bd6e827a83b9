/* synthetic.h: internal interface of synthetic.c - synthetic layers with known answers, for the benchmark and the tuner. */
#ifndef OFTAWQ_SYNTHETIC_H
#define OFTAWQ_SYNTHETIC_H

#include "runtime/context.h"

/* Rows of an output compared with the reference: the first and the last. */
#define OFTAWQ__CHECKED_ROWS 2
/* The adapter's name in a synthetic layer. */
#define OFTAWQ__SYNTHETIC_ADAPTER "bench"

/* A random AWQ layer K x N (group G) with one Neumann OFT adapter of block b, and M rows of input on the device. */
typedef struct oftawq__synthetic {
  oftawq_context *ctx;
  int K, N, M, G, block_size;
  int32_t *qw, *qz;
  uint16_t *sc, *bias;
  float *x;                 /* M x K, values exactly representable in fp16 */
  float *w_oft;
  size_t n_oft;
  oftawq_layer *layer;
  cl_mem dx, dy, dxr;       /* x; an M x N output; an M x K rotated-input buffer */
} oftawq__synthetic;

/* Checks a shape before anything is allocated: positive, N % 8 == 0, K % G == 0, and buffers the device can hold. */
oftawq_status oftawq__synthetic_check_shape(oftawq_context *ctx, int K, int N, int M, int G, int block_size);
oftawq_status oftawq__synthetic_create(oftawq_context *ctx, int K, int N, int M, int G, int block_size, uint64_t seed,
                                       oftawq__synthetic *s);
void oftawq__synthetic_free(oftawq__synthetic *s);
/* The synthetic layer's host tensors, for another base layer on the same weights (another device layout). */
void oftawq__synthetic_tensors(const oftawq__synthetic *s, oftawq_awq_tensors *t);

/* Rows 0 and M-1 of a device buffer of M x cols floats. */
oftawq_status oftawq__synthetic_read_rows(const oftawq__synthetic *s, cl_mem buf, size_t cols, float *out);
/* Rows 0 and M-1 of the input, rotated `times` times by `oft` in double (not rotated for NULL). */
oftawq_status oftawq__synthetic_reference_input(const oftawq__synthetic *s, oftawq_oft *oft, int times, float *xr);
/* Checks output rows 0 and M-1 (`got`, 2 x N) against the reference layer on x rotated `times` times by `oft`. */
oftawq_status oftawq__synthetic_check_output(const oftawq__synthetic *s, const char *what, oftawq_oft *oft, int times,
                                             int with_bias, const float *got);
/* `got` against `want`, elementwise, relative to the RMS of `want`; a detail naming `what` on failure. */
oftawq_status oftawq__synthetic_compare(oftawq_context *ctx, const char *what, const float *got, const float *want,
                                        size_t n);
/* An adapter's R (from the device) against the reference Cayley of its weights, in double. */
oftawq_status oftawq__synthetic_check_rotation(oftawq_oft *oft, const char *what);
double oftawq__now(void);

#endif /* OFTAWQ_SYNTHETIC_H */
