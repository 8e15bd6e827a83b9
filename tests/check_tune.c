/* check_tune.c: the autotuner and its database - round trip, corruption, hostile and huge databases, wrong
 * candidates, every candidate plan, budget, defaults, the dense path's bounded scratch. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ref.h"
#include "engines/awq.h"
#include "engines/awq_repack.h"
#include "engines/layer.h"
#include "engines/oft.h"
#include "oftawq.h"
#include "runtime/program.h"
#include "testutil.h"
#include "tools/synthetic.h"
#include "tools/tune.h"

/* A small shape the search covers quickly on PoCL. */
#define TK 256
#define TN 128
#define TG 64
#define TB 32

static oftawq_context *context_in(const char *dir, tu_log *log)
{
  oftawq_context_options o;
  oftawq_context *ctx = NULL;
  oftawq_context_options_init(&o);
  o.cache_dir = dir;
  if (log) {
    o.log = tu_log_fn;
    o.log_user = log;
  }
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  return ctx;
}

/* A search of a known size, whatever the machine's speed: a budget that does not run out, at most four
 * candidates per unit (two of each kind to compare; the injected wrong one is offered second), one timed run
 * each; `units`: all of them (oftawq_tune_shape) or some (the layout and the 1-row bucket: every kind of entry,
 * for the database's own tests). */
static oftawq_tune_report tune_units(oftawq_context *ctx, int inject, unsigned units)
{
  oftawq_tune_options o;
  oftawq_tune_report r;
  oftawq_tune_options_init(&o);
  o.budget_s = 1e6;
  o.max_candidates = 4;
  o.runs = 1;
  o.test_inject_wrong = inject;
  oftawq_tune_report_init(&r);
  ck_assert_msg((units == OFTAWQ__TUNE_ALL ? oftawq_tune_shape(ctx, TK, TN, TG, TB, &o, &r)
                                           : oftawq__tune_units(ctx, TK, TN, TG, TB, &o, units, &r)) == OFTAWQ_OK,
                "%s", oftawq_context_last_error(ctx));
  return r;
}

static oftawq_tune_report tune(oftawq_context *ctx, int inject)
{
  return tune_units(ctx, inject, OFTAWQ__TUNE_LAYOUT | OFTAWQ__TUNE_BUCKET(0));
}

static int tuned(const oftawq_context *ctx, const char *kernel, size_t rows, char *desc)
{
  oftawq_kernel_params p;
  oftawq_kernel_params_init(&p);
  ck_assert_int_eq(oftawq_query_params(ctx, kernel, TK, TN, TG, TB, rows, &p), OFTAWQ_OK);
  if (desc) strcpy(desc, p.description);
  return p.tuned;
}

/* A K x N layer of zero weights (group G) on ctx; the host tensors go once uploaded. */
static oftawq_awq *zero_layer(oftawq_context *ctx, int K, int N, int G)
{
  int32_t *qw = calloc((size_t)K * N / 8, 4), *qz = calloc((size_t)K / G * N / 8, 4);
  uint16_t *sc = calloc((size_t)K / G * N, 2);
  oftawq_awq_tensors t;
  oftawq_awq *awq = NULL;
  oftawq_awq_tensors_init(&t);
  t.K = K;
  t.N = N;
  t.G = G;
  t.qweight = qw;
  t.qzeros = qz;
  t.scales = sc;
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_OK);
  free(qw);
  free(qz);
  free(sc);
  return awq;
}

/* Whether the context's database has an entry whose key starts with `prefix`. */
static int has_entry(const oftawq_context *ctx, const char *prefix)
{
  size_t i;
  char e[512];
  for (i = 0; i < oftawq_tune_count(ctx); i++) {
    oftawq_tune_entry(ctx, i, e, sizeof e);
    if (!strncmp(e, prefix, strlen(prefix))) return 1;
  }
  return 0;
}

START_TEST(database_round_trip_and_next_context_uses_it)
{
  char *dir = tu_tempdir("tune");
  oftawq_context *a = context_in(dir, NULL), *b;
  oftawq_tune_report r;
  char da[192], db[192];
  size_t i;
  int classes = 0;
  static const struct {
    const char *prefix, *kernel;
  } classes_of[] = {{"awq K256 N128 G64 M0:", "awq"}, {"rotate b32 M0:", "oft_rotate"}, {"cayley b32:", "oft_cayley"}};
  ck_assert_int_eq(tuned(a, "awq", 1, NULL), 0);
  ck_assert_int_eq(tuned(a, "oft_cayley", 1, NULL), 0);
  r = tune_units(a, 0, OFTAWQ__TUNE_ALL);
  ck_assert_uint_gt(r.classes_tuned, 0);
  ck_assert_uint_le(r.candidates_timed + r.candidates_rejected, (2 * OFTAWQ__M_BUCKETS + 2) * 4); /* the limit held in each unit */
  ck_assert_uint_eq(oftawq_tune_count(a), r.classes_tuned);
  b = context_in(dir, NULL);
  ck_assert_uint_eq(oftawq_tune_count(b), oftawq_tune_count(a));
  for (i = 0; i < oftawq_tune_count(a); i++) {
    char ea[512], eb[512];
    oftawq_tune_entry(a, i, ea, sizeof ea);
    oftawq_tune_entry(b, i, eb, sizeof eb);
    ck_assert_str_eq(ea, eb);
  }
  /* what was tuned (the budget decides how much) is what the next context reports and uses */
  for (i = 0; i < 3; i++) {
    int in_db = has_entry(a, classes_of[i].prefix);
    ck_assert_int_eq(tuned(b, classes_of[i].kernel, 1, db), in_db);
    ck_assert_int_eq(tuned(a, classes_of[i].kernel, 1, da), in_db);
    ck_assert_str_eq(da, db);
    classes += in_db;
  }
  ck_assert_int_eq(classes, 3); /* with no time limit every kind of entry is there */
  for (i = 0; i < oftawq_tune_count(a); i++) { /* each AWQ plan says why its rotation is or is not fused, and how
                                                  * it was chosen */
    char e[512];
    oftawq_tune_entry(a, i, e, sizeof e);
    if (!strncmp(e, "awq K", 5)) {
      ck_assert_msg(strstr(e, "rotation fused: ") || strstr(e, "rotation kept separate: "), "no fusion note: %s", e);
      /* no time limit: the fastest candidates were timed again before one was chosen */
      ck_assert_msg(strstr(e, "timed 2 more rounds: "), "no runoff: %s", e);
    }
  }
  if (has_entry(b, classes_of[0].prefix)) { /* a layer of that shape class runs on the tuned plan, and correctly */
    float x[TK], y[TN];
    oftawq_awq *awq = zero_layer(b, TK, TN, TG);
    oftawq__awq_plan p;
    oftawq__awq_plan_for(awq, 1, &p);
    ck_assert_int_eq(p.tuned, 1);
    memset(x, 0, sizeof x);
    ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, 1), OFTAWQ_OK);
    ck_assert(y[0] == 0.0f);
    oftawq_awq_destroy(awq);
  }
  oftawq_context_destroy(a);
  oftawq_context_destroy(b);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(corrupt_database_is_ignored_and_rebuilt)
{
  char *dir = tu_tempdir("tunebad"), cmd[4300];
  oftawq_context *a = context_in(dir, NULL), *b;
  oftawq_context_stats s;
  tu_log log;
  FILE *p;
  char path[4300];
  size_t len = 0;
  char *data;
  tune(a, 0);
  oftawq_context_destroy(a);
  snprintf(cmd, sizeof cmd, "ls %s/tune-*.db", dir);
  p = popen(cmd, "r");
  ck_assert_ptr_nonnull(fgets(path, sizeof path, p));
  pclose(p);
  path[strcspn(path, "\n")] = '\0';
  data = tu_read_file(path, &len);
  data[len / 2] ^= 0x21;
  p = fopen(path, "wb");
  fwrite(data, 1, len, p);
  fclose(p);
  free(data);
  memset(&log, 0, sizeof log);
  b = context_in(dir, &log);
  ck_assert_uint_eq(oftawq_tune_count(b), 0);
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_ptr_nonnull(strstr(log.last, "tuning database"));
  oftawq_context_stats_init(&s);
  oftawq_context_get_stats(b, &s);
  ck_assert_uint_eq(s.tuning_rejected, 1);
  ck_assert_int_eq(tuned(b, "awq", 1, NULL), 0); /* defaults meanwhile */
  ck_assert_int_eq(tuned(b, "oft_cayley", 1, NULL), 0);
  tune(b, 0);                                     /* rebuilt */
  oftawq_context_destroy(b);
  b = context_in(dir, NULL);
  ck_assert_uint_gt(oftawq_tune_count(b), 0);
  oftawq_context_destroy(b);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(wrong_candidate_never_wins)
{
  oftawq_context *ctx = context_in(NULL, NULL);
  oftawq_tune_report r = tune(ctx, 1);
  size_t i;
  ck_assert_uint_ge(r.candidates_rejected, 1);
  ck_assert_uint_gt(oftawq_tune_count(ctx), 0);
  for (i = 0; i < oftawq_tune_count(ctx); i++) {
    char e[512];
    oftawq_tune_entry(ctx, i, e, sizeof e);
    ck_assert_msg(strstr(e, "WRONG") == NULL, "a wrong candidate won: %s", e);
  }
  oftawq_context_destroy(ctx);
}
END_TEST

/* The budget holds up to the step in flight, measured by the tuner itself: no bound here depends on the
 * machine's speed (CI runs this on 2 loaded cores under ASan). */
START_TEST(budget_is_respected)
{
  oftawq_context *ctx = context_in(NULL, NULL);
  oftawq_tune_options o;
  oftawq_tune_report r;
  const double budget = 3.0;
  size_t before;
  oftawq_tune_options_init(&o);
  o.budget_s = budget;
  oftawq_tune_report_init(&r);
  /* a shape with far more work than the budget allows */
  ck_assert_int_eq(oftawq_tune_shape(ctx, 2048, 2048, 128, 32, &o, &r), OFTAWQ_OK);
  ck_assert_uint_gt(r.candidates_timed, 0);
  ck_assert(r.longest_step_s > 0 && r.longest_step_s <= r.elapsed_s);
  /* nothing starts once the budget is spent: the overrun is at most the step in flight (the stretches
   * between the tuner's looks at the clock are what it reports; a quarter more for its bookkeeping) */
  ck_assert_msg(r.elapsed_s <= budget + 1.25 * r.longest_step_s, "tuning took %.2f s for a %.1f s budget (longest step %.2f s)",
                r.elapsed_s, budget, r.longest_step_s);
  /* and it does not stop early: it stops when the latest candidate's cost no longer fits */
  ck_assert_msg(r.elapsed_s >= 0.5 * budget, "tuning stopped after %.2f s of %.1f s", r.elapsed_s, budget);
  /* a budget spent before the first candidate: nothing is tried, nothing stored */
  before = oftawq_tune_count(ctx);
  o.budget_s = 1e-9;
  oftawq_tune_report_init(&r);
  ck_assert_int_eq(oftawq_tune_shape(ctx, TK, TN, TG, TB, &o, &r), OFTAWQ_OK);
  ck_assert_uint_eq(r.candidates_timed + r.candidates_rejected, 0);
  ck_assert_uint_eq(r.classes_tuned, 0);
  ck_assert_uint_eq(oftawq_tune_count(ctx), before);
  oftawq_tune_options_init(&o);
  o.budget_s = 0;
  ck_assert_int_eq(oftawq_tune_shape(ctx, 2048, 2048, 128, 32, &o, &r), OFTAWQ_E_INVALID_ARGUMENT);
  o.budget_s = 1;
  o.max_candidates = -1;
  ck_assert_int_eq(oftawq_tune_shape(ctx, 2048, 2048, 128, 32, &o, &r), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(export_and_import)
{
  char *dir = tu_tempdir("tuneio"), path[4300], foreign[4300];
  oftawq_context *a = context_in(NULL, NULL), *b = context_in(NULL, NULL);
  FILE *f;
  char text[256];
  int n;
  tune(a, 0);
  snprintf(path, sizeof path, "%s/shipped.db", dir);
  ck_assert_int_eq(oftawq_tune_export(a, path), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_tune_count(b), 0);
  ck_assert_int_eq(oftawq_tune_import(b, path), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_tune_count(b), oftawq_tune_count(a));
  ck_assert_int_eq(tuned(b, "awq", 1, NULL), tuned(a, "awq", 1, NULL));
  ck_assert_int_eq(tuned(b, "oft_cayley", 1, NULL), tuned(a, "oft_cayley", 1, NULL));
  /* a valid file for another device */
  snprintf(foreign, sizeof foreign, "%s/foreign.db", dir);
  n = snprintf(text, sizeof text, "oftawq-tune 5\ndevice some other GPU\nentry awq K256 N128 G64 M0\tpath=gemv split=1 cols=8 rpi=1 gcols=8 grows=1 grgroups=1\n");
  f = fopen(foreign, "w");
  fprintf(f, "%schecksum %016llx\n", text, (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, text, (size_t)n));
  fclose(f);
  ck_assert_int_eq(oftawq_tune_import(b, foreign), OFTAWQ_E_UNSUPPORTED);
  /* a database of an older format (its plans lack today's parameters) */
  text[12] = '4';
  f = fopen(foreign, "w");
  fprintf(f, "%schecksum %016llx\n", text, (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, text, (size_t)n));
  fclose(f);
  ck_assert_int_eq(oftawq_tune_import(b, foreign), OFTAWQ_E_FORMAT);
  /* a damaged one */
  f = fopen(foreign, "w");
  fprintf(f, "%schecksum 0000000000000000\n", text);
  fclose(f);
  ck_assert_int_eq(oftawq_tune_import(b, foreign), OFTAWQ_E_FORMAT);
  ck_assert_int_eq(oftawq_tune_import(b, "/nonexistent/x.db"), OFTAWQ_E_FORMAT);
  oftawq_context_destroy(a);
  oftawq_context_destroy(b);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(defaults_for_cpu_and_gpu)
{
  oftawq_context fake;
  oftawq__awq_plan p;
  memset(&fake, 0, sizeof fake);
  fake.info.is_gpu = 1;
  fake.info.compute_units = 8;
  fake.info.max_work_group_size = 256;
  oftawq__awq_default_plan(&fake, 256, 256, 64, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  ck_assert_int_eq(p.tuned, 0);
  ck_assert_int_eq(p.vec, 1); /* a GPU: one packed word per lane */
  ck_assert_int_eq(p.prefetch, 0); /* its loads are coalesced, its waves hide the latency */
  oftawq__awq_default_plan(&fake, 256, 256, 64, 1, OFTAWQ__LAYOUT_KC, &p);
  ck_assert_int_eq(p.vec, 1);
  ck_assert_int_eq(p.colvec, 0); /* the lanes are work-items */
  oftawq__awq_default_plan(&fake, 256, 256, 64, 8, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  ck_assert_int_eq(p.rpi, 8); /* one pass over the weight serves 8 rows */
  oftawq__awq_default_plan(&fake, 256, 256, 64, 64, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMM);
  oftawq__awq_default_plan(&fake, 256, 256, 64, 1024, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_DENSE);
  /* split-K from the compute units (8) and the work-group multiple (32 without a driver to ask): at
   * least 4 waves per unit, 1024 work-items - a deeper split for a narrow (GQA k/v-like) N */
  oftawq__awq_default_plan(&fake, 4096, 4096, 128, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.split * (4096 / 8), 1024);
  oftawq__awq_default_plan(&fake, 4096, 512, 128, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.split * (512 / 8), 1024);
  ck_assert_int_le(p.split * p.cols, 256);
  fake.info.compute_units = 2;
  oftawq__awq_default_plan(&fake, 4096, 512, 128, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.split * (512 / 8), 256);
  fake.info.is_gpu = 0;
  fake.info.is_cpu = 1;
  oftawq__awq_default_plan(&fake, 256, 256, 64, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  ck_assert_int_eq(p.split, 1); /* a CPU's parallelism is its work-groups */
  oftawq__awq_default_plan(&fake, 256, 256, 64, 1024, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_DENSE);
  /* the measured PoCL row comes first in the chain */
  strcpy(fake.info.platform_name, "Portable Computing Language");
  oftawq__awq_default_plan(&fake, 256, 256, 64, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  ck_assert_int_eq(p.rpi * p.vec, 8); /* 8 independent 8-wide sums per item */
  ck_assert_int_gt(p.prefetch, 0);     /* a walk down K: rows ahead are asked for */
  oftawq__awq_default_plan(&fake, 256, 256, 64, 4, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  ck_assert_int_eq(p.rpi, 4);
  ck_assert_int_eq(p.rpi * p.vec, 8);
  oftawq__awq_default_plan(&fake, 4096, 4096, 128, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_ge((4096 / 8 / p.vec) / p.cols, 2 * 2); /* two work-groups per thread */
  {                                                       /* an interleaved layer: one word per item */
    const int words_cols = p.vec * p.cols;
    oftawq__awq_default_plan(&fake, 4096, 4096, 128, 1, OFTAWQ__LAYOUT_KC, &p);
    ck_assert_int_eq(p.vec, 1);
    ck_assert_int_eq(p.colvec, 1); /* SIMD lanes: 8 k of a column */
    ck_assert_int_eq(p.cols, words_cols); /* as many work-groups as for 8-word items (were 8 times as many) */
    oftawq__awq_default_plan(&fake, 4096, 4096, 128, 8, OFTAWQ__LAYOUT_K4, &p);
    ck_assert_int_eq(p.vec, 1);
    ck_assert_int_eq(p.gvec, 1);
  }
  oftawq__awq_default_plan(&fake, 256, 256, 64, 16, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMM);
  ck_assert_int_eq(p.grows, 8);
  ck_assert_int_eq(p.grgroups, 1);
  ck_assert_int_eq(p.gvec, 1);
  ck_assert_int_eq(p.gcolvec, 0); /* one word without lanes: PoCL vectorises such items across the group */
  /* registers of 16 floats (AVX-512): twice the sums per item, the words' lanes over their columns */
  fake.float_width = 16;
  oftawq__awq_default_plan(&fake, 256, 256, 64, 8, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.rpi, 8);
  ck_assert_int_eq(p.vec, 2);
  ck_assert_int_eq(p.colvec, 1);
  oftawq__awq_default_plan(&fake, 2048, 2048, 128, 8, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq((2048 / 8 / p.vec) / p.cols, 2); /* 8 rows of x staged per group: one group per thread */
  oftawq__awq_default_plan(&fake, 2048, 2048, 128, 4, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq((2048 / 8 / p.vec) / p.cols, 2 * 2);
  oftawq__awq_default_plan(&fake, 256, 256, 64, 2, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.rpi * p.vec, 16);
  oftawq__awq_default_plan(&fake, 256, 256, 64, 1, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.vec, OFTAWQ__MAX_VEC); /* one row: as many words as an item takes */
  oftawq__awq_default_plan(&fake, 256, 256, 64, 16, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.gvec, 2);
  ck_assert_int_eq(p.gcolvec, 1);
  oftawq__awq_default_plan(&fake, 256, 136, 64, 8, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.vec, 1); /* 17 words: no two-word items */
  oftawq__awq_default_plan(&fake, 4096, 4096, 128, 8, OFTAWQ__LAYOUT_KC, &p);
  ck_assert_int_eq(p.vec, 2); /* KC with a float8 per word: the item's words are adjacent runs */
  ck_assert_int_eq(p.colvec, 1);
  ck_assert_int_eq(p.gvec, 2);
  ck_assert_int_eq(p.gcolvec, 1);
  oftawq__awq_default_plan(&fake, 4096, 4096, 128, 1, OFTAWQ__LAYOUT_KC, &p);
  ck_assert_int_eq(p.vec, 1); /* one row on KC: its lanes are 8 k of one column */
  oftawq__awq_default_plan(&fake, 4096, 4096, 128, 8, OFTAWQ__LAYOUT_K4, &p);
  ck_assert_int_eq(p.vec, 1); /* K4: one word per item, always */
  ck_assert_int_eq(p.gvec, 1);
  fake.float_width = 4; /* narrower registers (NEON): the row's 8 lanes, one word's columns */
  oftawq__awq_default_plan(&fake, 256, 256, 64, 8, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.rpi * p.vec, 8);
  fake.float_width = 0;
  oftawq__awq_default_plan(&fake, 256, 256, 64, 100000, OFTAWQ__LAYOUT_AWQ, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMM);
  { /* rows buckets: each power of two up to 8 rows on its own, and each measured at rows of its own */
    static const size_t rows[] = {1, 2, 3, 4, 5, 8, 9, 64, 65, 256, 257, 100000};
    static const int bucket[] = {0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6};
    size_t i;
    int b;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) ck_assert_int_eq(oftawq__m_bucket(rows[i]), bucket[i]);
    for (b = 0; b < OFTAWQ__M_BUCKETS; b++) ck_assert_int_eq(oftawq__m_bucket((size_t)oftawq__bucket_rows(b)), b);
    ck_assert_uint_eq(OFTAWQ__TUNE_ALL, (2u << OFTAWQ__M_BUCKETS) - 1u); /* the layout and every bucket */
  }
}
END_TEST

/* ------------------------------------------------------------------ hostile and huge databases */

/* The cache folder's database file of `ctx` holding `entries` (lines "key\tvalue\n"), with a valid
 * checksum and the device's identity: what a stale or tampered cache can hold. */
static void write_database(oftawq_context *ctx, const char *dir, const char *entries, size_t entries_len)
{
  char path[4300], *text, *body, *nl;
  const char *e, *line_end;
  size_t len = 0, n, id_len;
  FILE *f;
  uint64_t h;
  snprintf(path, sizeof path, "%s/export.db", dir);
  ck_assert_int_eq(oftawq_tune_export(ctx, path), OFTAWQ_OK); /* header: magic, identity */
  text = tu_read_file(path, &len);
  ck_assert_ptr_nonnull(text);
  remove(path);
  nl = strchr(text, '\n');
  ck_assert_ptr_nonnull(nl);
  nl = strchr(nl + 1, '\n'); /* end of the "device ..." line */
  ck_assert_ptr_nonnull(nl);
  n = (size_t)(nl + 1 - text);
  id_len = n - (size_t)(strchr(text, '\n') + 1 - text) - strlen("device ") - 1;
  h = oftawq__fnv1a(OFTAWQ__FNV_OFFSET, strchr(text, '\n') + 1 + strlen("device "), id_len);
  body = malloc(n + 2 * entries_len + 64);
  memcpy(body, text, n);
  for (e = entries; e < entries + entries_len; e = line_end + 1) { /* each line becomes "entry <key>\t<value>" */
    line_end = memchr(e, '\n', (size_t)(entries + entries_len - e));
    ck_assert_ptr_nonnull(line_end);
    n += (size_t)sprintf(body + n, "entry %.*s\n", (int)(line_end - e), e);
  }
  n += (size_t)sprintf(body + n, "checksum %016llx\n", (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, body, n));
  snprintf(path, sizeof path, "%s/tune-%016llx.db", dir, (unsigned long long)h);
  f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(body, 1, n, f), n);
  fclose(f);
  free(body);
  free(text);
}

/* A layer of the test shape with one adapter: a forward on it uses every tuned kind (R build, rotation, AWQ). */
static void forward_matches_reference(oftawq_context *ctx, int rows)
{
  oftawq__synthetic s;
  float *got = malloc((size_t)OFTAWQ__CHECKED_ROWS * TN * 4);
  oftawq__awq_plan p;
  ck_assert_int_eq(oftawq__synthetic_create(ctx, TK, TN, rows, TG, TB, 3, &s), OFTAWQ_OK);
  oftawq__awq_plan_for(oftawq_layer_base(s.layer), (size_t)rows, &p);
  ck_assert_int_eq(p.tuned, 0); /* the hostile entry is gone: the default plan */
  ck_assert_msg(oftawq_layer_forward_cl(s.layer, OFTAWQ_F32, s.dx, s.dy, (size_t)rows, 0, NULL, NULL) == OFTAWQ_OK, "%s",
                oftawq_context_last_error(ctx));
  ck_assert_int_eq(oftawq__synthetic_read_rows(&s, s.dy, TN, got), OFTAWQ_OK);
  ck_assert_msg(oftawq__synthetic_check_output(&s, "forward", oftawq_layer_adapter(s.layer, OFTAWQ__SYNTHETIC_ADAPTER), 1,
                                               1, got) == OFTAWQ_OK,
                "%s", oftawq_context_last_error(ctx));
  oftawq__synthetic_free(&s);
  free(got);
}

/* Untuned, fewer rows than the bucket's plan serves give each item more words and so fewer items: the
 * work-groups are sized again, as the device's default for those rows (2 rows at N = 4096 on PoCL ran one
 * work-group on one of two threads before). */
START_TEST(untuned_geometry_follows_the_rows)
{
  enum { K = 128, N = 4096, G = 128 };
  oftawq_context *ctx = tu_context(NULL);
  oftawq_awq *awq = zero_layer(ctx, K, N, G);
  size_t rows;
  for (rows = 1; rows <= 8; rows++) {
    oftawq__awq_plan p, d;
    oftawq__awq_plan_for(awq, rows, &p);
    oftawq__awq_default_plan(ctx, K, N, G, rows, OFTAWQ__LAYOUT_AWQ, &d);
    ck_assert_int_eq(p.tuned, 0);
    ck_assert_int_eq(p.path, d.path);
    ck_assert_int_eq(p.rpi, d.rpi);
    ck_assert_int_eq(p.vec, d.vec);
    ck_assert_msg(p.cols == d.cols && p.split == d.split, "%zu rows: cols %d split %d, the default's %d and %d", rows,
                  p.cols, p.split, d.cols, d.split);
  }
  oftawq_awq_destroy(awq);
  oftawq_context_destroy(ctx);
}
END_TEST

/* Each rows count up to 8 runs the plan its bucket's search measured, as it was measured: 2, 3-4 and 5-8 rows each
 * have one (the 2-8 rows of one bucket ran 2 rows on its 8-row plan with fewer rows per item, and the search's
 * choices at 8 rows, where the FMAs bound the loop, were not those at 2: no prefetch there made 2 rows 2.1x
 * slower on PoCL at 4096 x 4096). */
START_TEST(each_rows_bucket_runs_its_own_plan)
{
  enum { K = 128, N = 4096, G = 128 };
  static const int bucket_rows[] = {2, 4, 8}, prefetch[] = {0, 16, 64}, cols[] = {8, 16, 32};
  oftawq_context *ctx = tu_context(NULL);
  oftawq__awq_plan t[3];
  oftawq_awq *awq;
  size_t rows, i;
  for (i = 0; i < 3; i++) { /* a plan of the bucket's rows per item, each with other choices */
    oftawq__awq_default_plan(ctx, K, N, G, (size_t)bucket_rows[i], OFTAWQ__LAYOUT_AWQ, &t[i]);
    t[i].path = OFTAWQ_AWQ_GEMV;
    t[i].prefetch = prefetch[i];
    t[i].cols = cols[i];
    ck_assert_int_eq(t[i].rpi, bucket_rows[i]);
    ck_assert_int_eq(oftawq__tuning_store_awq(ctx, K, N, G, (size_t)bucket_rows[i], &t[i], "test"), OFTAWQ_OK);
  }
  awq = zero_layer(ctx, K, N, G);
  for (rows = 2; rows <= 8; rows++) {
    const oftawq__awq_plan *want = &t[rows <= 2 ? 0 : rows <= 4 ? 1 : 2];
    oftawq__awq_plan p;
    oftawq__awq_plan_for(awq, rows, &p);
    ck_assert_int_eq(p.tuned, 1);
    ck_assert_msg(p.rpi == want->rpi && p.vec == want->vec && p.cols == want->cols && p.prefetch == want->prefetch,
                  "%zu rows: rpi %d vec %d cols %d prefetch %d", rows, p.rpi, p.vec, p.cols, p.prefetch);
  }
  oftawq_awq_destroy(awq);
  oftawq_context_destroy(ctx);
}
END_TEST

/* The fewest work-groups a candidate may launch: one per compute unit, or as many as the default plan `d` launches
 * on either path, if fewer. */
static size_t least_groups(const oftawq_context *ctx, oftawq__awq_plan d, int N, int M)
{
  size_t least = ctx->info.compute_units ? ctx->info.compute_units : 1, groups;
  d.path = OFTAWQ_AWQ_GEMV;
  if ((groups = oftawq__awq_plan_groups(&d, N, (size_t)M)) < least) least = groups;
  d.path = OFTAWQ_AWQ_GEMM;
  if ((groups = oftawq__awq_plan_groups(&d, N, (size_t)M)) < least) least = groups;
  return least;
}

/* The search starts next to the default launch: for four shapes at 1, 2, 4, 8 and 16 rows, the default's prefetch
 * and width each have a candidate that differs in it alone (the default's values lie on the search's grid: a
 * default width outside it left the nearest candidates all of another width), the width unless no other leaves
 * every compute unit a work-group. And no candidate launches fewer work-groups than least_groups: on a shared
 * machine such a launch can win the search's medians while it leaves a compute unit idle (one work-group of a
 * 2048 x 2048 GEMV at 2 rows, on one of PoCL's two threads, took the same median as four and 1.6x their
 * minimum). */
START_TEST(search_starts_next_to_the_default)
{
  static const int shapes[][2] = {{4096, 4096}, {2048, 2048}, {4096, 1024}, {256, 128}};
  static const int rows[] = {1, 2, 4, 8, 16};
  oftawq_context *ctx = tu_context(NULL);
  oftawq__awq_plan cand[OFTAWQ__MAX_CANDIDATES];
  size_t si, ri;
  for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
      const int K = shapes[si][0], N = shapes[si][1], M = rows[ri];
      int n = oftawq__tune_awq_candidates(ctx, K, N, 128, M, 0, cand), i, alone_prefetch = 0, alone_cols = 0;
      oftawq__awq_plan d = cand[0]; /* the default, first */
      const size_t least = least_groups(ctx, d, N, M);
      ck_assert_int_ge(n, 2);
      for (i = 0; i < n; i++)
        ck_assert_msg(cand[i].path == OFTAWQ_AWQ_DENSE || oftawq__awq_plan_groups(&cand[i], N, (size_t)M) >= least,
                      "%dx%d, %d rows: candidate %d launches %zu work-groups, the least allowed %zu", K, N, M, i,
                      oftawq__awq_plan_groups(&cand[i], N, (size_t)M), least);
      for (i = 1; i < n; i++) {
        oftawq__awq_plan c = cand[i];
        if (c.path != d.path) continue;
        if (d.path == OFTAWQ_AWQ_GEMV) {
          c.prefetch = d.prefetch;
          alone_prefetch += !memcmp(&c, &d, sizeof c) && cand[i].prefetch != d.prefetch;
          c = cand[i];
          c.cols = d.cols;
          alone_cols += !memcmp(&c, &d, sizeof c) && cand[i].cols != d.cols;
        } else {
          c.gprefetch = d.gprefetch;
          alone_prefetch += !memcmp(&c, &d, sizeof c) && cand[i].gprefetch != d.gprefetch;
          c = cand[i];
          c.gcols = d.gcols;
          alone_cols += !memcmp(&c, &d, sizeof c) && cand[i].gcols != d.gcols;
        }
      }
      if (!alone_cols) { /* none narrower than one item, and a wider one would leave a compute unit idle */
        oftawq__awq_plan wide = d;
        int *width = d.path == OFTAWQ_AWQ_GEMV ? &wide.cols : &wide.gcols;
        ck_assert_int_eq(*width, 1);
        *width = 2;
        ck_assert_uint_lt(oftawq__awq_plan_groups(&wide, N, (size_t)M), least);
      }
      ck_assert_msg(alone_prefetch > 0, "%dx%d, %d rows: %d candidates differ in the prefetch alone", K, N, M,
                    alone_prefetch);
    }
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(hostile_entries_are_dropped)
{
  /* well-formed entries with values no device runs (issue 14, item 3), each alone in the database */
  static const char *const hostile[] = {
    "awq K256 N128 G64 M0\tpath=gemv split=8 cols=16 rpi=100000 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M0\tpath=gemv split=1e6 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M0\tpath=gemv split=1000000 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M1\tpath=gemm split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=1e5 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M1\tpath=gemm split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=100000 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M1\tpath=gemm split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=4096 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M0\tpath=gemv split=8 cols=16 rpi=1 vec=3 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M0\tpath=gemv split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=7\n",
    "awq K256 N128 G64 M0\tpath=gemv split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0 bogus=1\n",
    "awq K256 N128 G64 M0\tpath=gemv split=8 cols=16 rpi=1 vec=1 colvec=2 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M1\tpath=gemm split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=9 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M0\tpath=gemv split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=257 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "awq K256 N128 G64 M1\tpath=gemm split=8 cols=16 rpi=1 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=100000 fuse=0\n",
    "awq K256 N128 G64 M0\tpath=gemv split=8 cols=16 rpi=1 vec=1 colvec=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 fuse=0\n",
    "awq-layout K256 N128 G64\tlayout=3\n",
    "awq K256 N128 G64 M1\tpath=gemv split=1 cols=16 rpi=8 vec=1 colvec=0 prefetch=0 gcols=16 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n",
    "rotate b32 M0\twg=1e6\n",
    "rotate b32 M0\twg=1000000\n",
    "cayley b32\ttile=1e5 gjwg=64\n",
    "cayley b32\ttile=100000 gjwg=64\n",
    "cayley b32\ttile=8 gjwg=100\n",
  };
  size_t i;
  for (i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
    char *dir = tu_tempdir("tunehostile");
    oftawq_context *a = context_in(dir, NULL), *b;
    tu_log log;
    int rows = strstr(hostile[i], " M1\t") ? 2 : 1;
    write_database(a, dir, hostile[i], strlen(hostile[i]));
    oftawq_context_destroy(a);
    memset(&log, 0, sizeof log);
    b = context_in(dir, &log);
    ck_assert_msg(log.warnings == 1, "entry %zu: %d warnings", i, log.warnings);
    ck_assert_msg(strstr(log.last, "invalid") != NULL, "entry %zu: %s", i, log.last);
    ck_assert_uint_eq(oftawq_tune_count(b), 0);
    ck_assert_int_eq(tuned(b, "awq", (size_t)rows, NULL), 0);
    ck_assert_int_eq(tuned(b, "oft_rotate", 1, NULL), 0);
    ck_assert_int_eq(tuned(b, "oft_cayley", 1, NULL), 0);
    forward_matches_reference(b, rows);
    oftawq_context_destroy(b);
    tu_rmdir(dir);
    free(dir);
  }
}
END_TEST

START_TEST(valid_entries_beside_a_hostile_one_are_kept)
{
  static const char entries[] =
    "awq K256 N128 G64 M0\tpath=gemv split=2 cols=8 rpi=1 vec=1 colvec=0 prefetch=0 gcols=8 grows=2 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0 ; a note\n"
    "awq K256 N128 G64 M1\tpath=gemm split=1 cols=8 rpi=1 vec=1 colvec=0 prefetch=0 gcols=8 grows=100000 grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n"
    "rotate b32 M0\twg=32\n";
  char *dir = tu_tempdir("tunemixed"), desc[192];
  oftawq_context *a = context_in(dir, NULL), *b;
  tu_log log;
  write_database(a, dir, entries, sizeof entries - 1);
  oftawq_context_destroy(a);
  memset(&log, 0, sizeof log);
  b = context_in(dir, &log);
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_uint_eq(oftawq_tune_count(b), 2);
  ck_assert_int_eq(tuned(b, "awq", 1, desc), 1);
  ck_assert_ptr_nonnull(strstr(desc, "split=2 cols=8"));
  ck_assert_int_eq(tuned(b, "awq", 4, NULL), 0);
  ck_assert_int_eq(tuned(b, "oft_rotate", 1, desc), 1);
  ck_assert_str_eq(desc, "wg=32");
  forward_matches_reference(b, 4);
  oftawq_context_destroy(b);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

/* 200000 entries (issue 14, item 4): parsing is linear and a lookup is indexed; bounded by counting the
 * database's key comparisons, not by time. */
START_TEST(large_database_is_linear)
{
  enum { ENTRIES = 200000 };
  char *dir = tu_tempdir("tunelarge"), *lines = malloc((size_t)ENTRIES * 160);
  oftawq_context *a = context_in(dir, NULL), *b;
  size_t n = 0, i;
  uint64_t after_load, after_lookups;
  oftawq__awq_plan p;
  for (i = 0; i < ENTRIES; i++) /* distinct keys: the group sizes of one shape class */
    n += (size_t)sprintf(lines + n, "awq K1024 N1024 G%zu M0\tpath=gemv split=1 cols=8 rpi=1 vec=1 colvec=0 prefetch=0 gcols=8 grows=1 "
                                    "grgroups=1 gvec=1 gcolvec=0 gprefetch=0 fuse=0\n", i + 1000);
  write_database(a, dir, lines, n);
  oftawq_context_destroy(a);
  b = context_in(dir, NULL);
  ck_assert_uint_eq(oftawq_tune_count(b), ENTRIES);
  after_load = oftawq__tuning_probes(b);
  ck_assert_msg(after_load <= 8 * (uint64_t)ENTRIES, "loading %d entries took %llu key comparisons", ENTRIES,
                (unsigned long long)after_load);
  for (i = 0; i < 1000; i++) { /* a forward's lookup, a thousand times */
    oftawq__awq_default_plan(b, 1024, 1024, 1000 + (int)(i * 37 % ENTRIES), 1, OFTAWQ__LAYOUT_AWQ, &p);
    ck_assert_int_eq(oftawq__tuning_awq(b, 1024, 1024, 1000 + (int)(i * 37 % ENTRIES), 1, &p), 1);
  }
  oftawq__tuning_awq(b, 1024, 1024, 7, 1, &p); /* and one that is absent */
  after_lookups = oftawq__tuning_probes(b) - after_load;
  ck_assert_msg(after_lookups <= 1001 * 8, "1001 lookups took %llu key comparisons", (unsigned long long)after_lookups);
  forward_matches_reference(b, 1);
  oftawq_context_destroy(b);
  free(lines);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(huge_shapes_fail_before_allocating)
{
  oftawq_context *ctx = context_in(NULL, NULL);
  oftawq_tune_options o;
  oftawq_bench_options bo;
  oftawq_bench_result r[32];
  oftawq_kernel_params kp;
  size_t count = 0;
  oftawq_tune_options_init(&o);
  o.budget_s = 5;
  ck_assert_int_eq(oftawq_tune_shape(ctx, 0x7ffffff8, 0x7ffffff8, 8, 32, &o, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "bytes of packed weight"));
  oftawq_bench_options_init(&bo);
  bo.K = bo.N = 0x7ffffff8;
  bo.G = 8;
  ck_assert_int_eq(oftawq_bench_shape(ctx, &bo, r, 32, &count, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "bytes of packed weight"));
  ck_assert_uint_eq(count, 0);
  /* the query refuses what no layer has */
  oftawq_kernel_params_init(&kp);
  ck_assert_int_eq(oftawq_query_params(ctx, "oft_rotate", TK, TN, TG, -32, 1, &kp), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_query_params(ctx, "oft_cayley", TK, TN, TG, 0, 1, &kp), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_query_params(ctx, "awq", TK, 100, TG, TB, 1, &kp), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_query_params(ctx, "awq", TK, TN, 48, TB, 1, &kp), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ every candidate plan */

static int several_words(const oftawq__awq_plan *p)
{
  oftawq__awq_geometry g;
  oftawq__awq_plan_geometry(p, &g);
  return g.vec > 1;
}

/* The plans the search can pick, on every rows bucket, on every device layout (the candidates of a shape
 * class whose layers take it), with and without the fused rotation: all rows against the plain-C reference.
 * Every candidate is a compile, so by default: all of them for 1 and 8 rows on AutoAWQ's layout and KC's of
 * several words per item at 8 rows, the first few elsewhere; with OFTAWQ_TEST_ALL_CANDIDATES=1 every one
 * everywhere (tests/oclgrind.sh runs the tuner's own units under oclgrind). */
START_TEST(every_candidate_matches_the_reference)
{
  static const int rows_list[] = {1, 2, 3, 8, 20};
  oftawq_context *ctx = context_in(NULL, NULL);
  const int K = 128, N = 64, G = 32, B = 16;
  const char *env = getenv("OFTAWQ_TEST_ALL_CANDIDATES");
  const int all = env && !strcmp(env, "1");
  size_t ri;
  int tried = 0;
  for (ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
    const int M = rows_list[ri];
    oftawq__synthetic s;
    oftawq__awq_plan cand[OFTAWQ__MAX_CANDIDATES];
    float *y = malloc((size_t)M * N * 4), *want = malloc((size_t)M * N * 4), *xr = malloc((size_t)M * K * 4);
    int n, i, fused, layout;
    oftawq_oft *oft;
    oftawq_oft_shape sh;
    float *R;
    double *Rd;
    cl_mem Rbuf;
    size_t nr, k;
    ck_assert_int_eq(oftawq__synthetic_create(ctx, K, N, M, G, B, 11 + ri, &s), OFTAWQ_OK);
    oft = oftawq_layer_adapter(s.layer, OFTAWQ__SYNTHETIC_ADAPTER);
    oftawq_oft_shape_init(&sh);
    oftawq_oft_get_shape(oft, &sh);
    nr = (size_t)sh.weight_rows * B * B;
    R = malloc(nr * 4);
    Rd = malloc(nr * sizeof *Rd);
    ck_assert_int_eq(oftawq_oft_get_rotation(oft, R, nr), OFTAWQ_OK);
    for (k = 0; k < nr; k++) Rd[k] = R[k];
    /* the fused variants read R from a buffer written by the host: these checks do not lean on the R build */
    ck_assert_ptr_nonnull(Rbuf = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nr * 4, R, NULL));
    for (layout = 0; layout < OFTAWQ__AWQ_LAYOUTS; layout++) {
      oftawq_awq_tensors t;
      oftawq_awq *base = NULL;
      int multiword_kc = 0;
      ck_assert_int_eq(oftawq__tuning_store_awq_layout(ctx, K, N, G, layout, "test"), OFTAWQ_OK);
      ck_assert_int_eq(oftawq__awq_default_layout(ctx, K, N, G), layout); /* new layers take it (KC did not) */
      n = oftawq__tune_awq_candidates(ctx, K, N, G, M, 0, cand);
      ck_assert_int_ge(n, 2);
      if (M <= OFTAWQ__MAX_ROWS_PER_ITEM) { /* the GEMV's prefetch distance is searched: with and without */
        int with = 0, without = 0;
        for (i = 0; i < n; i++)
          if (cand[i].path == OFTAWQ_AWQ_GEMV && cand[i].prefetch) with++;
          else if (cand[i].path == OFTAWQ_AWQ_GEMV) without++;
        ck_assert_msg(with && without, "M=%d: %d GEMV candidates prefetch, %d do not", M, with, without);
      }
      for (i = 0; i < n && layout; i++) { /* K4, and KC with lanes over words, run one word per item: no other
                                           * is offered; KC with a float8 per word is offered several */
        oftawq__awq_geometry g;
        oftawq__awq_plan_geometry(&cand[i], &g);
        ck_assert_msg(g.vec == 1 || (layout == OFTAWQ__LAYOUT_KC && g.colvec),
                      "M=%d layout %d: a candidate of %d words per item", M, layout, g.vec);
        multiword_kc += g.vec > 1;
      }
      if (layout == OFTAWQ__LAYOUT_KC) ck_assert_msg(multiword_kc > 0, "M=%d: no KC candidate of several words", M);
      oftawq__synthetic_tensors(&s, &t);
      ck_assert_int_eq(oftawq__awq_create_layout(ctx, &t, layout, &base), OFTAWQ_OK);
      for (i = 0; i < n; i++)
        for (fused = 0; fused < 2; fused++) {
          oftawq__fused_oft f;
          char what[256];
          size_t e;
          if (fused && !oftawq__awq_can_fuse(base, &cand[i], (size_t)M)) continue;
          if (!all && i >= 3 && (layout || fused || (M != 1 && M != 8)) &&
              !(layout == OFTAWQ__LAYOUT_KC && !fused && M == 8 && several_words(&cand[i])))
            continue;
          memcpy(xr, s.x, (size_t)M * K * 4);
          if (fused) oftawq__ref_rotate(xr, (size_t)M, K / B, B, Rd, 0, xr);
          oftawq__ref_awq(xr, (size_t)M, K, N, G, s.qw, s.qz, s.sc, s.bias, want);
          oftawq__awq_plan_text(&cand[i], what, sizeof what);
          f.block_size = B;
          f.share = 0;
          f.R = Rbuf;
          ck_assert_msg(oftawq__awq_enqueue_plan(base, OFTAWQ_F32, s.dx, s.dy, (size_t)M, &cand[i], fused ? &f : NULL, 0,
                                                 NULL, NULL) == OFTAWQ_OK,
                        "M=%d layout %d %s: %s", M, layout, what, oftawq_context_last_error(ctx));
          ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, s.dy, CL_TRUE, 0, (size_t)M * N * 4, y, 0, NULL, NULL),
                           CL_SUCCESS);
          for (e = 0; e < (size_t)M * N; e++) /* fp32 sums of fp16-rounded terms, rounded to fp16: an ulp or two */
            ck_assert_msg(fabsf(y[e] - want[e]) <= fabsf(want[e]) / 512.0f + 2e-3f,
                          "M=%d layout %d fused=%d %s: y[%zu] = %g, want %g", M, layout, fused, what, e, y[e], want[e]);
          tried++;
        }
      oftawq_awq_destroy(base);
    }
    clReleaseMemObject(Rbuf);
    oftawq__synthetic_free(&s);
    free(y);
    free(want);
    free(xr);
    free(R);
    free(Rd);
  }
  ck_assert_int_ge(tried, 20);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ the dense path's scratch */

#ifdef OFTAWQ_HAVE_CLBLAST
/* The dequantised weight lives in the context's scratch, tiled to the device's largest allocation (a
 * device reporting a small one is simulated by lowering the context's copy of the limit). */
START_TEST(dense_scratch_tiles_to_the_max_allocation)
{
  oftawq_context *ctx = context_in(NULL, NULL);
  const int K = 256, N = 128, G = 64, M = 16;
  oftawq__synthetic s;
  float *got = malloc((size_t)OFTAWQ__CHECKED_ROWS * N * 4);
  oftawq_awq *awq;
  const uint64_t real_limit = ctx->info.max_alloc_size;
  int i;
  ck_assert_int_eq(oftawq__synthetic_create(ctx, K, N, M, G, 32, 5, &s), OFTAWQ_OK);
  awq = oftawq_layer_base(s.layer);
  ck_assert_int_eq(oftawq_awq_set_path(awq, OFTAWQ_AWQ_DENSE), OFTAWQ_OK);
  /* a layer keeps its int4 tensors only: no dense copy of its own */
  ck_assert_uint_le(oftawq__awq_device_bytes(awq), (size_t)K * N / 2 * 2);
  ctx->info.max_alloc_size = (uint64_t)K * N * 4 / 4; /* a quarter of the fp32 weight: four tiles */
  ck_assert_int_eq(oftawq__awq_enqueue(awq, OFTAWQ_F32, s.dx, s.dy, (size_t)M, 0, NULL, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__awq_dense_tiles(awq), 4);
  ck_assert_int_eq(oftawq__synthetic_read_rows(&s, s.dy, (size_t)N, got), OFTAWQ_OK);
  ck_assert_msg(oftawq__synthetic_check_output(&s, "dense, 4 tiles", NULL, 0, 1, got) == OFTAWQ_OK, "%s",
                oftawq_context_last_error(ctx));
  ck_assert_uint_le(ctx->scratch[0].bytes, ctx->info.max_alloc_size);
  /* room for one tile: the scratch keeps it for the next call */
  ctx->info.max_alloc_size = real_limit;
  ck_assert_int_eq(oftawq__awq_enqueue(awq, OFTAWQ_F32, s.dx, s.dy, (size_t)M, 0, NULL, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__awq_dense_tiles(awq), 1);
  ck_assert_int_eq(oftawq__synthetic_read_rows(&s, s.dy, (size_t)N, got), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__synthetic_check_output(&s, "dense, 1 tile", NULL, 0, 1, got), OFTAWQ_OK);
  /* the scratch is never cleared: whatever it holds (NaN here, the weight tag reset) must not reach the output */
  for (i = 0; i < OFTAWQ__SCRATCH_SLOTS; i++) {
    const float nan = NAN;
    ck_assert_ptr_nonnull(ctx->scratch[i].buf);
    ck_assert_int_eq(clEnqueueFillBuffer(ctx->queue, ctx->scratch[i].buf, &nan, sizeof nan, 0, ctx->scratch[i].bytes, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    ctx->scratch[i].tag = 0;
  }
  ck_assert_int_eq(oftawq__awq_enqueue(awq, OFTAWQ_F32, s.dx, s.dy, (size_t)M, 0, NULL, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__synthetic_read_rows(&s, s.dy, (size_t)N, got), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__synthetic_check_output(&s, "dense, scratch full of NaN", NULL, 0, 1, got), OFTAWQ_OK);
  /* activations that fit no buffer: the fused GEMM serves */
  ctx->info.max_alloc_size = (uint64_t)M * K * 4 / 2;
  ck_assert_int_eq(oftawq__awq_enqueue(awq, OFTAWQ_F32, s.dx, s.dy, (size_t)M, 0, NULL, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__awq_dense_tiles(awq), 0);
  ck_assert_int_eq(oftawq__synthetic_read_rows(&s, s.dy, (size_t)N, got), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__synthetic_check_output(&s, "GEMM instead of dense", NULL, 0, 1, got), OFTAWQ_OK);
  ctx->info.max_alloc_size = real_limit;
  oftawq__synthetic_free(&s);
  free(got);
  oftawq_context_destroy(ctx);
}
END_TEST
#endif

int main(void)
{
  Suite *s = suite_create("tune");
  TCase *cpu = tcase_create("defaults"), *dev = tcase_create("search"), *db = tcase_create("database"),
        *cand = tcase_create("candidates");
  tcase_add_test(cpu, defaults_for_cpu_and_gpu);
  tcase_set_timeout(dev, 300);
  tcase_add_test(dev, database_round_trip_and_next_context_uses_it);
  tcase_add_test(dev, corrupt_database_is_ignored_and_rebuilt);
  tcase_add_test(dev, wrong_candidate_never_wins);
  tcase_add_test(dev, budget_is_respected);
  tcase_add_test(dev, export_and_import);
  tcase_add_test(dev, untuned_geometry_follows_the_rows);
  tcase_add_test(dev, each_rows_bucket_runs_its_own_plan);
  tcase_add_test(dev, search_starts_next_to_the_default);
  tcase_set_timeout(db, 300);
  tcase_add_test(db, hostile_entries_are_dropped);
  tcase_add_test(db, valid_entries_beside_a_hostile_one_are_kept);
  tcase_add_test(db, large_database_is_linear);
  tcase_add_test(db, huge_shapes_fail_before_allocating);
#ifdef OFTAWQ_HAVE_CLBLAST
  tcase_add_test(db, dense_scratch_tiles_to_the_max_allocation);
#endif
  tcase_set_timeout(cand, 900);
  tcase_add_test(cand, every_candidate_matches_the_reference);
  suite_add_tcase(s, cpu);
  suite_add_tcase(s, db);
  suite_add_tcase(s, cand);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
