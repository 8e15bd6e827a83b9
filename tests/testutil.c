/* testutil.c: helpers shared by the Check suites. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static const char *builddir(void)
{
  const char *d = getenv("OFTAWQ_TEST_BUILDDIR");
  return d && *d ? d : ".";
}

char *tu_srcpath(const char *relative)
{
  const char *s = getenv("OFTAWQ_TEST_SRCDIR");
  size_t n;
  char *p;
  if (!s || !*s) s = ".";
  n = strlen(s) + strlen(relative) + 2;
  p = malloc(n);
  ck_assert_ptr_nonnull(p);
  snprintf(p, n, "%s/%s", s, relative);
  return p;
}

void tu_rmdir(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4096];
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    remove(path);
  }
  closedir(d);
  rmdir(dir);
}

char *tu_tempdir(const char *name)
{
  static unsigned counter;
  char base[4096];
  char *path = malloc(8192);
  ck_assert_ptr_nonnull(path);
  snprintf(base, sizeof base, "%s/tests/tmp", builddir());
  mkdir(base, 0755);
  snprintf(path, 8192, "%s/%s-%ld-%u", base, name, (long)getpid(), counter++);
  tu_rmdir(path);
  ck_assert_msg(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
  return path;
}

oftawq_context *tu_context(const char *cache_dir)
{
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  oftawq_status st;
  oftawq_context_options_init(&opt);
  opt.cache_dir = cache_dir;
  st = oftawq_context_create(&opt, &ctx);
  ck_assert_msg(st == OFTAWQ_OK, "no test device: %s", oftawq_status_name(st));
  return ctx;
}

oftawq_context *tu_context_logged(tu_log *log)
{
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  oftawq_status st;
  memset(log, 0, sizeof *log);
  oftawq_context_options_init(&opt);
  opt.log = tu_log_fn;
  opt.log_user = log;
  st = oftawq_context_create(&opt, &ctx);
  ck_assert_msg(st == OFTAWQ_OK, "no test device: %s", oftawq_status_name(st));
  return ctx;
}

char *tu_read_file(const char *path, size_t *length)
{
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[n] = '\0';
    if (length) *length = (size_t)n;
  }
  return buf;
}

void tu_awq_fixture(const char *name, int K, int N, int G, oftawq_awq_tensors *t, char **data)
{
  char rel[256], *path;
  size_t len = 0, W = (size_t)N / 8, groups = (size_t)(K / G), off = 0;
  snprintf(rel, sizeof rel, "tests/fixtures/awq/%s.bin", name);
  path = tu_srcpath(rel);
  *data = tu_read_file(path, &len);
  ck_assert_msg(*data != NULL, "cannot read %s", path);
  free(path);
  oftawq_awq_tensors_init(t);
  t->K = K;
  t->N = N;
  t->G = G;
  t->qweight = (const int32_t *)(const void *)(*data + off);
  off += (size_t)K * W * 4;
  t->qzeros = (const int32_t *)(const void *)(*data + off);
  off += groups * W * 4;
  t->scales = (const uint16_t *)(const void *)(*data + off);
  off += groups * (size_t)N * 2;
  t->bias = (const uint16_t *)(const void *)(*data + off);
  ck_assert_uint_ge(len, off + (size_t)N * 2);
}

void tu_rng_seed(tu_rng *r, uint64_t seed) { r->s = seed ? seed : 0x9e3779b97f4a7c15ull; }

uint32_t tu_rng_u32(tu_rng *r)
{
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return (uint32_t)((r->s * 0x2545f4914f6cdd1dull) >> 32);
}

float tu_rng_uniform(tu_rng *r, float lo, float hi)
{
  return lo + (hi - lo) * (float)((tu_rng_u32(r) >> 8) * (1.0 / 16777216.0));
}

void tu_fill_random(float *v, size_t n, float scale, uint64_t seed)
{
  tu_rng r;
  size_t i;
  tu_rng_seed(&r, seed);
  for (i = 0; i < n; i++) v[i] = tu_rng_uniform(&r, -scale, scale);
}

float *tu_random_floats(size_t n, float scale, uint64_t seed)
{
  float *v = malloc((n ? n : 1) * sizeof *v);
  ck_assert_ptr_nonnull(v);
  tu_fill_random(v, n, scale, seed);
  return v;
}

void tu_log_fn(void *user, oftawq_log_level level, const char *message)
{
  tu_log *l = user;
  if (level == OFTAWQ_LOG_WARNING) l->warnings++;
  if (level == OFTAWQ_LOG_ERROR) l->errors++;
  snprintf(l->last, sizeof l->last, "%s", message);
}

int tu_run(Suite *s)
{
  SRunner *sr = srunner_create(s);
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
