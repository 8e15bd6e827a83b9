/* check_tune.c: the autotuner and its database - round trip, corruption, wrong candidates, budget, defaults. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/awq.h"
#include "oftawq.h"
#include "testutil.h"
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

static oftawq_tune_report tune(oftawq_context *ctx, double budget, int inject)
{
  oftawq_tune_options o;
  oftawq_tune_report r;
  oftawq_tune_options_init(&o);
  o.budget_s = budget;
  o.test_inject_wrong = inject;
  oftawq_tune_report_init(&r);
  ck_assert_msg(oftawq_tune_shape(ctx, TK, TN, TG, TB, &o, &r) == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
  return r;
}

static int tuned(const oftawq_context *ctx, const char *kernel, size_t rows, char *desc)
{
  oftawq_kernel_params p;
  oftawq_kernel_params_init(&p);
  ck_assert_int_eq(oftawq_query_params(ctx, kernel, TK, TN, TG, TB, rows, &p), OFTAWQ_OK);
  if (desc) strcpy(desc, p.description);
  return p.tuned;
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
  r = tune(a, 15, 0);
  ck_assert_uint_gt(r.classes_tuned, 0);
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
  ck_assert_int_ge(classes, 1);
  if (has_entry(b, classes_of[0].prefix)) { /* a layer of that shape class runs on the tuned plan, and correctly */
    oftawq_awq_tensors t;
    int32_t *qw = calloc((size_t)TK * TN / 8, 4), *qz = calloc((size_t)TK / TG * TN / 8, 4);
    uint16_t *sc = calloc((size_t)TK / TG * TN, 2);
    float x[TK], y[TN];
    oftawq_awq *awq = NULL;
    oftawq__awq_plan p;
    oftawq_awq_tensors_init(&t);
    t.K = TK;
    t.N = TN;
    t.G = TG;
    t.qweight = qw;
    t.qzeros = qz;
    t.scales = sc;
    ck_assert_int_eq(oftawq_awq_create(b, &t, &awq), OFTAWQ_OK);
    oftawq__awq_plan_for(awq, 1, &p);
    ck_assert_int_eq(p.tuned, 1);
    memset(x, 0, sizeof x);
    ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, 1), OFTAWQ_OK);
    ck_assert(y[0] == 0.0f);
    oftawq_awq_destroy(awq);
    free(qw);
    free(qz);
    free(sc);
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
  tune(a, 10, 0);
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
  tune(b, 10, 0);                                 /* rebuilt */
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
  oftawq_tune_report r = tune(ctx, 8, 1);
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

START_TEST(budget_is_respected)
{
  oftawq_context *ctx = context_in(NULL, NULL);
  oftawq_tune_options o;
  oftawq_tune_report r;
  const double budget = 4.0;
  oftawq_tune_options_init(&o);
  o.budget_s = budget;
  oftawq_tune_report_init(&r);
  /* a shape with far more work than the budget allows */
  ck_assert_int_eq(oftawq_tune_shape(ctx, 2048, 2048, 128, 32, &o, &r), OFTAWQ_OK);
  ck_assert_msg(r.elapsed_s <= 1.2 * budget, "tuning took %.2f s for a %.1f s budget", r.elapsed_s, budget);
  ck_assert_msg(r.elapsed_s >= 0.5 * budget, "tuning stopped after %.2f s of %.1f s", r.elapsed_s, budget);
  oftawq_tune_options_init(&o);
  o.budget_s = 0;
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
  tune(a, 6, 0);
  snprintf(path, sizeof path, "%s/shipped.db", dir);
  ck_assert_int_eq(oftawq_tune_export(a, path), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_tune_count(b), 0);
  ck_assert_int_eq(oftawq_tune_import(b, path), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_tune_count(b), oftawq_tune_count(a));
  ck_assert_int_eq(tuned(b, "awq", 1, NULL), tuned(a, "awq", 1, NULL));
  ck_assert_int_eq(tuned(b, "oft_cayley", 1, NULL), tuned(a, "oft_cayley", 1, NULL));
  /* a valid file for another device */
  snprintf(foreign, sizeof foreign, "%s/foreign.db", dir);
  n = snprintf(text, sizeof text, "oftawq-tune 1\ndevice some other GPU\nentry awq K256 N128 G64 M0\tpath=gemv split=1 cols=8 rpi=1 gcols=8 grows=1 grgroups=1\n");
  f = fopen(foreign, "w");
  fprintf(f, "%schecksum %016llx\n", text, (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, text, (size_t)n));
  fclose(f);
  ck_assert_int_eq(oftawq_tune_import(b, foreign), OFTAWQ_E_UNSUPPORTED);
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
  oftawq__awq_default_plan(&fake, 1, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  ck_assert_int_eq(p.tuned, 0);
  oftawq__awq_default_plan(&fake, 64, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMM);
  oftawq__awq_default_plan(&fake, 1024, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_DENSE);
  fake.info.is_gpu = 0;
  fake.info.is_cpu = 1;
  oftawq__awq_default_plan(&fake, 1, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  oftawq__awq_default_plan(&fake, 1024, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_DENSE);
  /* the measured PoCL row comes first in the chain */
  strcpy(fake.info.platform_name, "Portable Computing Language");
  oftawq__awq_default_plan(&fake, 1, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMV);
  oftawq__awq_default_plan(&fake, 16, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMM);
  ck_assert_int_eq(p.grows, 2);
  ck_assert_int_eq(p.grgroups, 1);
  oftawq__awq_default_plan(&fake, 100000, &p);
  ck_assert_int_eq(p.path, OFTAWQ_AWQ_GEMM);
  ck_assert_int_eq(oftawq__m_bucket(1), 0);
  ck_assert_int_eq(oftawq__m_bucket(2), 1);
  ck_assert_int_eq(oftawq__m_bucket(8), 1);
  ck_assert_int_eq(oftawq__m_bucket(9), 2);
  ck_assert_int_eq(oftawq__m_bucket(256), 3);
  ck_assert_int_eq(oftawq__m_bucket(257), 4);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("tune");
  TCase *cpu = tcase_create("defaults"), *dev = tcase_create("search");
  tcase_add_test(cpu, defaults_for_cpu_and_gpu);
  tcase_set_timeout(dev, 300);
  tcase_add_test(dev, database_round_trip_and_next_context_uses_it);
  tcase_add_test(dev, corrupt_database_is_ignored_and_rebuilt);
  tcase_add_test(dev, wrong_candidate_never_wins);
  tcase_add_test(dev, budget_is_respected);
  tcase_add_test(dev, export_and_import);
  suite_add_tcase(s, cpu);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
