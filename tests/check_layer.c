/* check_layer.c: AwqOFTLinear and the dispatch factory against PEFT + AutoAWQ fixtures and the composed reference. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/layer.h"
#include "oftawq_cl.h"
#include "common/ref.h"
#include "testutil.h"

/* The fixtures' base layer: tests/fixtures/awq/minilm_query_g64.bin (K = N = 384, G = 64, bias). */
typedef struct base {
  char *data;
  oftawq_awq_tensors t;
  double *col_norm; /* |W[:, n]|_2, for tolerances */
} base;

static base load_base(void)
{
  base b;
  size_t K = 384, N = 384, G = 64, W = N / 8;
  size_t k, n;
  tu_awq_fixture("minilm_query_g64", (int)K, (int)N, (int)G, &b.t, &b.data);
  b.col_norm = calloc(N, sizeof *b.col_norm);
  for (k = 0; k < K; k++)
    for (n = 0; n < N; n++) {
      double q = oftawq__awq_nibble((uint32_t)b.t.qweight[k * W + n / 8], (unsigned)n & 7u);
      double z = oftawq__awq_nibble((uint32_t)b.t.qzeros[(k / G) * W + n / 8], (unsigned)n & 7u);
      double w = (q - z) * oftawq__half_to_float(b.t.scales[(k / G) * N + n]);
      b.col_norm[n] += w * w;
    }
  for (n = 0; n < N; n++) b.col_norm[n] = sqrt(b.col_norm[n]);
  return b;
}

static void free_base(base *b)
{
  free(b->data);
  free(b->col_norm);
}

/* fp16 rounding of the rotated x (one ulp flips) and of AutoAWQ's dequantised weights move y by at most
 * about 2^-11 |x|_2 |W[:, n]|_2; plus one fp16 ulp of y itself. */
static void expect_close(const base *b, const float *got, const float *want, const float *x, size_t rows,
                         const char *what)
{
  size_t m, n, k;
  for (m = 0; m < rows; m++) {
    double xn = 0;
    for (k = 0; k < (size_t)b->t.K; k++) xn += (double)x[m * b->t.K + k] * x[m * b->t.K + k];
    xn = sqrt(xn);
    for (n = 0; n < (size_t)b->t.N; n++) {
      double g = got[m * b->t.N + n], w = want[m * b->t.N + n];
      double tol = xn * b->col_norm[n] / 2048.0 + fabs(w) / 1024.0 + 1e-6;
      ck_assert_msg(fabs(g - w) <= tol, "%s [%zu][%zu]: %g vs %g (tol %g)", what, m, n, g, w, tol);
    }
  }
}

/* Checked fixture (runs in the forked child, so OpenCL stays out of the parent). */
static base B;
static oftawq_context *ctx;

static void setup(void)
{
  B = load_base();
  ctx = tu_context(NULL);
}

static void teardown(void)
{
  oftawq_context_destroy(ctx);
  free_base(&B);
}

static oftawq_target gemm_target(const base *b, const char *version)
{
  oftawq_target t;
  oftawq_target_init(&t);
  t.kind = OFTAWQ_TARGET_AWQ_GEMM;
  t.awq_version = version;
  t.tensors = b->t;
  return t;
}

/* "name:r:b:neumann:terms:coft:eps:share" */
static oftawq_oft_config parse_adapter(const char *spec, char *name)
{
  oftawq_oft_config c;
  oftawq_oft_config_init(&c);
  ck_assert_int_eq(sscanf(spec, "%31[^:]:%d:%d:%d:%d:%d:%lf:%d", name, &c.r, &c.oft_block_size,
                          &c.use_cayley_neumann, &c.num_cayley_neumann_terms, &c.coft, &c.eps, &c.block_share),
                   8);
  return c;
}

START_TEST(peft_autoawq_fixtures)
{
  char *path = tu_srcpath("tests/fixtures/layer/cases.tsv"), line[1024];
  FILE *f = fopen(path, "r");
  base b = B;
  int cases = 0;
  ck_assert_msg(f != NULL, "cannot open %s", path);
  while (fgets(line, sizeof line, f)) {
    char name[64], dtype_s[8], active_s[128], rel[128], *data, *bin, *tok, *save = NULL, *adapters;
    const char *active[8];
    int enabled, rows, n_active = 0, first = 1;
    size_t len = 0, off = 0, i, nx, ny;
    oftawq_layer *layer = NULL;
    oftawq_dtype dtype;
    float *x, *yref, *y;
    if (line[0] == '#') continue;
    line[strcspn(line, "\n")] = '\0';
    ck_assert_int_eq(sscanf(line, "%63s %7s %d %d %127s", name, dtype_s, &enabled, &rows, active_s), 5);
    adapters = strrchr(line, '\t') + 1;
    dtype = strcmp(dtype_s, "f16") ? OFTAWQ_F32 : OFTAWQ_F16;
    snprintf(rel, sizeof rel, "tests/fixtures/layer/%s.bin", name);
    bin = tu_srcpath(rel);
    data = tu_read_file(bin, &len);
    ck_assert_ptr_nonnull(data);
    for (tok = strtok_r(adapters, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
      char an[32];
      oftawq_oft_config c = parse_adapter(tok, an);
      oftawq_oft_shape s;
      size_t count;
      oftawq_oft_shape_init(&s);
      ck_assert_int_eq(oftawq_oft_resolve(&c, b.t.K, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
      count = (size_t)s.weight_rows * s.n_elements;
      if (first) {
        oftawq_target t = gemm_target(&b, "0.2.9");
        ck_assert_msg(oftawq_dispatch(ctx, &t, an, &c, (const float *)(const void *)(data + off), count, &layer) ==
                        OFTAWQ_OK,
                      "%s: %s", name, oftawq_context_last_error(ctx));
        first = 0;
      } else {
        ck_assert_int_eq(oftawq_layer_add_adapter(layer, an, &c, (const float *)(const void *)(data + off), count),
                         OFTAWQ_OK);
      }
      off += count * 4;
    }
    for (tok = strtok_r(active_s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) active[n_active++] = tok;
    ck_assert_int_eq(oftawq_layer_set_active(layer, active, (size_t)n_active), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_enable_adapters(layer, enabled), OFTAWQ_OK);
    nx = (size_t)rows * b.t.K;
    ny = (size_t)rows * b.t.N;
    x = (float *)(void *)(data + off);
    yref = x + nx;
    ck_assert_uint_eq(off + (nx + ny) * 4, len);
    y = malloc(ny * 4);
    if (dtype == OFTAWQ_F32) {
      ck_assert_int_eq(oftawq_layer_forward(layer, dtype, x, y, (size_t)rows), OFTAWQ_OK);
    } else {
      uint16_t *xh = malloc(nx * 2), *yh = malloc(ny * 2);
      for (i = 0; i < nx; i++) xh[i] = oftawq__float_to_half(x[i]);
      ck_assert_int_eq(oftawq_layer_forward(layer, dtype, xh, yh, (size_t)rows), OFTAWQ_OK);
      for (i = 0; i < ny; i++) y[i] = oftawq__half_to_float(yh[i]);
      free(xh);
      free(yh);
    }
    expect_close(&b, y, yref, x, (size_t)rows, name);
    oftawq_layer_destroy(layer);
    free(y);
    free(data);
    free(bin);
    cases++;
  }
  fclose(f);
  free(path);
  ck_assert_int_ge(cases, 10);
}
END_TEST

static oftawq_oft_config block_config(int b, int neumann)
{
  oftawq_oft_config c;
  oftawq_oft_config_init(&c);
  c.oft_block_size = b;
  c.use_cayley_neumann = neumann;
  return c;
}

/* Builds a layer with adapters "a" (b=32, Neumann), "b" (b=16, exact), "c" (b=64, Neumann) and random weights. */
static oftawq_layer *three_adapter_layer(const base *b)
{
  oftawq_target t = gemm_target(b, NULL);
  oftawq_oft_config ca = block_config(32, 1), cb = block_config(16, 0), cc = block_config(64, 1);
  float *wa = tu_random_floats(12 * 496, 0.01f, 1), *wb = tu_random_floats(24 * 120, 0.02f, 2), *wc = tu_random_floats(6 * 2016, 0.005f, 3);
  oftawq_layer *layer = NULL;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "a", &ca, wa, 12 * 496, &layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "b", &cb, wb, 24 * 120), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "c", &cc, wc, 6 * 2016), OFTAWQ_OK);
  free(wa);
  free(wb);
  free(wc);
  return layer;
}

START_TEST(composition_matches_reference)
{
  base b = B;
  oftawq_layer *layer = three_adapter_layer(&b);
  const char *order[] = {"c", "a", "b"};
  const size_t rows = 3, K = 384, N = 384;
  float *x = tu_random_floats(rows * K, 1.0f, 9), *xr = malloc(rows * K * 4), *y = malloc(rows * N * 4),
        *yr = malloc(rows * N * 4), *yab = malloc(rows * N * 4);
  size_t i;
  /* reference: rotate by each adapter's device R in double, in order, then the AWQ reference */
  memcpy(xr, x, rows * K * 4);
  for (i = 0; i < 3; i++) {
    oftawq_oft *oft = oftawq_layer_adapter(layer, order[i]);
    oftawq_oft_shape s;
    size_t nr, j;
    float *R;
    double *Rd;
    oftawq_oft_shape_init(&s);
    oftawq_oft_get_shape(oft, &s);
    nr = (size_t)s.weight_rows * s.block_size * s.block_size;
    R = malloc(nr * 4);
    Rd = malloc(nr * sizeof *Rd);
    ck_assert_int_eq(oftawq_oft_get_rotation(oft, R, nr), OFTAWQ_OK);
    for (j = 0; j < nr; j++) Rd[j] = R[j];
    oftawq__ref_rotate(xr, rows, s.r, s.block_size, Rd, 0, xr);
    free(R);
    free(Rd);
  }
  oftawq__ref_awq(xr, rows, (int)K, (int)N, 64, b.t.qweight, b.t.qzeros, b.t.scales, b.t.bias, yr);
  ck_assert_int_eq(oftawq_layer_set_active(layer, order, 3), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y, rows), OFTAWQ_OK);
  expect_close(&b, y, yr, x, rows, "c.a.b");
  /* the rotations do not commute: another order gives another result */
  ck_assert_int_eq(oftawq_layer_set_active(layer, (const char *const[]){"a", "b", "c"}, 3), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, yab, rows), OFTAWQ_OK);
  ck_assert_int_ne(memcmp(y, yab, rows * N * 4), 0);
  free(x);
  free(xr);
  free(y);
  free(yr);
  free(yab);
  oftawq_layer_destroy(layer);
}
END_TEST

START_TEST(mixed_batch_equals_per_row_forwards)
{
  base b = B;
  oftawq_layer *layer = three_adapter_layer(&b);
  const size_t rows = 6, K = 384, N = 384;
  const int index[6] = {2, -1, 0, 1, 0, 2};
  float *x = tu_random_floats(rows * K, 1.0f, 10), *y = malloc(rows * N * 4), *one = malloc(N * 4);
  size_t r;
  oftawq_awq_set_path(oftawq_layer_base(layer), OFTAWQ_AWQ_GEMV);
  ck_assert_int_eq(oftawq_layer_forward_mixed(layer, OFTAWQ_F32, x, y, rows, index), OFTAWQ_OK);
  for (r = 0; r < rows; r++) {
    const char *name = index[r] >= 0 ? oftawq_layer_adapter_name(layer, (size_t)index[r]) : NULL;
    ck_assert_int_eq(oftawq_layer_set_active(layer, &name, name ? 1 : 0), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x + r * K, one, 1), OFTAWQ_OK);
    ck_assert_msg(memcmp(one, y + r * N, N * 4) == 0, "row %zu (adapter %d) differs", r, index[r]);
  }
  ck_assert_int_eq(oftawq_layer_forward_mixed(layer, OFTAWQ_F32, x, y, rows, (const int[]){0, 1, 2, 3, 0, 0}),
                   OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_mixed(layer, OFTAWQ_F32, x, y, rows, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  free(x);
  free(y);
  free(one);
  oftawq_layer_destroy(layer);
}
END_TEST

START_TEST(dispatch_matrix)
{
  static const oftawq_target_kind other[] = {OFTAWQ_TARGET_AWQ_GEMV, OFTAWQ_TARGET_AWQ_GEMV_FAST,
                                             OFTAWQ_TARGET_AWQ_MARLIN, OFTAWQ_TARGET_LINEAR_F16,
                                             OFTAWQ_TARGET_LINEAR_F32};
  static const struct { const char *version; oftawq_status want; } versions[] = {
    {"0.1.8", OFTAWQ_E_INCOMPATIBLE_VERSION}, {"0.1.9.post2", OFTAWQ_E_INCOMPATIBLE_VERSION},
    {"0.2.0.dev0", OFTAWQ_E_INCOMPATIBLE_VERSION}, {"0.2.0rc1", OFTAWQ_E_INCOMPATIBLE_VERSION},
    {"0.2.0", OFTAWQ_OK}, {"v0.2", OFTAWQ_OK}, {"0.2.0+cu121", OFTAWQ_OK}, {"0.2.9", OFTAWQ_OK},
    {"1.0.0", OFTAWQ_OK}, {NULL, OFTAWQ_OK}, {"not-a-version", OFTAWQ_E_INVALID_ARGUMENT}, {"", OFTAWQ_E_INVALID_ARGUMENT},
  };
  base b = B;
  oftawq_oft_config c = block_config(32, 1);
  size_t i, k;
  for (k = 0; k < sizeof other / sizeof other[0]; k++)
    for (i = 0; i < sizeof versions / sizeof versions[0]; i++) {
      oftawq_target t = gemm_target(&b, versions[i].version);
      oftawq_layer *layer = (oftawq_layer *)&t;
      t.kind = other[k];
      ck_assert_int_eq(oftawq_dispatch(ctx, &t, "default", &c, NULL, 0, &layer), OFTAWQ_NOT_APPLICABLE);
      ck_assert_ptr_null(layer);
    }
  for (i = 0; i < sizeof versions / sizeof versions[0]; i++) {
    oftawq_target t = gemm_target(&b, versions[i].version);
    oftawq_layer *layer = (oftawq_layer *)&t;
    oftawq_status st = oftawq_dispatch(ctx, &t, "default", &c, NULL, 0, &layer);
    ck_assert_msg(st == versions[i].want, "version %s: %s", versions[i].version ? versions[i].version : "NULL",
                  oftawq_status_name(st));
    if (st == OFTAWQ_OK) {
      ck_assert_ptr_nonnull(layer);
      ck_assert_ptr_eq(oftawq_layer_base(layer), oftawq_layer_quant_linear_module(layer));
      ck_assert_ptr_nonnull(oftawq_layer_base(layer));
      ck_assert_uint_eq(oftawq_layer_adapter_count(layer), 1);
      ck_assert_str_eq(oftawq_layer_adapter_name(layer, 0), "default");
      oftawq_layer_destroy(layer);
    } else {
      ck_assert_ptr_null(layer);
    }
    if (st == OFTAWQ_E_INCOMPATIBLE_VERSION) {
      char want[256];
      snprintf(want, sizeof want,
               "Found an incompatible version of auto-awq. Found version %s, but only versions above 0.2.0 are "
               "supported.",
               versions[i].version);
      ck_assert_str_eq(oftawq_context_last_error(ctx), want);
    }
  }
  { /* validation failures of SPEC 3.1 and 4 */
    oftawq_target t = gemm_target(&b, "0.2.9");
    oftawq_layer *layer = NULL;
    oftawq_oft_config bad = c;
    bad.r = 4;
    ck_assert_int_eq(oftawq_dispatch(ctx, &t, "default", &bad, NULL, 0, &layer), OFTAWQ_E_INVALID_ARGUMENT);
    ck_assert_ptr_null(layer);
    t.tensors.G = 100;
    ck_assert_int_eq(oftawq_dispatch(ctx, &t, "default", &c, NULL, 0, &layer), OFTAWQ_E_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "group size"));
    ck_assert_int_eq(oftawq_dispatch(ctx, NULL, "default", &c, NULL, 0, &layer), OFTAWQ_E_INVALID_ARGUMENT);
  }
}
END_TEST

START_TEST(adapter_management)
{
  base b = B;
  oftawq_layer *layer = three_adapter_layer(&b);
  oftawq_oft_config c = block_config(32, 1);
  float w[12 * 496], x[384], y0[384], y1[384], yb[384];
  char desc[1024];
  size_t need = 0;
  memset(w, 0, sizeof w);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "a", &c, NULL, 0), OFTAWQ_E_EXISTS);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "", &c, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "w", &c, w, 7), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_uint_eq(oftawq_layer_adapter_count(layer), 3);
  ck_assert_int_eq(oftawq_layer_set_adapter_weights(layer, "zz", w, 12 * 496), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_layer_set_adapter_weights(layer, "a", w, 5), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_delete_adapter(layer, "zz"), OFTAWQ_E_NOT_FOUND);
  ck_assert_ptr_null(oftawq_layer_adapter_name(layer, 3));

  /* the description */
  ck_assert_int_eq(oftawq_layer_describe(layer, desc, sizeof desc, &need), OFTAWQ_OK);
  ck_assert_uint_eq(need, strlen(desc));
  ck_assert_msg(strncmp(desc, "oft.AwqOFTLinear(in_features=384, out_features=384, group_size=64, bias=True", 76) == 0,
                "%s", desc);
  ck_assert_ptr_nonnull(strstr(desc, "a(r=12, block_size=32, neumann_terms=5"));
  ck_assert_ptr_nonnull(strstr(desc, "b(r=24, block_size=16, cayley=exact"));
  ck_assert_ptr_nonnull(strstr(desc, "active)"));
  ck_assert_ptr_nonnull(strstr(desc, "inactive)"));
  ck_assert_int_eq(oftawq_layer_describe(layer, desc, 10, &need), OFTAWQ_OK);
  ck_assert_uint_eq(strlen(desc), 9);
  ck_assert_uint_gt(need, 100);

  /* disable -> base only; enable -> the active adapter; weights replaced -> new output */
  tu_fill_random(x, 384, 1.0f, 4);
  ck_assert_int_eq(oftawq_awq_forward(oftawq_layer_base(layer), OFTAWQ_F32, x, yb, 1), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_enable_adapters(layer, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y0, 1), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(y0, yb, sizeof yb), 0);
  ck_assert_int_eq(oftawq_layer_enable_adapters(layer, 1), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y1, 1), OFTAWQ_OK);
  ck_assert_int_ne(memcmp(y1, yb, sizeof yb), 0);
  ck_assert_int_eq(oftawq_layer_set_adapter_weights(layer, "a", w, 12 * 496), OFTAWQ_OK); /* zeros: R = I */
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y1, 1), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(y1, yb, sizeof yb), 0);

  /* deleting the active adapter leaves the base layer */
  ck_assert_int_eq(oftawq_layer_delete_adapter(layer, "a"), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_layer_adapter_count(layer), 2);
  ck_assert_str_eq(oftawq_layer_adapter_name(layer, 0), "b");
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y1, 1), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(y1, yb, sizeof yb), 0);

  ck_assert_int_eq(oftawq_layer_merge(layer), OFTAWQ_E_MERGE_REFUSED);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "merge"));
  oftawq_layer_destroy(layer);
  oftawq_layer_destroy(NULL);
}
END_TEST

START_TEST(dropout_and_fan_in_fan_out_are_stored)
{
  base b = B;
  oftawq_target t = gemm_target(&b, "0.2.9");
  oftawq_oft_config c = block_config(32, 1), got;
  oftawq_layer *layer = NULL;
  float x[384], y0[384], y1[384];
  char desc[512];
  c.module_dropout = 0.25;
  c.fan_in_fan_out = 1;
  c.init_weights = 0;
  c.seed = 3;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "d", &c, NULL, 0, &layer), OFTAWQ_OK);
  oftawq_oft_config_init(&got);
  ck_assert_int_eq(oftawq_oft_get_config(oftawq_layer_adapter(layer, "d"), &got), OFTAWQ_OK);
  ck_assert(got.module_dropout == 0.25);
  ck_assert_int_eq(got.fan_in_fan_out, 1);
  oftawq_layer_describe(layer, desc, sizeof desc, NULL);
  ck_assert_ptr_nonnull(strstr(desc, "module_dropout=0.25"));
  /* inference ignores dropout: two forwards agree exactly */
  tu_fill_random(x, 384, 1.0f, 8);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y0, 1), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y1, 1), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(y0, y1, sizeof y0), 0);
  oftawq_layer_destroy(layer);
}
END_TEST

/* The rotation fused into the GEMV gives the same bits as the separate rotation, F32 and F16, plain and shared R. */
START_TEST(fused_rotation_matches_separate)
{
  base b = B;
  oftawq_layer *layer = three_adapter_layer(&b);
  oftawq_oft_config shared = block_config(48, 1);
  float *ws = tu_random_floats(1128, 0.01f, 44);
  const char *names[] = {"a", "b", "c", "s"};
  size_t n, rows, i;
  shared.block_share = 1;
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "s", &shared, ws, 1128), OFTAWQ_OK);
  for (n = 0; n < 4; n++) {
    ck_assert_int_eq(oftawq_layer_set_active(layer, &names[n], 1), OFTAWQ_OK);
    for (rows = 1; rows <= 4; rows++) {
      float *x = tu_random_floats(rows * 384, 1.0f, 50 + rows), y0[4 * 384], y1[4 * 384];
      uint16_t xh[4 * 384], h0[4 * 384], h1[4 * 384];
      for (i = 0; i < rows * 384; i++) xh[i] = oftawq__float_to_half(x[i]);
      oftawq__layer_set_fusion(layer, 0);
      ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y0, rows), OFTAWQ_OK);
      ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F16, xh, h0, rows), OFTAWQ_OK);
      oftawq__layer_set_fusion(layer, 1);
      ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y1, rows), OFTAWQ_OK);
      ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F16, xh, h1, rows), OFTAWQ_OK);
      ck_assert_msg(memcmp(y0, y1, rows * 384 * 4) == 0, "adapter %s rows %zu: fused F32 differs", names[n], rows);
      ck_assert_msg(memcmp(h0, h1, rows * 384 * 2) == 0, "adapter %s rows %zu: fused F16 differs", names[n], rows);
      free(x);
    }
  }
  free(ws);
  oftawq_layer_destroy(layer);
}
END_TEST

START_TEST(forward_on_caller_buffers)
{
  base b = B;
  oftawq_layer *layer = three_adapter_layer(&b);
  float *x = tu_random_floats(2 * 384, 1.0f, 12), y_host[2 * 384], y_dev[2 * 384];
  cl_context cc;
  cl_command_queue q;
  cl_mem bx, by;
  cl_event ev = NULL;
  cl_int err;
  oftawq_context_get_cl(ctx, &cc, &q, NULL);
  bx = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, 2 * 384 * 4, x, &err);
  by = clCreateBuffer(cc, CL_MEM_READ_WRITE, 2 * 384 * 4, NULL, &err);
  ck_assert_int_eq(oftawq_layer_set_active(layer, (const char *const[]){"b", "c"}, 2), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y_host, 2), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward_cl(layer, OFTAWQ_F32, bx, by, 2, 0, NULL, &ev), OFTAWQ_OK);
  ck_assert_ptr_nonnull(ev);
  clEnqueueReadBuffer(q, by, CL_TRUE, 0, sizeof y_dev, y_dev, 1, &ev, NULL);
  clReleaseEvent(ev);
  ck_assert_int_eq(memcmp(y_host, y_dev, sizeof y_dev), 0);
  ck_assert_int_eq(oftawq_layer_forward_cl(layer, OFTAWQ_F32, bx, bx, 2, 0, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_cl(layer, OFTAWQ_F32, bx, by, 3, 0, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  clReleaseMemObject(bx);
  clReleaseMemObject(by);
  free(x);
  oftawq_layer_destroy(layer);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("layer");
  TCase *tc = tcase_create("device");
  tcase_set_timeout(tc, 600); /* each fused variant is a compile (PoCL: 1-3 s) */
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, peft_autoawq_fixtures);
  tcase_add_test(tc, composition_matches_reference);
  tcase_add_test(tc, mixed_batch_equals_per_row_forwards);
  tcase_add_test(tc, dispatch_matrix);
  tcase_add_test(tc, adapter_management);
  tcase_add_test(tc, dropout_and_fan_in_fan_out_are_stored);
  tcase_add_test(tc, fused_rotation_matches_separate);
  tcase_add_test(tc, forward_on_caller_buffers);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
