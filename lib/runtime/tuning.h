/* tuning.h: internal interface of tuning.c - the per-device tuning database below the engines: the plan kinds,
 * loading with validation against the device's limits, indexed lookup, storing. */
#ifndef OFTAWQ_TUNING_H
#define OFTAWQ_TUNING_H

#include "runtime/context.h"

/* Rows (M) buckets: 1, 2, 3-4, 5-8, 9-64, 65-256, above 256. Up to 8 rows one pass over the weight serves them
 * all, and how a plan fares there depends on the rows (at 8 the FMAs bound it, at 2 the weight reads): a bucket
 * of its own for each power of two. */
#define OFTAWQ__M_BUCKETS 7

int oftawq__m_bucket(size_t rows);
/* The rows the tuner measures a bucket with. */
int oftawq__bucket_rows(int bucket);

/* Parameter ranges of the AWQ kernels (cl/awq.cl), besides the device's limits. */
#define OFTAWQ__MAX_ROWS_PER_ITEM 8   /* rows one pass over the weight serves */
#define OFTAWQ__MAX_VEC 8             /* packed words (8 columns each) per work-item */
#define OFTAWQ__MAX_SPLIT 256         /* work-items sharing one column block along K (a power of two) */
#define OFTAWQ__MAX_CHUNK 64          /* k-chunk: unit of split-K work, divides the group size */
#define OFTAWQ__MAX_GROUPS 64         /* row groups of a work-group */
#define OFTAWQ__MAX_PREFETCH 256      /* k rows ahead a work-item asks for its packed words */
#define OFTAWQ__AWQ_LAYOUTS 3         /* device layouts of the weights (engines/awq_repack.h) */

/* How one AWQ call runs: the path and its kernel's launch parameters (tuned per shape class).
 * Both matmul paths run awq_matmul with local size (cols, split, rgroups): the GEMV splits K over
 * `split` work-items (rgroups = 1), the GEMM stacks `rgroups` row groups (split = 1). */
typedef struct oftawq__awq_plan {
  oftawq_awq_path path;
  int split, cols, rpi, vec;       /* GEMV: split-K, work-items along N, rows per item, words per item */
  int gcols, grows, grgroups, gvec; /* GEMM: work-items along N, rows per item, row groups, words per item */
  int colvec, gcolvec;             /* GEMV / GEMM: 1: a vector's lanes are one word's 8 columns (AWQ_COLVEC) */
  int prefetch, gprefetch;         /* GEMV / GEMM: k rows ahead to prefetch the packed words, 0: none (AWQ_PREFETCH) */
  int fuse;                        /* GEMV: apply a single adapter's rotation while staging x */
  int tuned;                       /* 1: from the tuning database */
  int test_wrong;                  /* tests only: a variant whose output is deliberately off */
} oftawq__awq_plan;

/* The launch geometry of a matmul plan (GEMV or GEMM). */
typedef struct oftawq__awq_geometry {
  int cols, split, rgroups, rows, vec, colvec, prefetch;
} oftawq__awq_geometry;

void oftawq__awq_plan_geometry(const oftawq__awq_plan *p, oftawq__awq_geometry *g);
/* The work-groups a matmul plan launches for `rows` rows of a layer N columns wide (0 for the dense path). */
size_t oftawq__awq_plan_groups(const oftawq__awq_plan *p, int N, size_t rows);
/* The k-chunk for group size G (a divisor of G, at most OFTAWQ__MAX_CHUNK unless G has no such divisor but 1). */
int oftawq__awq_chunk(int G);
/* 1 when the device runs a work-group's items as loops on a CPU thread: awq_matmul keeps its sums in
 * local memory and stages x splatted (AWQ_WI_LOOPS). */
int oftawq__awq_wi_loops(const oftawq_context *ctx);
/* 1 when a plan's parameters are in range and fit the device (work-group and work-item sizes, local
 * memory); otherwise 0 with the reason in `why`. */
int oftawq__awq_plan_fits(const oftawq_context *ctx, const oftawq__awq_plan *p, int G, char *why, size_t cap);
/* "path=gemv split=8 ..." and back; parsing fails on anything malformed, unknown or out of range. */
void oftawq__awq_plan_text(const oftawq__awq_plan *p, char *buf, size_t cap);
int oftawq__awq_plan_parse(const char *text, oftawq__awq_plan *p);

/* The R build and the rotation: parameter checks against the device for block size b. */
int oftawq__cayley_params_fit(const oftawq_context *ctx, int b, int tile, int gj_wg, char *why, size_t cap);
int oftawq__rotate_wg_fits(const oftawq_context *ctx, int wg, char *why, size_t cap);

/* Loads the context's database from its cache folder. A corrupt or foreign file is ignored and an
 * entry that is malformed or does not fit the device is dropped, each with one warning. */
void oftawq__tuning_load(oftawq_context *ctx);
void oftawq__tuning_free(oftawq_context *ctx);

/* Lookups: each overwrites its output only when the database has a valid entry (1), else returns 0. */
int oftawq__tuning_awq(const oftawq_context *ctx, int K, int N, int G, size_t rows, oftawq__awq_plan *plan);
int oftawq__tuning_cayley(const oftawq_context *ctx, int b, int *tile, int *gj_wg);
int oftawq__tuning_rotate(const oftawq_context *ctx, int b, size_t rows, int *wg);
/* The device layout of a K x N layer's weights (0: AutoAWQ's, 1: K4, 2: KC; see engines/awq_repack.h). */
int oftawq__tuning_awq_layout(const oftawq_context *ctx, int K, int N, int G, int *layout);

/* Stores (in memory; oftawq__tuning_save writes the folder's file). `note` (may be NULL) is kept as a
 * comment after the parameters: why the search chose them. */
oftawq_status oftawq__tuning_store_awq(oftawq_context *ctx, int K, int N, int G, size_t rows, const oftawq__awq_plan *p,
                                       const char *note);
oftawq_status oftawq__tuning_store_cayley(oftawq_context *ctx, int b, int tile, int gj_wg);
oftawq_status oftawq__tuning_store_rotate(oftawq_context *ctx, int b, size_t rows, int wg);
oftawq_status oftawq__tuning_store_awq_layout(oftawq_context *ctx, int K, int N, int G, int layout, const char *note);
/* Removes an AWQ entry that failed on the device (with a warning naming `why`). */
void oftawq__tuning_drop_awq(oftawq_context *ctx, int K, int N, int G, size_t rows, const char *why);
/* Writes the database to the cache folder (no folder: nothing to do; a write failure only warns). */
oftawq_status oftawq__tuning_save(oftawq_context *ctx);

/* Work done by the database so far (key comparisons in lookups and inserts): tests bound it. */
uint64_t oftawq__tuning_probes(const oftawq_context *ctx);
/* Changes whenever an entry is stored or removed: a cached lookup is stale when it differs. */
uint64_t oftawq__tuning_generation(const oftawq_context *ctx);

#endif /* OFTAWQ_TUNING_H */
