/* tune.c: per-device autotuning - the time-boxed search above the layer: it hands each candidate to the engines
 * as an explicit plan, checks it against the reference, times it, and stores the winners in the tuning database. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/awq_repack.h"
#include "engines/oft.h"
#include "runtime/tuning.h"
#include "tools/synthetic.h"
#include "tools/tune.h"

#define DEFAULT_BUDGET_S 60.0
#define DEFAULT_RUNS 3
/* An interleaved layout must win clearly: the best of this many alternated rounds, by the margin. */
#define LAYOUT_ROUNDS 3
/* So must fusion: the median of its time over the separate launches' in this many alternated pairs (at least the
 * first number, at most the second), by this factor. */
#define FUSION_MIN_PAIRS 5
#define FUSION_PAIRS 9
#define FUSION_MARGIN 0.95
/* The fastest candidates of a bucket, timed again in alternated rounds before one is chosen. */
#define RUNOFF_SIZE 3
#define RUNOFF_ROUNDS 2 /* with the first timing: the median of three */
/* What a first dense (CLBlast) candidate may cost: CLBlast compiles its GEMM program then (~10 s on PoCL). */
#define DENSE_COLD_S 15.0

/* The parameter values the search combines (each candidate must also fit the device). */
static const int split_values[] = {1, 2, 4, 8, 16, 32};
static const int cols_values[] = {1, 2, 4, 8, 16, 32, 64, 128};
static const int vec_values[] = {1, 2, 4, 8};
static const int grows_values[] = {1, 2, 4, 8};
static const int grgroups_values[] = {1, 2, 4};
static const int colvec_values[] = {0, 1};
static const int prefetch_values[] = {0, 16, 32, 64};
static const int gprefetch_values[] = {0, 32};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
/* Room for every combination of the GEMV and GEMM axes below. */
#define GRID_CAP                                                                                                       \
  (COUNT(split_values) * COUNT(cols_values) * COUNT(vec_values) * COUNT(colvec_values) * COUNT(prefetch_values) +     \
   COUNT(cols_values) * COUNT(grows_values) * COUNT(grgroups_values) * COUNT(vec_values) * COUNT(colvec_values) *     \
     COUNT(gprefetch_values))

typedef struct tuner {
  oftawq_context *ctx;
  oftawq_tune_options o;
  oftawq_tune_report r;
  double start, deadline, last;    /* last: what the latest candidate cost, to stop before the budget ends */
  double looked;                   /* when the search last looked at the clock (report.longest_step_s) */
  int dense_warm;                  /* a dense candidate ran already (CLBlast has compiled) */
  int unit_tries;                  /* candidates tried in the current unit (options.max_candidates) */
} tuner;

/* Whether another step fits the budget: the latest candidate's cost must still fit before the deadline.
 * Every step of the search starts with this look, so the report's longest step bounds the overrun. */
static int time_left(tuner *t)
{
  const double now = oftawq__now();
  if (now - t->looked > t->r.longest_step_s) t->r.longest_step_s = now - t->looked;
  t->looked = now;
  return now + t->last <= t->deadline;
}

/* Whether the current unit may try another candidate: time left and under options.max_candidates. */
static int may_try(tuner *t)
{
  return (t->o.max_candidates <= 0 || t->unit_tries < t->o.max_candidates) && time_left(t);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ candidates */

/* One parameter of a grid: the plan field it sets and its values. */
typedef struct axis {
  size_t field; /* offsetof(oftawq__awq_plan, ...) of an int */
  const int *values;
  int count;
} axis;

/* The parameters each matmul path searches (and the ones that tell two launches of it apart). */
static const axis gemv_axes[] = {{offsetof(oftawq__awq_plan, split), split_values, COUNT(split_values)},
                                 {offsetof(oftawq__awq_plan, cols), cols_values, COUNT(cols_values)},
                                 {offsetof(oftawq__awq_plan, vec), vec_values, COUNT(vec_values)},
                                 {offsetof(oftawq__awq_plan, colvec), colvec_values, COUNT(colvec_values)},
                                 {offsetof(oftawq__awq_plan, prefetch), prefetch_values, COUNT(prefetch_values)}};
static const axis gemm_axes[] = {{offsetof(oftawq__awq_plan, gcols), cols_values, COUNT(cols_values)},
                                 {offsetof(oftawq__awq_plan, grows), grows_values, COUNT(grows_values)},
                                 {offsetof(oftawq__awq_plan, grgroups), grgroups_values, COUNT(grgroups_values)},
                                 {offsetof(oftawq__awq_plan, gvec), vec_values, COUNT(vec_values)},
                                 {offsetof(oftawq__awq_plan, gcolvec), colvec_values, COUNT(colvec_values)},
                                 {offsetof(oftawq__awq_plan, gprefetch), gprefetch_values, COUNT(gprefetch_values)}};

static int *axis_field(oftawq__awq_plan *p, const axis *a) { return (int *)(void *)((char *)p + a->field); }
static int axis_value(const oftawq__awq_plan *p, const axis *a)
{
  return *(const int *)(const void *)((const char *)p + a->field);
}

/* How many searched parameters two plans of the same path differ in (99: different paths). */
static int differences(const oftawq__awq_plan *a, const oftawq__awq_plan *b)
{
  const axis *axes = a->path == OFTAWQ_AWQ_GEMV ? gemv_axes : gemm_axes;
  const int n = a->path == OFTAWQ_AWQ_GEMV ? COUNT(gemv_axes) : COUNT(gemm_axes);
  int k, d = 0;
  if (a->path != b->path) return 99;
  for (k = 0; k < n; k++) d += axis_value(a, &axes[k]) != axis_value(b, &axes[k]);
  return d;
}

static int same_launch(const oftawq__awq_plan *a, const oftawq__awq_plan *b) { return differences(a, b) == 0; }

/* Adds a candidate unless it is there already, does not fit (where the layout runs one word per item, a plan
 * with more would run as the one-word plan) or launches fewer than `min_groups` work-groups: a launch that leaves
 * compute units idle wins only where the others share the device with a busy neighbour (one work-group of a
 * 2048 x 2048 GEMV at 2 rows, on one of PoCL's two threads, took the same median as four and 1.6x their
 * minimum, and a search picked it). */
static void offer(oftawq_context *ctx, int G, int N, int rows, size_t min_groups, int layout,
                  const oftawq__awq_plan *p, oftawq__awq_plan *c, int *n, int cap)
{
  int i;
  oftawq__awq_geometry g;
  oftawq__awq_plan_geometry(p, &g);
  if (*n >= cap || (N / 8) % g.vec || (g.vec != 1 && !oftawq__awq_layout_multiword(layout, g.colvec)) ||
      !oftawq__awq_plan_fits(ctx, p, G, NULL, 0) ||
      (p->path != OFTAWQ_AWQ_DENSE && oftawq__awq_plan_groups(p, N, (size_t)rows) < min_groups))
    return;
  for (i = 0; i < *n; i++)
    if (same_launch(&c[i], p) && c[i].test_wrong == p->test_wrong) return;
  c[(*n)++] = *p;
}

/* Appends to grid[ng..cap) every combination of the axes' values (the last axis fastest) on `path`, from `base`;
 * GEMM plans whose rows per item times row groups exceed twice `rows` (mostly empty rows) are left out.
 * Returns the new count. */
static int add_grid(const oftawq__awq_plan *base, oftawq_awq_path path, const axis *axes, int n_axes, int rows,
                    oftawq__awq_plan *grid, int ng, int cap)
{
  int idx[8] = {0}, k;
  for (;;) {
    oftawq__awq_plan p = *base;
    p.path = path;
    for (k = 0; k < n_axes; k++) *axis_field(&p, &axes[k]) = axes[k].values[idx[k]];
    if (ng < cap && (path != OFTAWQ_AWQ_GEMM || p.grows * p.grgroups <= 2 * rows)) grid[ng++] = p;
    for (k = n_axes - 1; k >= 0 && ++idx[k] == axes[k].count; k--) idx[k] = 0;
    if (k < 0) return ng;
  }
}

int oftawq__tune_awq_candidates(oftawq_context *ctx, int K, int N, int G, int rows, int inject_wrong,
                                oftawq__awq_plan *out)
{
  oftawq__awq_plan base, *grid, p;
  int n = 0, ng = 0, d, i, rpi, layout;
  size_t min_groups, groups;
  if (G == -1) G = K;
  layout = oftawq__awq_default_layout(ctx, K, N, G); /* the layout the shape class's layers take */
  oftawq__awq_default_plan(ctx, K, N, G, (size_t)rows, layout, &base);
  for (rpi = 1; rpi < OFTAWQ__MAX_ROWS_PER_ITEM && rpi < rows;) rpi *= 2;
  base.rpi = rpi;
  /* a work-group for every compute unit, or as many as the default launches on either path, if fewer */
  min_groups = ctx->info.compute_units ? ctx->info.compute_units : 1;
  for (i = 0; i < 2; i++) {
    p = base;
    p.path = i ? OFTAWQ_AWQ_GEMM : OFTAWQ_AWQ_GEMV;
    if ((groups = oftawq__awq_plan_groups(&p, N, (size_t)rows)) < min_groups) min_groups = groups;
  }
  offer(ctx, G, N, rows, min_groups, layout, &base, out, &n, OFTAWQ__MAX_CANDIDATES);
  if (inject_wrong) {
    p = base;
    p.test_wrong = 1;
    offer(ctx, G, N, rows, min_groups, layout, &p, out, &n, OFTAWQ__MAX_CANDIDATES);
  }
#ifdef OFTAWQ_HAVE_CLBLAST
  if (rows > 1 && base.path != OFTAWQ_AWQ_DENSE) {
    p = base;
    p.path = OFTAWQ_AWQ_DENSE;
    out[n++] = p;
  }
#endif
  if (!(grid = malloc(GRID_CAP * sizeof *grid))) return n; /* out of memory: the default alone */
  /* one pass over the weight serves up to 8 rows: the GEMV up to 8, the GEMM from 2 */
  if (rows <= OFTAWQ__MAX_ROWS_PER_ITEM)
    ng = add_grid(&base, OFTAWQ_AWQ_GEMV, gemv_axes, COUNT(gemv_axes), rows, grid, ng, GRID_CAP);
  if (rows > 1) ng = add_grid(&base, OFTAWQ_AWQ_GEMM, gemm_axes, COUNT(gemm_axes), rows, grid, ng, GRID_CAP);
  /* nearest to the default first: one parameter changed, then two, and so on; the paths alternate */
  for (d = 1; d <= COUNT(gemm_axes); d++) /* the longer list */
    for (i = 0; i < ng; i++) {
      oftawq__awq_plan ref = base;
      ref.path = grid[i].path;
      if (differences(&grid[i], &ref) == d)
        offer(ctx, G, N, rows, min_groups, layout, &grid[i], out, &n, OFTAWQ__MAX_CANDIDATES);
    }
  free(grid);
  return n;
}

/* ------------------------------------------------------------------ jobs */

/* What one candidate runs: the base layer on a plan, the rotation, or the layer (rotation + base, or fused). */
typedef enum job_kind { JOB_BASE, JOB_ROTATE, JOB_LAYER, JOB_FUSED, JOB_CAYLEY } job_kind;

typedef struct job {
  job_kind kind;
  oftawq__synthetic *s;
  const oftawq__awq_plan *plan;
  oftawq_oft *oft;                /* JOB_CAYLEY: the adapter whose R is rebuilt */
  oftawq_awq *base;               /* JOB_BASE: another base layer on the same tensors (NULL: the layer's) */
} job;

static oftawq_oft *synthetic_adapter(const oftawq__synthetic *s)
{
  return oftawq_layer_adapter(s->layer, OFTAWQ__SYNTHETIC_ADAPTER);
}

static oftawq_status run_job(const job *j)
{
  oftawq__synthetic *s = j->s;
  oftawq_awq *base = oftawq_layer_base(s->layer);
  oftawq_oft *oft = synthetic_adapter(s);
  oftawq_status status = OFTAWQ_OK;
  oftawq__fused_oft f;
  switch (j->kind) {
  case JOB_BASE:
    return oftawq__awq_enqueue_plan(j->base ? j->base : base, OFTAWQ_F32, s->dx, s->dy, (size_t)s->M, j->plan, NULL, 0,
                                    NULL, NULL);
  case JOB_ROTATE:
    return oftawq__oft_enqueue_rotate(oft, OFTAWQ_F32, s->dx, s->dxr, (size_t)s->M, NULL, 0, 0, NULL, NULL);
  case JOB_LAYER:
    if ((status = oftawq__oft_enqueue_rotate(oft, OFTAWQ_F32, s->dx, s->dxr, (size_t)s->M, NULL, 0, 0, NULL, NULL)) < 0)
      return status;
    return oftawq__awq_enqueue_plan(base, OFTAWQ_F32, s->dxr, s->dy, (size_t)s->M, j->plan, NULL, 0, NULL, NULL);
  case JOB_CAYLEY:
    if ((status = oftawq_oft_set_weights(j->oft, s->w_oft, s->n_oft)) < 0) return status;
    return oftawq_oft_prepare(j->oft);
  case JOB_FUSED:
    if ((status = oftawq__oft_rotation_buffer(oft, &f.R)) < 0) return status;
    f.block_size = s->block_size;
    f.share = 0;
    return oftawq__awq_enqueue_plan(base, OFTAWQ_F32, s->dx, s->dy, (size_t)s->M, j->plan, &f, 0, NULL, NULL);
  }
  return OFTAWQ_E_INTERNAL;
}

/* The job's output (rows 0 and M-1) against the reference. */
static oftawq_status check_job(const job *j)
{
  oftawq__synthetic *s = j->s;
  size_t cols = (size_t)(j->kind == JOB_ROTATE ? s->K : s->N);
  float *got = malloc(OFTAWQ__CHECKED_ROWS * cols * 4), *want = NULL;
  oftawq_status status;
  if (!got) return OFTAWQ_E_OUT_OF_MEMORY;
  if (j->kind == JOB_CAYLEY) {
    free(got);
    return oftawq__synthetic_check_rotation(j->oft, "R candidate");
  }
  if ((status = oftawq__synthetic_read_rows(s, j->kind == JOB_ROTATE ? s->dxr : s->dy, cols, got)) == OFTAWQ_OK) {
    if (j->kind == JOB_BASE)
      status = oftawq__synthetic_check_output(s, "candidate", NULL, 0, 1, got);
    else if (j->kind != JOB_ROTATE)
      status = oftawq__synthetic_check_output(s, "candidate", synthetic_adapter(s), 1, 1, got);
    else if (!(want = malloc(OFTAWQ__CHECKED_ROWS * cols * 4)))
      status = OFTAWQ_E_OUT_OF_MEMORY;
    else if ((status = oftawq__synthetic_reference_input(s, synthetic_adapter(s), 1, want)) == OFTAWQ_OK)
      status = oftawq__synthetic_compare(s->ctx, "candidate", got, want, OFTAWQ__CHECKED_ROWS * cols);
  }
  free(got);
  free(want);
  return status;
}

/* One timed launch of a job (s), or -1 if it failed. */
static double time_once(tuner *t, const job *j)
{
  double t0 = oftawq__now();
  if (run_job(j) < 0 || clFinish(t->ctx->queue) != CL_SUCCESS) return -1;
  return oftawq__now() - t0;
}

/* The median (s) of the options' number of timed runs of a job, or -1 if one failed. */
static double time_job(tuner *t, const job *j)
{
  double times[16];
  int i, runs = t->o.runs < 16 ? t->o.runs : 16;
  for (i = 0; i < runs; i++)
    if ((times[i] = time_once(t, j)) < 0) return -1;
  qsort(times, (size_t)runs, sizeof *times, cmp_double);
  return times[runs / 2];
}

/* Runs a candidate once and checks it, then times it. Returns the median (s), or -1 if it was rejected. */
static double try_job(tuner *t, const job *j)
{
  double t0 = oftawq__now(), median = -1;
  t->unit_tries++;
  if (run_job(j) >= 0 && clFinish(t->ctx->queue) == CL_SUCCESS && check_job(j) >= 0) median = time_job(t, j);
  t->last = oftawq__now() - t0;
  if (median < 0)
    t->r.candidates_rejected++;
  else
    t->r.candidates_timed++;
  return median;
}

/* ------------------------------------------------------------------ the units of the search */

/* Whether fusing the rotation into the matmul measures faster than rotation + matmul; the note says what was
 * measured. Each is checked and timed as a candidate, then timed in alternated pairs, separate then fused: fusion
 * is kept where the median of its time over the separate one's, pair by pair, is below the margin. A burst of
 * noise on a shared machine spans a pair, not a round of several launches of one kind (two rounds of three, each
 * won by fusion, fused a 4096 x 4096 GEMV at 8 rows on PoCL that runs 1.3-1.6x slower fused, once in three
 * searches). */
static int fusion_wins(tuner *t, oftawq__synthetic *s, const oftawq__awq_plan *best, double unit_deadline,
                       char *note, size_t cap)
{
  job sep, fused;
  double ratios[FUSION_PAIRS], d_sep, d_fused, ratio;
  int pairs = 0;
  memset(&sep, 0, sizeof sep);
  memset(&fused, 0, sizeof fused);
  sep.kind = JOB_LAYER;
  fused.kind = JOB_FUSED;
  sep.s = fused.s = s;
  sep.plan = fused.plan = best;
  if ((d_sep = try_job(t, &sep)) <= 0 || !may_try(t) || (d_fused = try_job(t, &fused)) <= 0) {
    snprintf(note, cap, "rotation kept separate: fusion not measured");
    return 0;
  }
  /* the least number of pairs even past the unit's deadline: the decision needs them */
  while (pairs < FUSION_PAIRS &&
         (pairs < FUSION_MIN_PAIRS || oftawq__now() + 2 * (d_sep + d_fused) <= unit_deadline)) {
    double a = time_once(t, &sep), b = a > 0 ? time_once(t, &fused) : -1;
    if (b <= 0) break;
    ratios[pairs++] = b / a;
    if (a < d_sep) d_sep = a;
    if (b < d_fused) d_fused = b;
  }
  if (pairs < FUSION_MIN_PAIRS) {
    snprintf(note, cap, "rotation kept separate: fusion measured in %d pairs, fewer than %d", pairs, FUSION_MIN_PAIRS);
    return 0;
  }
  qsort(ratios, (size_t)pairs, sizeof *ratios, cmp_double);
  ratio = ratios[pairs / 2];
  if (ratio < FUSION_MARGIN) {
    snprintf(note, cap, "rotation fused: %.3f ms vs %.3f ms separate, %.2fx the time (median of %d alternated pairs)",
             d_fused * 1e3, d_sep * 1e3, ratio, pairs);
    return 1;
  }
  snprintf(note, cap,
           "rotation kept separate: %.3f ms vs %.3f ms fused; fused %.2fx the time (median of %d alternated pairs; "
           "it must be below %.2f)",
           d_sep * 1e3, d_fused * 1e3, ratio, pairs, FUSION_MARGIN);
  return 0;
}

static double median3(double a, double b, double c)
{
  return a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b);
}

/* The rows bucket's plan: every candidate timed once, then the fastest RUNOFF_SIZE timed again in alternated
 * rounds and chosen by their median, so that one lucky (or unlucky) measurement on a noisy device does not
 * decide. */
static oftawq_status tune_awq(tuner *t, oftawq__synthetic *s, double unit_deadline)
{
  oftawq__awq_plan cand[OFTAWQ__MAX_CANDIDATES], best;
  double took[OFTAWQ__MAX_CANDIDATES], times[RUNOFF_SIZE][RUNOFF_ROUNDS + 1], best_t = -1, round_s = 0;
  int top[RUNOFF_SIZE], n_top, n, i, k, round, runoff, timed = 0;
  char note[320];
  size_t used;
  t->unit_tries = 0;
  n = oftawq__tune_awq_candidates(t->ctx, s->K, s->N, s->G, s->M, t->o.test_inject_wrong, cand);
  best = cand[0];
  for (i = 0; i < n; i++) took[i] = -1;
  for (i = 0; i < n && may_try(t) && (i < 2 || oftawq__now() + t->last <= unit_deadline); i++) {
    job j;
    if (cand[i].path == OFTAWQ_AWQ_DENSE && !t->dense_warm) {
      if (t->deadline - oftawq__now() < DENSE_COLD_S) continue; /* its first run could overrun the budget */
      t->dense_warm = 1;
    }
    memset(&j, 0, sizeof j);
    j.kind = JOB_BASE;
    j.s = s;
    j.plan = &cand[i];
    if ((took[i] = try_job(t, &j)) < 0) continue;
    if (cand[i].test_wrong) took[i] = 0; /* were it accepted, it would win */
    timed++;
  }
  for (n_top = 0; n_top < RUNOFF_SIZE; n_top++) { /* the fastest, fastest first */
    int pick = -1;
    for (i = 0; i < n; i++)
      if (took[i] >= 0 && (pick < 0 || took[i] < took[pick])) pick = i;
    if (pick < 0) break;
    top[n_top] = pick;
    times[n_top][0] = took[pick];
    round_s += (t->o.runs + 2) * took[pick]; /* a round's cost: built already, the calls remain */
    took[pick] = -1;
  }
  /* all rounds or none; past the unit's share if need be (the search took it), never past the budget */
  runoff = n_top > 1 && time_left(t) && oftawq__now() + RUNOFF_ROUNDS * round_s <= t->deadline;
  for (round = 1; runoff && round <= RUNOFF_ROUNDS; round++)
    for (k = 0; k < n_top; k++) { /* the candidates alternate: all see the same drift */
      job j;
      memset(&j, 0, sizeof j);
      j.kind = JOB_BASE;
      j.s = s;
      j.plan = &cand[top[k]];
      times[k][round] = cand[top[k]].test_wrong ? 0 : time_job(t, &j); /* checked already: timed only */
      if (times[k][round] < 0) times[k][round] = times[k][0]; /* a failed re-run counts as the first time */
    }
  for (k = 0; k < n_top; k++) {
    const double m = runoff ? median3(times[k][0], times[k][1], times[k][2]) : times[k][0];
    if (best_t < 0 || m < best_t) {
      best_t = m;
      best = cand[top[k]];
    }
  }
  if (timed < 2) return OFTAWQ_OK; /* nothing was compared: keep the defaults */
  best.fuse = 0;
  /* the note says why the rotation is or is not fused (oftawq info shows it) */
  if (best.test_wrong)
    snprintf(note, sizeof note, "WRONG");
  else if (!oftawq__awq_can_fuse(oftawq_layer_base(s->layer), &best, (size_t)s->M))
    snprintf(note, sizeof note, "rotation kept separate: the dense path cannot fuse it");
  else if (may_try(t))
    best.fuse = fusion_wins(t, s, &best, unit_deadline, note, sizeof note);
  else
    snprintf(note, sizeof note, "rotation kept separate: fusion not measured (budget or candidate limit spent)");
  used = strlen(note);
  if (!best.test_wrong && used < sizeof note) {
    if (runoff)
      snprintf(note + used, sizeof note - used,
               "; of %d candidates the fastest %d, timed %d more rounds: %.3f ms median", timed, n_top, RUNOFF_ROUNDS,
               best_t * 1e3);
    else
      snprintf(note + used, sizeof note - used,
               "; of %d candidates, on one timing each (no time for a runoff): %.3f ms", timed, best_t * 1e3);
  }
  t->r.classes_tuned++;
  return oftawq__tuning_store_awq(t->ctx, s->K, s->N, s->G, (size_t)s->M, &best, note);
}

/* The device layout of the shape class, decided at M = 1 before the buckets (their plans assume it): an
 * interleaved repack (K4, KC) is kept where it measures faster than AutoAWQ's layout by the fusion margin,
 * alternated rounds of the default launch and three variants on each. */
static oftawq_status tune_layout(tuner *t, int K, int N, int G, int block_size, double unit_deadline)
{
  oftawq__synthetic s;
  oftawq_awq_tensors tensors;
  oftawq_awq *bases[OFTAWQ__AWQ_LAYOUTS] = {NULL};
  oftawq__awq_plan plans[OFTAWQ__AWQ_LAYOUTS][4];
  double best[OFTAWQ__AWQ_LAYOUTS];
  int round, layout, i, winner = OFTAWQ__LAYOUT_AWQ;
  char note[200];
  size_t used;
  oftawq_status status = OFTAWQ_OK;
  t->unit_tries = 0;
  if (!oftawq__awq_interleave_possible(K, G) || !time_left(t)) return OFTAWQ_OK;
  if ((status = oftawq__synthetic_create(t->ctx, K, N, 1, G, block_size, 5, &s)) < 0) return status;
  oftawq__synthetic_tensors(&s, &tensors);
  for (layout = 0; layout < OFTAWQ__AWQ_LAYOUTS; layout++) { /* each layout's default launch and 3 variants */
    oftawq__awq_plan *p = plans[layout];
    best[layout] = -1;
    oftawq__awq_default_plan(t->ctx, K, N, G, 1, layout, &p[0]);
    p[1] = p[2] = p[3] = p[0];
    p[1].cols *= 2;
    p[2].split *= 2;
    p[3].colvec = !p[3].colvec; /* both lane orders */
    /* every layout its own layer: the synthetic one takes the layout an earlier run stored */
    if ((status = oftawq__awq_create_layout(t->ctx, &tensors, layout, &bases[layout])) < 0) goto done;
  }
  for (round = 0; round < LAYOUT_ROUNDS && time_left(t) && (round == 0 || oftawq__now() + 12 * t->last <= unit_deadline);
       round++)
    for (i = 0; i < 4; i++) /* the layouts alternate on each launch: all see the same drift */
      for (layout = 0; layout < OFTAWQ__AWQ_LAYOUTS && may_try(t); layout++) {
        job j;
        double d;
        if (!oftawq__awq_plan_fits(t->ctx, &plans[layout][i], G, NULL, 0)) continue;
        memset(&j, 0, sizeof j);
        j.kind = JOB_BASE;
        j.s = &s;
        j.plan = &plans[layout][i];
        j.base = bases[layout];
        if ((d = try_job(t, &j)) >= 0 && (best[layout] < 0 || d < best[layout])) best[layout] = d;
      }
  if (best[OFTAWQ__LAYOUT_AWQ] > 0) {
    used = (size_t)snprintf(note, sizeof note, "at M=1: AutoAWQ's layout %.3f ms", best[0] * 1e3);
    for (layout = 1; layout < OFTAWQ__AWQ_LAYOUTS; layout++) {
      if (best[layout] <= 0) continue;
      if (used < sizeof note)
        used += (size_t)snprintf(note + used, sizeof note - used, ", %s %.3f ms", oftawq__awq_layout_name(layout),
                                 best[layout] * 1e3);
      if (best[layout] < FUSION_MARGIN * best[0] && (winner == OFTAWQ__LAYOUT_AWQ || best[layout] < best[winner]))
        winner = layout;
    }
    t->r.classes_tuned++;
    status = oftawq__tuning_store_awq_layout(t->ctx, K, N, G, winner, note);
  }
done:
  for (layout = 0; layout < OFTAWQ__AWQ_LAYOUTS; layout++) oftawq_awq_destroy(bases[layout]);
  oftawq__synthetic_free(&s);
  return status;
}

static oftawq_status tune_rotate(tuner *t, oftawq__synthetic *s, double unit_deadline)
{
  static const int wgs[] = {64, 16, 32, 128, 256};
  oftawq_oft *oft = synthetic_adapter(s);
  double best_t = -1;
  int best_wg = 0, i, timed = 0;
  char why[8];
  t->unit_tries = 0;
  for (i = 0; i < COUNT(wgs) && may_try(t) && (i < 2 || oftawq__now() + t->last <= unit_deadline); i++) {
    job j;
    double d;
    if (!oftawq__rotate_wg_fits(t->ctx, wgs[i], why, sizeof why)) continue;
    memset(&j, 0, sizeof j);
    j.kind = JOB_ROTATE;
    j.s = s;
    oftawq__oft_force_params(oft, wgs[i], 0, 0);
    d = try_job(t, &j);
    if (d < 0) continue;
    timed++;
    if (best_t < 0 || d < best_t) {
      best_t = d;
      best_wg = wgs[i];
    }
  }
  oftawq__oft_force_params(oft, 0, 0, 0);
  if (timed < 2) return OFTAWQ_OK; /* not compared: no entry */
  t->r.classes_tuned++;
  return oftawq__tuning_store_rotate(t->ctx, s->block_size, (size_t)s->M, best_wg);
}

/* The R build: the Neumann products' tile on the synthetic adapter, the Gauss-Jordan work-group on an exact one. */
static oftawq_status tune_cayley(tuner *t, oftawq__synthetic *s)
{
  static const int tiles[] = {8, 4, 16}, wgs[] = {64, 32, 128};
  oftawq_oft *neumann = synthetic_adapter(s), *exact = NULL;
  oftawq_oft_config c;
  int best_tile = 0, best_wg = 0, i, timed_t = 0, timed_w = 0;
  double bt = -1, bw = -1;
  oftawq_status status;
  char why[8];
  oftawq_oft_config_init(&c);
  c.oft_block_size = s->block_size;
  c.use_cayley_neumann = 0;
  if ((status = oftawq_oft_create(t->ctx, &c, s->K, s->w_oft, s->n_oft, &exact)) < 0) return status;
  oftawq__oft_set_exact_on_device(exact, 1);
  t->unit_tries = 0;
  for (i = 0; i < COUNT(tiles) && may_try(t); i++) {
    job j;
    double d;
    if (!oftawq__cayley_params_fit(t->ctx, s->block_size, tiles[i], wgs[i], why, sizeof why)) continue;
    memset(&j, 0, sizeof j);
    j.kind = JOB_CAYLEY;
    j.s = s;
    j.oft = neumann;
    oftawq__oft_force_params(neumann, 0, tiles[i], wgs[i]);
    oftawq__oft_force_params(exact, 0, tiles[i], wgs[i]);
    if ((d = try_job(t, &j)) >= 0) {
      timed_t++;
      if (bt < 0 || d < bt) bt = d, best_tile = tiles[i];
    }
    j.oft = exact;
    if (may_try(t) && (d = try_job(t, &j)) >= 0) {
      timed_w++;
      if (bw < 0 || d < bw) bw = d, best_wg = wgs[i];
    }
  }
  oftawq__oft_force_params(neumann, 0, 0, 0);
  oftawq_oft_destroy(exact);
  if (timed_t < 2 || timed_w < 2) return OFTAWQ_OK; /* not compared: no entry */
  t->r.classes_tuned++;
  return oftawq__tuning_store_cayley(t->ctx, s->block_size, best_tile, best_wg);
}

/* ------------------------------------------------------------------ public */

void oftawq_tune_options_init(oftawq_tune_options *o)
{
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->budget_s = DEFAULT_BUDGET_S;
  o->runs = DEFAULT_RUNS;
}

void oftawq_tune_report_init(oftawq_tune_report *r)
{
  if (!r) return;
  memset(r, 0, sizeof *r);
  r->size = sizeof *r;
}

oftawq_status oftawq__tune_units(oftawq_context *ctx, int K, int N, int G, int block_size,
                                 const oftawq_tune_options *options, unsigned units_wanted, oftawq_tune_report *report)
{
  tuner t;
  oftawq_status status = OFTAWQ_OK;
  int bucket, units = 2 * OFTAWQ__M_BUCKETS + 2, unit = 0;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (report && report->size < sizeof *report) /* refused before the work whose report it could not hold */
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "uninitialised tune report");
  if (!ctx->tuning) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "no tuning database (out of memory)");
  memset(&t, 0, sizeof t);
  t.ctx = ctx;
  oftawq_tune_options_init(&t.o);
  if (options) {
    if (options->size < sizeof *options) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "uninitialised tune options");
    t.o = *options;
  }
  if (!(t.o.budget_s > 0) || t.o.runs < 1 || t.o.max_candidates < 0)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "tuning budget %g s and runs %d must be positive, max_candidates %d not negative", t.o.budget_s,
                        t.o.runs, t.o.max_candidates);
  if (G == -1) G = K;
  /* the shape must be one the device can hold, before anything is allocated */
  if ((status = oftawq__synthetic_check_shape(ctx, K, N, oftawq__bucket_rows(OFTAWQ__M_BUCKETS - 1), G, block_size)) < 0)
    return status;
  oftawq_tune_report_init(&t.r);
  t.start = t.looked = oftawq__now();
  t.deadline = t.start + t.o.budget_s;
  if (t.o.progress) t.o.progress(t.o.user, 0.0, "layout");
  if (units_wanted & OFTAWQ__TUNE_LAYOUT) status = tune_layout(&t, K, N, G, block_size, t.start + t.o.budget_s / units);
  unit++;
  for (bucket = 0; bucket < OFTAWQ__M_BUCKETS && status == OFTAWQ_OK && time_left(&t); bucket++) {
    oftawq__synthetic s;
    double share;
    char what[96];
    int rows = oftawq__bucket_rows(bucket);
    if (!(units_wanted & OFTAWQ__TUNE_BUCKET(bucket))) {
      unit += bucket == 0 ? 3 : 2;
      continue;
    }
    if ((status = oftawq__synthetic_create(ctx, K, N, rows, G, block_size, 7 + (uint64_t)bucket, &s)) < 0) break;
    if (bucket == 0 && time_left(&t)) { /* R does not depend on M: once, first (cheap) */
      if (t.o.progress) t.o.progress(t.o.user, (oftawq__now() - t.start) / t.o.budget_s, "R build");
      status = tune_cayley(&t, &s);
      unit++;
    }
    snprintf(what, sizeof what, "awq %dx%d M=%d", K, N, rows);
    if (t.o.progress) t.o.progress(t.o.user, (oftawq__now() - t.start) / t.o.budget_s, what);
    share = (t.deadline - oftawq__now()) / (units - unit);
    if (status == OFTAWQ_OK) status = tune_awq(&t, &s, oftawq__now() + share);
    unit++;
    snprintf(what, sizeof what, "rotate b=%d M=%d", block_size, rows);
    if (t.o.progress) t.o.progress(t.o.user, (oftawq__now() - t.start) / t.o.budget_s, what);
    share = (t.deadline - oftawq__now()) / (units - unit);
    if (status == OFTAWQ_OK) status = tune_rotate(&t, &s, oftawq__now() + share);
    unit++;
    oftawq__synthetic_free(&s);
  }
  time_left(&t); /* the last step's length */
  t.r.elapsed_s = oftawq__now() - t.start;
  if (t.o.progress) t.o.progress(t.o.user, 1.0, "done");
  if (status == OFTAWQ_OK) status = oftawq__tuning_save(ctx);
  if (report && report->size >= sizeof *report) *report = t.r;
  return status;
}

oftawq_status oftawq_tune_shape(oftawq_context *ctx, int K, int N, int G, int block_size,
                                const oftawq_tune_options *options, oftawq_tune_report *report)
{
  return oftawq__tune_units(ctx, K, N, G, block_size, options, OFTAWQ__TUNE_ALL, report);
}

oftawq_status oftawq_tune_layer(oftawq_layer *layer, const oftawq_tune_options *options, oftawq_tune_report *report)
{
  oftawq_awq *base = oftawq_layer_base(layer);
  oftawq_oft_shape s;
  int K, N, G, b = 32;
  if (!base) return OFTAWQ_E_INVALID_ARGUMENT;
  oftawq_awq_get_shape(base, &K, &N, &G, NULL);
  oftawq_oft_shape_init(&s);
  if (oftawq_layer_adapter_count(layer) &&
      oftawq_oft_get_shape(oftawq_layer_adapter(layer, oftawq_layer_adapter_name(layer, 0)), &s) == OFTAWQ_OK)
    b = s.block_size;
  return oftawq_tune_shape(oftawq__awq_context(base), K, N, G, b, options, report);
}

void oftawq_kernel_params_init(oftawq_kernel_params *p)
{
  if (!p) return;
  memset(p, 0, sizeof *p);
  p->size = sizeof *p;
}

oftawq_status oftawq_query_params(const oftawq_context *cctx, const char *kernel, int K, int N, int G, int block_size,
                                  size_t rows, oftawq_kernel_params *p)
{
  oftawq_context *ctx = (oftawq_context *)(uintptr_t)cctx; /* the default plan may ask the device once */
  if (!ctx || !kernel || !p || p->size < sizeof *p) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!strcmp(kernel, "awq")) {
    oftawq__awq_plan plan;
    if (K < 1 || N < 8 || N % 8 || (G != -1 && (G < 1 || K % G))) return OFTAWQ_E_INVALID_ARGUMENT;
    if (G == -1) G = K;
    oftawq__awq_default_plan(ctx, K, N, G, rows, oftawq__awq_default_layout(ctx, K, N, G), &plan);
    p->tuned = oftawq__tuning_awq(ctx, K, N, G, rows, &plan);
    oftawq__awq_plan_text(&plan, p->description, sizeof p->description);
  } else if (!strcmp(kernel, "oft_cayley")) {
    int tile = oftawq__oft_default_cayley_tile(), wg = oftawq__oft_default_exact_wg();
    if (block_size < 1) return OFTAWQ_E_INVALID_ARGUMENT;
    p->tuned = oftawq__tuning_cayley(ctx, block_size, &tile, &wg);
    snprintf(p->description, sizeof p->description, "tile=%d gjwg=%d", tile, wg);
  } else if (!strcmp(kernel, "oft_rotate")) {
    int wg = oftawq__oft_default_rotate_wg();
    if (block_size < 1) return OFTAWQ_E_INVALID_ARGUMENT;
    p->tuned = oftawq__tuning_rotate(ctx, block_size, rows, &wg);
    snprintf(p->description, sizeof p->description, "wg=%d", wg);
  } else {
    return OFTAWQ_E_INVALID_ARGUMENT;
  }
  return OFTAWQ_OK;
}
