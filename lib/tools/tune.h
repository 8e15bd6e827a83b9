/* tune.h: internal interface of tune.c - the tuning database the kernels consult, and shape classes. */
#ifndef OFTAWQ_TUNE_H
#define OFTAWQ_TUNE_H

#include "engines/awq.h"
#include "runtime/context.h"

/* Rows (M) buckets: 1, 2-8, 9-64, 65-256, above 256. */
#define OFTAWQ__M_BUCKETS 5

int oftawq__m_bucket(size_t rows);

/* Loads the context's database from its cache folder (a corrupt or foreign file is ignored, with a warning). */
void oftawq__tune_load(oftawq_context *ctx);
void oftawq__tune_free(oftawq_context *ctx);

/* Overwrites `plan` with the tuned one for this shape class, if the database has it. */
void oftawq__tune_awq_plan(const oftawq_context *ctx, int K, int N, int G, size_t rows, oftawq__awq_plan *plan);
/* The tuned R-build parameters for block size b: the Neumann products' tile and the Gauss-Jordan
 * work-group size; each left as it is when not tuned. */
void oftawq__tune_cayley(const oftawq_context *ctx, int b, int *tile, int *gj_wg);
/* The tuned rotation work-group size for block size b and `rows`, or `fallback`. */
int oftawq__tune_rotate_wg(const oftawq_context *ctx, int b, size_t rows, int fallback);

#endif /* OFTAWQ_TUNE_H */
