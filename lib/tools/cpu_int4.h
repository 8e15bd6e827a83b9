/* cpu_int4.h: internal interface of cpu_int4.c - the benchmark's native C int4 peer on the host CPU. */
#ifndef OFTAWQ_CPU_INT4_H
#define OFTAWQ_CPU_INT4_H

#include <stddef.h>
#include <stdint.h>

#include "common/internal.h"

/* One AWQ layer in host memory (AutoAWQ's tensors, untouched) and a pool of worker threads. */
typedef struct oftawq__cpu_int4 oftawq__cpu_int4;

/* A peer for a K x N layer (group G) with `threads` threads (the caller counts itself as one) and room
 * for up to `max_rows` rows. The tensors are borrowed, not copied. */
oftawq_status oftawq__cpu_int4_create(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales,
                                      const uint16_t *bias, int K, int N, int G, int max_rows, int threads,
                                      oftawq__cpu_int4 **out);
void oftawq__cpu_int4_destroy(oftawq__cpu_int4 *p);

/* y = fp16(fp16(x) . W + bias) for `rows` rows of fp32 x (rows x K) into fp32 y (rows x N), as the
 * layer computes it: the same chunked zero-point folding, fp32 sums. */
oftawq_status oftawq__cpu_int4_forward(oftawq__cpu_int4 *p, const float *x, float *y, int rows);

#endif /* OFTAWQ_CPU_INT4_H */
