/* tune.h: internal interface of tune.c - the autotuner's search above the layer (candidates, timing). */
#ifndef OFTAWQ_TUNE_H
#define OFTAWQ_TUNE_H

#include "engines/awq.h"
#include "runtime/context.h"

/* Room for every candidate oftawq__tune_awq_candidates offers (each is a compile on the device: PoCL
 * takes 0.3 to 2 s, so a minute's budget tries about this many per bucket). */
#define OFTAWQ__MAX_CANDIDATES 24

/* The AWQ plans the search tries for a K x N layer (group G) at `rows` rows, the default first; each
 * fits the device and launches a work-group for every compute unit (or as many as a default does, if
 * fewer). `inject_wrong` adds a deliberately wrong variant (tests). Returns the count (at most
 * OFTAWQ__MAX_CANDIDATES). check_tune's "candidates" case runs them against the reference (every
 * one of them with OFTAWQ_TEST_ALL_CANDIDATES=1, as the oclgrind CI job does). */
int oftawq__tune_awq_candidates(oftawq_context *ctx, int K, int N, int G, int rows, int inject_wrong,
                                oftawq__awq_plan *out);

/* oftawq_tune_shape restricted to some units of the search: the layout (at M = 1) and each rows bucket
 * (its AWQ plans, fused or not, and its rotation; bucket 0 also the R build). tests/kernel_tour runs
 * them one per process under oclgrind. */
#define OFTAWQ__TUNE_LAYOUT 1u
#define OFTAWQ__TUNE_BUCKET(b) (2u << (b))
#define OFTAWQ__TUNE_ALL ((OFTAWQ__TUNE_BUCKET(OFTAWQ__M_BUCKETS - 1) << 1) - 1u)
oftawq_status oftawq__tune_units(oftawq_context *ctx, int K, int N, int G, int block_size,
                                 const oftawq_tune_options *options, unsigned units, oftawq_tune_report *report);

#endif /* OFTAWQ_TUNE_H */
