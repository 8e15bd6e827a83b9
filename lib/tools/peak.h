/* peak.h: internal interface of peak.c - the device's fp32 FMA ceiling, the benchmark's compute reference. */
#ifndef OFTAWQ_PEAK_H
#define OFTAWQ_PEAK_H

#include <stddef.h>

#include "runtime/context.h"

/* Independent chains of fma (cl/peak.cl) on every lane of every compute unit. */
typedef struct oftawq__fma_peak {
  oftawq_context *ctx;
  cl_kernel kernel;
  cl_mem out;                /* every lane's last value */
  size_t global, local;      /* work-items */
  unsigned width;            /* lanes per chain */
  int iterations;            /* fma steps per chain and call */
  double flops;              /* per call: 2 per fma */
} oftawq__fma_peak;

/* Builds the reference for the context's device. `iterations` > 0 fixes the steps of a call; 0 sizes them so
 * that a call takes about `target_s` seconds (doubling from a few, at most 2^24). */
oftawq_status oftawq__fma_peak_create(oftawq_context *ctx, int iterations, double target_s, oftawq__fma_peak *p);

/* Enqueues one call. */
oftawq_status oftawq__fma_peak_enqueue(oftawq__fma_peak *p);

/* After a call: the first and the last work-item's lanes against the same chains run on the host (fmaf), bit
 * for bit. OFTAWQ_E_INTERNAL names the first lane that differs. */
oftawq_status oftawq__fma_peak_check(oftawq__fma_peak *p);

void oftawq__fma_peak_release(oftawq__fma_peak *p);

#endif /* OFTAWQ_PEAK_H */
