/* peak.h: internal interface of peak.c - the device's fp32 FMA ceiling, the benchmark's compute reference. */
#ifndef OFTAWQ_PEAK_H
#define OFTAWQ_PEAK_H

#include <stddef.h>

#include "runtime/context.h"

#define OFTAWQ__PEAK_CHAINS 8    /* independent chains a work-item (cl/peak.cl) */
#define OFTAWQ__PEAK_SEEDS 1024  /* the chains start at 0 ... 1023 */
/* fma(a, 1, 1) counts exactly while a < 2^24: at most this many steps a call */
#define OFTAWQ__PEAK_MAX_ITERATIONS ((1 << 24) - OFTAWQ__PEAK_SEEDS)

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

/* Builds the reference for the context's device into *p. `iterations` > 0 fixes the steps of a call (at most
 * OFTAWQ__PEAK_MAX_ITERATIONS); 0 sizes them so that a call takes about `target_s` seconds (from 16 steps,
 * times 8 while a call is far below the target, then times 2). On failure *p holds nothing (zeroed). */
oftawq_status oftawq__fma_peak_create(oftawq_context *ctx, int iterations, double target_s, oftawq__fma_peak *p);

/* Enqueues one call. */
oftawq_status oftawq__fma_peak_enqueue(oftawq__fma_peak *p);

/* After a call: every lane of the first and the last work-item must hold its start plus the number of steps,
 * exactly (x = y = 1: each fma adds one). OFTAWQ_E_INTERNAL names the first lane that does not. */
oftawq_status oftawq__fma_peak_check(oftawq__fma_peak *p);

/* Releases what *p holds (a zeroed one too) and zeroes it. */
void oftawq__fma_peak_release(oftawq__fma_peak *p);

#endif /* OFTAWQ_PEAK_H */
