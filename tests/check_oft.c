/* check_oft.c: OFT config rules, reference maths, device R and rotation against PEFT fixtures and the reference. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oftawq_cl.h"
#include "engines/oft.h"
#include "common/ref.h"
#include "testutil.h"

/* fp32 R from the device or PEFT vs each other / the double reference:
 * differences come only from fp32 rounding order, so 1e-6 of |R|_F (the bound). */
#define R_TOL 1e-6
/* y = x.R sums b fp32 products: allow a few ulps of |y|_F. */
#define Y_TOL 2e-6

typedef struct fixture {
  char name[64];
  int d, cfg_r, cfg_b, r, b, coft, share, neumann, terms, rows, w_rows, n_el;
  double eps;
  float *w, *x, *R, *y;
} fixture;

static int read_fixtures(const char *tag, fixture **out)
{
  char rel[128], line[512], *path;
  FILE *f;
  fixture *fx = NULL;
  int n = 0;
  snprintf(rel, sizeof rel, "tests/fixtures/oft/%s.tsv", tag);
  path = tu_srcpath(rel);
  f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  while (fgets(line, sizeof line, f)) {
    fixture c;
    size_t nw, nx, nr, len = 0;
    char *data, *bin;
    if (line[0] == '#') continue;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(sscanf(line, "%63s %d %d %d %d %d %d %lf %d %d %d %d %d %d", c.name, &c.d, &c.cfg_r, &c.cfg_b,
                            &c.r, &c.b, &c.coft, &c.eps, &c.share, &c.neumann, &c.terms, &c.rows, &c.w_rows, &c.n_el),
                     14);
    snprintf(rel, sizeof rel, "tests/fixtures/oft/%s.f32", c.name);
    bin = tu_srcpath(rel);
    data = tu_read_file(bin, &len);
    ck_assert_msg(data != NULL, "cannot read %s", bin);
    nw = (size_t)c.w_rows * c.n_el;
    nx = (size_t)c.rows * c.d;
    nr = (size_t)c.w_rows * c.b * c.b;
    ck_assert_uint_eq(len, (nw + nx + nr + nx) * 4);
    c.w = (float *)(void *)data;
    c.x = c.w + nw;
    c.R = c.x + nx;
    c.y = c.R + nr;
    fx = realloc(fx, (size_t)(n + 1) * sizeof *fx);
    fx[n++] = c;
    free(bin);
  }
  fclose(f);
  free(path);
  *out = fx;
  return n;
}

static void free_fixtures(fixture *fx, int n)
{
  int i;
  for (i = 0; i < n; i++) free(fx[i].w);
  free(fx);
}

static double rel_err_f(const float *a, const float *b, size_t n)
{
  double num = 0, den = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static oftawq_oft_config fixture_config(const fixture *c, const char *peft_version)
{
  oftawq_oft_config cfg;
  oftawq_oft_config_init(&cfg);
  cfg.r = c->cfg_r;
  cfg.oft_block_size = c->cfg_b;
  cfg.coft = c->coft;
  cfg.eps = c->eps;
  cfg.block_share = c->share;
  cfg.use_cayley_neumann = c->neumann;
  cfg.num_cayley_neumann_terms = c->terms;
  cfg.peft_version = peft_version;
  return cfg;
}

/* Device R and y, and the double reference, against one PEFT fixture. Returns the worst R error. */
static double check_fixture(oftawq_context *ctx, const fixture *c, const char *peft_version, int legacy)
{
  oftawq_oft_config cfg = fixture_config(c, peft_version);
  oftawq_oft *oft = NULL;
  oftawq_oft_shape shape;
  size_t nr = (size_t)c->w_rows * c->b * c->b, nx = (size_t)c->rows * c->d, bb = (size_t)c->b * c->b, i;
  float *R = malloc(nr * sizeof *R), *y = malloc(nx * sizeof *y), *w = malloc((size_t)c->w_rows * c->n_el * 4 + 4);
  double *Rd = malloc(nr * sizeof *Rd);
  float *Rref = malloc(nr * sizeof *Rref), *yref = malloc(nx * sizeof *yref);
  double e_dev, e_ref;
  int row;

  ck_assert_msg(oftawq_oft_create(ctx, &cfg, c->d, c->w, (size_t)c->w_rows * c->n_el, &oft) == OFTAWQ_OK, "%s: %s",
                c->name, oftawq_context_last_error(ctx));
  oftawq_oft_shape_init(&shape);
  oftawq_oft_get_shape(oft, &shape);
  ck_assert_int_eq(shape.r, c->r);
  ck_assert_int_eq(shape.block_size, c->b);
  ck_assert_int_eq(shape.weight_rows, c->w_rows);
  ck_assert_int_eq(shape.legacy_neumann, legacy && c->neumann);

  ck_assert_int_eq(oftawq_oft_get_rotation(oft, R, nr), OFTAWQ_OK);
  e_dev = rel_err_f(R, c->R, nr);
  ck_assert_msg(e_dev <= R_TOL, "%s: device R vs PEFT: %g", c->name, e_dev);

  /* the reference: COFT, then Cayley per block in double */
  memcpy(w, c->w, (size_t)c->w_rows * c->n_el * 4);
  if (c->coft) oftawq__ref_coft(w, c->w_rows, c->n_el, c->eps);
  for (row = 0; row < c->w_rows; row++) {
    const float *wr = w + (size_t)row * c->n_el;
    if (c->neumann)
      oftawq__ref_cayley_neumann(wr, c->b, c->terms, legacy, Rd + row * bb);
    else
      ck_assert(oftawq__ref_cayley_exact(wr, c->b, Rd + row * bb));
  }
  for (i = 0; i < nr; i++) Rref[i] = (float)Rd[i];
  e_ref = rel_err_f(Rref, c->R, nr);
  ck_assert_msg(e_ref <= R_TOL, "%s: reference R vs PEFT: %g", c->name, e_ref);

  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, c->x, y, (size_t)c->rows), OFTAWQ_OK);
  ck_assert_msg(rel_err_f(y, c->y, nx) <= Y_TOL, "%s: device y vs PEFT: %g", c->name, rel_err_f(y, c->y, nx));
  oftawq__ref_rotate(c->x, (size_t)c->rows, c->d / c->b, c->b, Rd, c->share, yref);
  ck_assert_msg(rel_err_f(yref, c->y, nx) <= Y_TOL, "%s: reference y vs PEFT", c->name);

  oftawq_oft_destroy(oft);
  free(R);
  free(y);
  free(w);
  free(Rd);
  free(Rref);
  free(yref);
  return e_dev > e_ref ? e_dev : e_ref;
}

START_TEST(peft_fixtures_current)
{
  fixture *fx;
  int n = read_fixtures("current", &fx), i;
  oftawq_context *ctx = tu_context(NULL);
  double worst[2] = {0, 0};
  ck_assert_int_ge(n, 30);
  for (i = 0; i < n; i++) {
    /* both a NULL version and a current one select the 0.18 formula */
    double e = check_fixture(ctx, &fx[i], i % 2 ? "0.18.2.dev0@UNKNOWN" : NULL, 0);
    if (e > worst[fx[i].neumann]) worst[fx[i].neumann] = e;
  }
  printf("oft fixtures (peft 0.18): %d cases, worst R error: exact %.3g, neumann %.3g\n", n, worst[0], worst[1]);
  oftawq_context_destroy(ctx);
  free_fixtures(fx, n);
}
END_TEST

START_TEST(peft_fixtures_legacy_formula)
{
  fixture *fx;
  int n = read_fixtures("legacy", &fx), i;
  oftawq_context *ctx = tu_context(NULL);
  double worst = 0;
  ck_assert_int_ge(n, 8);
  for (i = 0; i < n; i++) {
    double e = check_fixture(ctx, &fx[i], "0.17.1", 1);
    if (e > worst) worst = e;
  }
  printf("oft fixtures (peft 0.17.1, pre-0.18 Neumann): %d cases, worst R error %.3g\n", n, worst);
  oftawq_context_destroy(ctx);
  free_fixtures(fx, n);
}
END_TEST

static oftawq_oft *make(oftawq_context *ctx, int d, int b, int neumann, int terms, const float *w, size_t count)
{
  oftawq_oft_config cfg;
  oftawq_oft *oft = NULL;
  oftawq_oft_config_init(&cfg);
  cfg.oft_block_size = b;
  cfg.use_cayley_neumann = neumann;
  cfg.num_cayley_neumann_terms = terms;
  ck_assert_msg(oftawq_oft_create(ctx, &cfg, d, w, count, &oft) == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
  return oft;
}

START_TEST(defaults_match_peft)
{
  oftawq_oft_config c;
  oftawq_oft_config_init(&c);
  ck_assert_uint_eq(c.size, sizeof c);
  ck_assert_int_eq(c.r, 0);
  ck_assert_int_eq(c.oft_block_size, 32);
  ck_assert(c.module_dropout == 0.0);
  ck_assert_int_eq(c.coft, 0);
  ck_assert(c.eps == 6e-5);
  ck_assert_int_eq(c.block_share, 0);
  ck_assert_int_eq(c.fan_in_fan_out, 0);
  ck_assert_int_eq(c.init_weights, 1);
  ck_assert_int_eq(c.use_cayley_neumann, 1);
  ck_assert_int_eq(c.num_cayley_neumann_terms, 5);
  ck_assert_ptr_null(c.peft_version);
}
END_TEST

static void expect_resolve(int d, int r, int b, int want_r, int want_b, int want_warning)
{
  oftawq_oft_config c;
  oftawq_oft_shape s;
  tu_log log;
  char why[256];
  memset(&log, 0, sizeof log);
  oftawq_oft_config_init(&c);
  c.r = r;
  c.oft_block_size = b;
  oftawq_oft_shape_init(&s);
  ck_assert_int_eq(oftawq_oft_resolve(&c, d, tu_log_fn, &log, &s, why, sizeof why), OFTAWQ_OK);
  ck_assert_int_eq(s.r, want_r);
  ck_assert_int_eq(s.block_size, want_b);
  ck_assert_int_eq(s.r * s.block_size, d);
  ck_assert_int_eq(s.n_elements, want_b * (want_b - 1) / 2);
  ck_assert_int_eq(log.warnings, want_warning);
  if (want_warning) {
    char old[32], new_[32];
    snprintf(old, sizeof old, "(%d)", r ? r : b);
    snprintf(new_, sizeof new_, "(%d)", r ? want_r : want_b);
    ck_assert_ptr_nonnull(strstr(log.last, old));
    ck_assert_ptr_nonnull(strstr(log.last, new_));
  }
}

START_TEST(r_and_block_size_derivation)
{
  expect_resolve(1000, 0, 32, 40, 25, 1);
  expect_resolve(3000, 0, 32, 100, 30, 1);
  expect_resolve(37, 0, 32, 1, 37, 1);
  expect_resolve(10, 0, 32, 1, 10, 1);
  expect_resolve(4096, 7, 0, 8, 512, 1);
  expect_resolve(5, 8, 0, 5, 1, 1);
  expect_resolve(96, 0, 20, 6, 16, 1); /* tie 16 / 24 goes to the lower */
  expect_resolve(2560, 0, 100, 32, 80, 1);
  expect_resolve(4096, 0, 32, 128, 32, 0);
  expect_resolve(64, 4, 0, 4, 16, 0);
}
END_TEST

static void expect_invalid(oftawq_oft_config c, int d, const char *needle)
{
  oftawq_oft_shape s;
  char why[512];
  oftawq_oft_shape_init(&s);
  ck_assert_int_eq(oftawq_oft_resolve(&c, d, NULL, NULL, &s, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, needle) != NULL, "'%s' lacks '%s'", why, needle);
}

START_TEST(config_validation_errors)
{
  oftawq_oft_config c, base;
  oftawq_oft_config_init(&base);
  c = base;
  c.oft_block_size = 0;
  expect_invalid(c, 64, "Either r or oft_block_size must be non-zero");
  c = base;
  c.r = 8;
  expect_invalid(c, 64, "not both simultaneously");
  c = base;
  c.coft = 1;
  c.eps = NAN;
  expect_invalid(c, 64, "eps");
  c = base;
  c.coft = 1;
  c.eps = INFINITY;
  expect_invalid(c, 64, "eps");
  c = base;
  c.num_cayley_neumann_terms = OFTAWQ_MAX_NEUMANN_TERMS + 1;
  expect_invalid(c, 64, "num_cayley_neumann_terms");
  c.num_cayley_neumann_terms = 1000000000;
  expect_invalid(c, 64, "num_cayley_neumann_terms");
  c.num_cayley_neumann_terms = INT_MAX;
  expect_invalid(c, 64, "num_cayley_neumann_terms");
  c = base;
  c.oft_block_size = 1000000000; /* adjusted to in_features, as PEFT does, then bounded */
  expect_invalid(c, 8192, "exceeds the supported 4096");
  c = base;
  c.oft_block_size = 0;
  c.r = 1;
  expect_invalid(c, OFTAWQ_MAX_OFT_BLOCK + 8, "block size");
  expect_invalid(base, OFTAWQ_MAX_IN_FEATURES + 1, "in_features");
  expect_invalid(base, INT_MAX, "in_features");
  expect_invalid(base, -5, "in_features");
  c = base;
  c.peft_version = "not a version";
  expect_invalid(c, 64, "peft_version");
  c = base;
  c.oft_block_size = -4;
  expect_invalid(c, 64, "negative");
  expect_invalid(base, 0, "in_features");
}
END_TEST

/* What PEFT accepts without validating, resolved without an error (warnings where it says so). */
START_TEST(config_accepted_as_peft)
{
  oftawq_oft_config c, base;
  oftawq_oft_shape s;
  tu_log log;
  oftawq_oft_config_init(&base);
  oftawq_oft_shape_init(&s);
  c = base;
  c.num_cayley_neumann_terms = 0; /* R = I in PEFT */
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
  c.num_cayley_neumann_terms = INT_MIN;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
  c.num_cayley_neumann_terms = OFTAWQ_MAX_NEUMANN_TERMS;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
  c.use_cayley_neumann = 0; /* the exact path never reads the count */
  c.num_cayley_neumann_terms = INT_MAX;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
  /* eps is read only with coft */
  c = base;
  c.eps = NAN;
  memset(&log, 0, sizeof log);
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 0);
  c.eps = -1;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 0);
  c.coft = 1;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_ptr_nonnull(strstr(log.last, "sign flipped"));
  c.eps = 0;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 2);
  /* module_dropout: never validated by PEFT, and without effect */
  c = base;
  c.module_dropout = 7.5;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 3);
  ck_assert_ptr_nonnull(strstr(log.last, "module_dropout"));
  c.module_dropout = NAN;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  c.module_dropout = -1;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 5);
  c.module_dropout = 0;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 5);
  /* a block size far above in_features is adjusted to it (with PEFT's warning) */
  c = base;
  c.oft_block_size = 1000000000;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(s.block_size, 64);
  ck_assert_int_eq(s.r, 1);
  c = base;
  c.oft_block_size = 0;
  c.r = 1000000000;
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, tu_log_fn, &log, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(s.r, 64);
  ck_assert_int_eq(s.block_size, 1);
}
END_TEST

START_TEST(peft_version_selects_formula)
{
  static const struct { const char *v; int legacy; } cases[] = {
    {"0.17.1", 1}, {"0.16.0", 1}, {"0.18.0rc1", 1}, {"0.18.0.dev0", 1},
    {"0.18.0", 0}, {"0.18.2.dev0@UNKNOWN", 0}, {"0.20.1", 0}, {"1.0", 0},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    oftawq_oft_config c;
    oftawq_oft_shape s;
    oftawq_oft_config_init(&c);
    oftawq_oft_shape_init(&s);
    c.peft_version = cases[i].v;
    ck_assert_int_eq(oftawq_oft_resolve(&c, 64, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
    ck_assert_msg(s.legacy_neumann == cases[i].legacy, "%s", cases[i].v);
    c.use_cayley_neumann = 0; /* the exact path has one formula */
    ck_assert_int_eq(oftawq_oft_resolve(&c, 64, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
    ck_assert_int_eq(s.legacy_neumann, 0);
  }
}
END_TEST

START_TEST(weight_validation_errors)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_oft_config c;
  oftawq_oft *oft = (oftawq_oft *)1;
  float w[2 * 120];
  memset(w, 0, sizeof w);
  oftawq_oft_config_init(&c);
  c.oft_block_size = 16;
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 32, w, 239, &oft), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(oft);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "expected 2 x 120 = 240"));
  w[130] = NAN;
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 32, w, 240, &oft), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "NaN"));
  w[130] = INFINITY;
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 32, w, 240, &oft), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "infinite"));
  c.r = 2;
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 32, NULL, 0, &oft), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "not both"));
  ck_assert_int_eq(oftawq_oft_create(ctx, NULL, 32, NULL, 0, &oft), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_oft_destroy(NULL);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(identity_init_returns_input_exactly)
{
  oftawq_context *ctx = tu_context(NULL);
  int bs[] = {1, 3, 16, 32};
  size_t k;
  for (k = 0; k < 4; k++) {
    int d = bs[k] * 4;
    oftawq_oft *oft = make(ctx, d, bs[k], 1, 5, NULL, 0);
    oftawq_oft *ex = make(ctx, d, bs[k], 0, 5, NULL, 0);
    float *x = tu_random_floats((size_t)5 * d, 3.0f, 7 + k), *y = malloc((size_t)5 * d * 4);
    uint16_t *xh = malloc((size_t)5 * d * 2), *yh = malloc((size_t)5 * d * 2);
    int i;
    for (i = 0; i < 5 * d; i++) xh[i] = oftawq__float_to_half(x[i]);
    ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y, 5), OFTAWQ_OK);
    ck_assert_int_eq(memcmp(x, y, (size_t)5 * d * 4), 0);
    ck_assert_int_eq(oftawq_oft_rotate(ex, OFTAWQ_F32, x, y, 5), OFTAWQ_OK);
    ck_assert_int_eq(memcmp(x, y, (size_t)5 * d * 4), 0);
    ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F16, xh, yh, 5), OFTAWQ_OK);
    ck_assert_int_eq(memcmp(xh, yh, (size_t)5 * d * 2), 0);
    oftawq_oft_destroy(oft);
    oftawq_oft_destroy(ex);
    free(x);
    free(y);
    free(xh);
    free(yh);
  }
  oftawq_context_destroy(ctx);
}
END_TEST

/* Random weights: device rotation vs the reference, F32 and F16, for 1-, 2- and 3-D inputs (rows 1, 7, 2x3). */
START_TEST(transform_matches_reference)
{
  oftawq_context *ctx = tu_context(NULL);
  const int bs[] = {1, 2, 5, 8, 25, 32, 64, 128};
  const size_t rows_list[] = {1, 7, 6};
  size_t k, ri;
  for (k = 0; k < sizeof bs / sizeof bs[0]; k++) {
    int b = bs[k], d = b * 3, row, bl;
    int n_el = b * (b - 1) / 2;
    float *w = tu_random_floats((size_t)3 * n_el + 1, 0.3f / b, 100 + k);
    oftawq_oft *oft = make(ctx, d, b, 1, 5, w, (size_t)3 * n_el);
    double *Rd = malloc((size_t)3 * b * b * sizeof *Rd);
    float *pw = malloc((size_t)3 * n_el * 4 + 4);
    ck_assert_int_eq(oftawq_oft_get_weights(oft, pw, (size_t)3 * n_el), OFTAWQ_OK);
    for (bl = 0; bl < 3; bl++) oftawq__ref_cayley_neumann(pw + (size_t)bl * n_el, b, 5, 0, Rd + (size_t)bl * b * b);
    for (ri = 0; ri < 3; ri++) {
      size_t rows = rows_list[ri], n = rows * d, i;
      float *x = tu_random_floats(n, 2.0f, 9 * k + ri), *y = malloc(n * 4), *yr = malloc(n * 4), *xf = malloc(n * 4);
      uint16_t *xh = malloc(n * 2), *yh = malloc(n * 2);
      ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y, rows), OFTAWQ_OK);
      oftawq__ref_rotate(x, rows, 3, b, Rd, 0, yr);
      ck_assert_msg(rel_err_f(y, yr, n) <= Y_TOL, "b=%d rows=%zu f32: %g", b, rows, rel_err_f(y, yr, n));
      /* F16: the reference rotates the fp16 inputs in fp32+ and rounds once to fp16 */
      for (i = 0; i < n; i++) {
        xh[i] = oftawq__float_to_half(x[i]);
        xf[i] = oftawq__half_to_float(xh[i]);
      }
      ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F16, xh, yh, rows), OFTAWQ_OK);
      oftawq__ref_rotate(xf, rows, 3, b, Rd, 0, yr);
      for (i = 0; i < n; i++) {
        /* one fp16 rounding of values that agree to ~1e-6: at most one ulp apart */
        float got = oftawq__half_to_float(yh[i]), want = oftawq__half_to_float(oftawq__float_to_half(yr[i]));
        ck_assert_msg(fabsf(got - want) <= fabsf(want) * (1.0f / 1024) + 6e-8f, "b=%d f16 [%zu]: %g vs %g", b, i, got,
                      want);
      }
      /* BF16 likewise, with one bf16 rounding (8 significant bits) */
      for (i = 0; i < n; i++) {
        xh[i] = oftawq__float_to_bf16(x[i]);
        xf[i] = oftawq__bf16_to_float(xh[i]);
      }
      ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_BF16, xh, yh, rows), OFTAWQ_OK);
      oftawq__ref_rotate(xf, rows, 3, b, Rd, 0, yr);
      for (i = 0; i < n; i++) {
        float got = oftawq__bf16_to_float(yh[i]), want = oftawq__bf16_to_float(oftawq__float_to_bf16(yr[i]));
        ck_assert_msg(fabsf(got - want) <= fabsf(want) * (1.0f / 128) + 1e-30f, "b=%d bf16 [%zu]: %g vs %g", b, i,
                      got, want);
      }
      free(x);
      free(y);
      free(yr);
      free(xf);
      free(xh);
      free(yh);
    }
    (void)row;
    oftawq_oft_destroy(oft);
    free(w);
    free(Rd);
    free(pw);
  }
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(large_block_512)
{
  oftawq_context *ctx = tu_context(NULL);
  const int b = 512, n_el = b * (b - 1) / 2;
  float *w = tu_random_floats((size_t)n_el, 0.3f / b, 512), *R = malloc((size_t)b * b * 4), *Rr = malloc((size_t)b * b * 4);
  double *Rd = malloc((size_t)b * b * sizeof *Rd);
  oftawq_oft *oft = make(ctx, b, b, 1, 4, w, (size_t)n_el);
  size_t i;
  ck_assert_int_eq(oftawq_oft_get_rotation(oft, R, (size_t)b * b), OFTAWQ_OK);
  oftawq__ref_cayley_neumann(w, b, 4, 0, Rd);
  for (i = 0; i < (size_t)b * b; i++) Rr[i] = (float)Rd[i];
  ck_assert_msg(rel_err_f(R, Rr, (size_t)b * b) <= R_TOL, "b=512: %g", rel_err_f(R, Rr, (size_t)b * b));
  oftawq_oft_destroy(oft);
  free(w);
  free(R);
  free(Rr);
  free(Rd);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(exact_rotation_is_orthogonal)
{
  oftawq_context *ctx = tu_context(NULL);
  const int b = 32, n_el = b * (b - 1) / 2;
  float *w = tu_random_floats((size_t)4 * n_el, 0.5f, 3), *R = malloc((size_t)4 * b * b * 4);
  oftawq_oft *oft = make(ctx, 4 * b, b, 0, 5, w, (size_t)4 * n_el);
  int blk, i, j, k;
  double worst = 0;
  ck_assert_int_eq(oftawq_oft_get_rotation(oft, R, (size_t)4 * b * b), OFTAWQ_OK);
  for (blk = 0; blk < 4; blk++)
    for (i = 0; i < b; i++)
      for (j = 0; j < b; j++) {
        const float *Rb = R + (size_t)blk * b * b;
        double s = 0;
        for (k = 0; k < b; k++) s += (double)Rb[i * b + k] * Rb[j * b + k];
        s -= (i == j);
        if (fabs(s) > worst) worst = fabs(s);
      }
  ck_assert_msg(worst <= 1e-5, "R R^T - I: %g", worst);
  oftawq_oft_destroy(oft);
  free(w);
  free(R);
  oftawq_context_destroy(ctx);
}
END_TEST

/* The device Gauss-Jordan and the host LU give the same exact R (fp32 vs double: 1e-6 of |R|). */
START_TEST(exact_on_device_matches_host)
{
  oftawq_context *ctx = tu_context(NULL);
  const int bs[] = {1, 2, 7, 32, 64};
  size_t k;
  for (k = 0; k < sizeof bs / sizeof bs[0]; k++) {
    const int b = bs[k], n_el = b * (b - 1) / 2, blocks = 3;
    const size_t nr = (size_t)blocks * b * b;
    float *w = tu_random_floats((size_t)blocks * n_el + 1, 1.0f, 60 + k), *Rh = malloc(nr * 4), *Rd = malloc(nr * 4);
    oftawq_oft *oft = make(ctx, blocks * b, b, 0, 5, w, (size_t)blocks * n_el);
    oftawq__oft_set_exact_on_device(oft, 0);
    ck_assert_int_eq(oftawq_oft_get_rotation(oft, Rh, nr), OFTAWQ_OK);
    oftawq__oft_set_exact_on_device(oft, 1);
    ck_assert_int_eq(oftawq_oft_get_rotation(oft, Rd, nr), OFTAWQ_OK);
    ck_assert_msg(rel_err_f(Rd, Rh, nr) <= R_TOL, "b=%d: device %g", b, rel_err_f(Rd, Rh, nr));
    ck_assert_uint_eq(oftawq_oft_rebuild_count(oft), 2);
    oftawq_oft_destroy(oft);
    free(w);
    free(Rh);
    free(Rd);
  }
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(three_and_four_terms_agree)
{
  oftawq_context *ctx = tu_context(NULL);
  const int b = 16, n_el = b * (b - 1) / 2;
  float *w = tu_random_floats((size_t)2 * n_el, 0.05f, 11), *R3 = malloc((size_t)2 * b * b * 4),
        *R4 = malloc((size_t)2 * b * b * 4), *R5 = malloc((size_t)2 * b * b * 4);
  oftawq_oft *o3 = make(ctx, 2 * b, b, 1, 3, w, (size_t)2 * n_el), *o4 = make(ctx, 2 * b, b, 1, 4, w, (size_t)2 * n_el),
             *o5 = make(ctx, 2 * b, b, 1, 5, w, (size_t)2 * n_el);
  ck_assert_int_eq(oftawq_oft_get_rotation(o3, R3, (size_t)2 * b * b), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_get_rotation(o4, R4, (size_t)2 * b * b), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_get_rotation(o5, R5, (size_t)2 * b * b), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(R3, R4, (size_t)2 * b * b * 4), 0);
  ck_assert_int_ne(memcmp(R4, R5, (size_t)2 * b * b * 4), 0);
  oftawq_oft_destroy(o3);
  oftawq_oft_destroy(o4);
  oftawq_oft_destroy(o5);
  free(w);
  free(R3);
  free(R4);
  free(R5);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(divergence_warning)
{
  oftawq_context_options o;
  oftawq_context *ctx = NULL;
  tu_log log;
  const int b = 16, n_el = b * (b - 1) / 2;
  /* |Q|_2 ~ 1.8 (U(-0.4, 0.4)); at 0.2, |Q|_F ~ 1.8 but |Q|_2 ~ 0.9 converges: check_messages.c */
  float *w = tu_random_floats((size_t)n_el, 0.4f, 5);
  oftawq_oft *oft;
  memset(&log, 0, sizeof log);
  oftawq_context_options_init(&o);
  o.log = tu_log_fn;
  o.log_user = &log;
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  oft = make(ctx, b, b, 1, 5, w, (size_t)n_el);
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_ptr_nonnull(strstr(log.last, "diverges"));
  oftawq_oft_destroy(oft);
  oft = make(ctx, b, b, 0, 5, w, (size_t)n_el); /* the exact path does not warn */
  ck_assert_int_eq(log.warnings, 1);
  oftawq_oft_destroy(oft);
  free(w);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(rotation_cached_until_weights_change)
{
  oftawq_context *ctx = tu_context(NULL);
  const int b = 8, n_el = b * (b - 1) / 2;
  float *w = tu_random_floats((size_t)4 * n_el, 0.05f, 21), *w2 = tu_random_floats((size_t)4 * n_el, 0.05f, 22);
  float *x = tu_random_floats((size_t)2 * 32, 1.0f, 23), y1[64], y2[64], bad[4 * 28];
  oftawq_oft *oft = make(ctx, 32, b, 1, 5, w, (size_t)4 * n_el);
  ck_assert_uint_eq(oftawq_oft_rebuild_count(oft), 0);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y1, 2), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y2, 2), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F16, x, y2, 1), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_oft_rebuild_count(oft), 1);
  ck_assert_int_eq(oftawq_oft_set_weights(oft, w2, (size_t)4 * n_el), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y2, 2), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_oft_rebuild_count(oft), 2);
  ck_assert_int_ne(memcmp(y1, y2, sizeof y1), 0);
  /* a rejected update keeps the old weights and R */
  memcpy(bad, w, sizeof bad);
  bad[5] = NAN;
  ck_assert_int_eq(oftawq_oft_set_weights(oft, bad, (size_t)4 * n_el), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_oft_set_weights(oft, w, 3), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y1, 2), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_oft_rebuild_count(oft), 2);
  ck_assert_int_eq(memcmp(y1, y2, sizeof y1), 0);
  oftawq_oft_destroy(oft);
  free(w);
  free(w2);
  free(x);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(random_init_is_seeded_normal)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_oft_config c;
  oftawq_oft *a = NULL, *b = NULL, *z = NULL;
  const size_t n = 2 * 2016;
  float *wa = malloc(n * 4), *wb = malloc(n * 4);
  double mean = 0, var = 0;
  size_t i;
  oftawq_oft_config_init(&c);
  c.oft_block_size = 64;
  c.init_weights = 0;
  c.seed = 42;
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 128, NULL, 0, &a), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 128, NULL, 0, &b), OFTAWQ_OK);
  oftawq_oft_get_weights(a, wa, n);
  oftawq_oft_get_weights(b, wb, n);
  ck_assert_int_eq(memcmp(wa, wb, n * 4), 0);
  for (i = 0; i < n; i++) mean += wa[i];
  mean /= (double)n;
  for (i = 0; i < n; i++) var += (wa[i] - mean) * (wa[i] - mean);
  var /= (double)(n - 1);
  ck_assert_msg(fabs(mean) < 0.01 && fabs(sqrt(var) - 0.1) < 0.006, "mean %g std %g", mean, sqrt(var));
  c.init_weights = 1;
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 128, NULL, 0, &z), OFTAWQ_OK);
  oftawq_oft_get_weights(z, wb, n);
  for (i = 0; i < n; i++) ck_assert(wb[i] == 0.0f);
  oftawq_oft_destroy(a);
  oftawq_oft_destroy(b);
  oftawq_oft_destroy(z);
  free(wa);
  free(wb);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(rotate_on_caller_buffers)
{
  oftawq_context *ctx = tu_context(NULL);
  const int b = 8, d = 32, n_el = 28;
  float *w = tu_random_floats((size_t)4 * n_el, 0.05f, 31), *x = tu_random_floats((size_t)3 * d, 1.0f, 32);
  float y_host[3 * 32], y_dev[3 * 32];
  oftawq_oft *oft = make(ctx, d, b, 1, 5, w, (size_t)4 * n_el);
  cl_context cc;
  cl_command_queue q;
  cl_mem bx, by, small;
  cl_event ev = NULL;
  cl_int err;
  oftawq_context_get_cl(ctx, &cc, &q, NULL);
  bx = clCreateBuffer(cc, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof y_host, x, &err);
  by = clCreateBuffer(cc, CL_MEM_READ_WRITE, sizeof y_host, NULL, &err);
  small = clCreateBuffer(cc, CL_MEM_READ_WRITE, 16, NULL, &err);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y_host, 3), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, bx, by, 3, 0, NULL, &ev), OFTAWQ_OK);
  ck_assert_ptr_nonnull(ev);
  clEnqueueReadBuffer(q, by, CL_TRUE, 0, sizeof y_dev, y_dev, 1, &ev, NULL);
  clReleaseEvent(ev);
  ck_assert_int_eq(memcmp(y_host, y_dev, sizeof y_dev), 0);
  ck_assert_int_eq(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, bx, bx, 3, 0, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, bx, small, 3, 0, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "bytes"));
  ck_assert_int_eq(oftawq_oft_rotate_cl(oft, (oftawq_dtype)7, bx, by, 3, 0, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, NULL, y_host, 3), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y_host, (size_t)-1), OFTAWQ_E_INVALID_ARGUMENT);
  clReleaseMemObject(bx);
  clReleaseMemObject(by);
  clReleaseMemObject(small);
  oftawq_oft_destroy(oft);
  free(w);
  free(x);
  oftawq_context_destroy(ctx);
}
END_TEST

/* bf16 rounding as c10::BFloat16 rounds: to nearest even, Inf kept, a NaN to the quiet NaN 0x7fc0. */
START_TEST(bf16_conversion_matches_torch)
{
  unsigned h;
  for (h = 0; h < 0x10000u; h++) {
    float f = oftawq__bf16_to_float((uint16_t)h);
    if (isnan(f)) continue;
    ck_assert_uint_eq(oftawq__float_to_bf16(f), h);
  }
  ck_assert_uint_eq(oftawq__float_to_bf16(1.0f + 1.0f / 256), 0x3f80); /* tie to even */
  ck_assert_uint_eq(oftawq__float_to_bf16(1.0f + 3.0f / 256), 0x3f82);
  ck_assert_uint_eq(oftawq__float_to_bf16(3.4e38f), 0x7f80);            /* rounds to Inf */
  ck_assert_uint_eq(oftawq__float_to_bf16(-NAN), 0x7fc0);
  ck_assert_uint_eq(oftawq__float_to_bf16(-INFINITY), 0xff80);
}
END_TEST

START_TEST(half_conversion_round_trips)
{
  unsigned h;
  for (h = 0; h < 0x10000u; h++) {
    float f = oftawq__half_to_float((uint16_t)h);
    if (isnan(f)) continue;
    ck_assert_uint_eq(oftawq__float_to_half(f), h);
  }
  ck_assert_uint_eq(oftawq__float_to_half(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
  ck_assert_uint_eq(oftawq__float_to_half(1.0f + 3.0f / 2048), 0x3c02);
  ck_assert_uint_eq(oftawq__float_to_half(65520.0f), 0x7c00);           /* rounds to Inf */
  ck_assert_uint_eq(oftawq__float_to_half(1e-8f), 0x0000);
}
END_TEST

/* PEFT's series adds nothing for n <= 1: R = I whatever the weights. */
START_TEST(terms_up_to_one_give_identity)
{
  static const int terms[] = {1, 0, -3};
  oftawq_context *ctx = tu_context(NULL);
  const int d = 32, b = 16, n_el = b * (b - 1) / 2;
  float *w = tu_random_floats((size_t)2 * n_el, 0.2f, 77), R[2 * 16 * 16];
  size_t t, i;
  for (t = 0; t < sizeof terms / sizeof terms[0]; t++) {
    oftawq_oft *oft = make(ctx, d, b, 1, terms[t], w, (size_t)2 * n_el);
    ck_assert_int_eq(oftawq_oft_get_rotation(oft, R, 2 * 16 * 16), OFTAWQ_OK);
    for (i = 0; i < 2 * 16 * 16; i++) ck_assert_float_eq(R[i], (i % 256) / 16 == (i % 16) ? 1.0f : 0.0f);
    oftawq_oft_destroy(oft);
  }
  free(w);
  oftawq_context_destroy(ctx);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("oft");
  TCase *cpu = tcase_create("config"), *dev = tcase_create("device");
  tcase_add_test(cpu, defaults_match_peft);
  tcase_add_test(cpu, r_and_block_size_derivation);
  tcase_add_test(cpu, config_validation_errors);
  tcase_add_test(cpu, config_accepted_as_peft);
  tcase_add_test(cpu, peft_version_selects_formula);
  tcase_add_test(cpu, half_conversion_round_trips);
  tcase_add_test(cpu, bf16_conversion_matches_torch);
  tcase_set_timeout(dev, 300);
  tcase_add_test(dev, peft_fixtures_current);
  tcase_add_test(dev, peft_fixtures_legacy_formula);
  tcase_add_test(dev, weight_validation_errors);
  tcase_add_test(dev, identity_init_returns_input_exactly);
  tcase_add_test(dev, transform_matches_reference);
  tcase_add_test(dev, large_block_512);
  tcase_add_test(dev, exact_rotation_is_orthogonal);
  tcase_add_test(dev, exact_on_device_matches_host);
  tcase_add_test(dev, three_and_four_terms_agree);
  tcase_add_test(dev, terms_up_to_one_give_identity);
  tcase_add_test(dev, divergence_warning);
  tcase_add_test(dev, rotation_cached_until_weights_change);
  tcase_add_test(dev, random_init_is_seeded_normal);
  tcase_add_test(dev, rotate_on_caller_buffers);
  suite_add_tcase(s, cpu);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
