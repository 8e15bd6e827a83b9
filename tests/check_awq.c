/* check_awq.c: AWQ GEMM base layers - nibble order, every kernel path against the reference, validation. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oftawq_cl.h"
#include "common/ref.h"
#include "engines/awq.h"
#include "engines/awq_repack.h"
#include "runtime/context.h"
#include "testutil.h"

typedef struct layer {
  int K, N, G;
  int32_t *qw, *qz;
  uint16_t *sc, *bias;
} layer;

static layer random_layer(int K, int N, int G, int with_bias, uint64_t seed)
{
  layer L;
  tu_rng r;
  size_t i, W = (size_t)N / 8, groups = (size_t)(K / G);
  tu_rng_seed(&r, seed);
  L.K = K;
  L.N = N;
  L.G = G;
  L.qw = malloc((size_t)K * W * 4);
  L.qz = malloc(groups * W * 4);
  L.sc = malloc(groups * N * 2);
  L.bias = with_bias ? malloc((size_t)N * 2) : NULL;
  for (i = 0; i < (size_t)K * W; i++) L.qw[i] = (int32_t)tu_rng_u32(&r); /* negative words included */
  for (i = 0; i < groups * W; i++) L.qz[i] = (int32_t)tu_rng_u32(&r);
  for (i = 0; i < groups * N; i++) L.sc[i] = oftawq__float_to_half(tu_rng_uniform(&r, 0.001f, 0.02f));
  for (i = 0; with_bias && i < (size_t)N; i++) L.bias[i] = oftawq__float_to_half(tu_rng_uniform(&r, -1, 1));
  return L;
}

static void free_layer(layer *L)
{
  free(L->qw);
  free(L->qz);
  free(L->sc);
  free(L->bias);
}

/* The layer's tensors as oftawq_awq_create takes them, with group argument G_arg. */
static void layer_tensors(const layer *L, int G_arg, oftawq_awq_tensors *t)
{
  oftawq_awq_tensors_init(t);
  t->K = L->K;
  t->N = L->N;
  t->G = G_arg;
  t->qweight = L->qw;
  t->qzeros = L->qz;
  t->scales = L->sc;
  t->bias = L->bias;
}

static oftawq_awq *upload(oftawq_context *ctx, const layer *L, int G_arg)
{
  oftawq_awq_tensors t;
  oftawq_awq *awq = NULL;
  layer_tensors(L, G_arg, &t);
  ck_assert_msg(oftawq_awq_create(ctx, &t, &awq) == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
  return awq;
}

/* Both results are fp16-rounded sums of the same terms (fp32 vs double): one fp16 ulp apart at most. */
static void expect_close(const float *got, const float *want, size_t n, const char *what)
{
  size_t i;
  for (i = 0; i < n; i++) {
    float tol = fmaxf(fabsf(want[i]), fabsf(got[i])) / 1000.0f + 1e-4f;
    ck_assert_msg(fabsf(got[i] - want[i]) <= tol, "%s [%zu]: %g vs reference %g", what, i, got[i], want[i]);
  }
}

START_TEST(nibble_order_hand_computed)
{
  /* AutoAWQ's own packing of q[k][n] = (3k+n) % 16: row k=0 is 0x75316420, k=1 0xa8649753 (negative). */
  const uint32_t k0 = 0x75316420u, k1 = 0xa8649753u, z = 0xb975a864u;
  unsigned c;
  for (c = 0; c < 8; c++) {
    ck_assert_uint_eq(oftawq__awq_nibble(k0, c), c);
    ck_assert_uint_eq(oftawq__awq_nibble(k1, c), (3 + c) % 16);
    ck_assert_uint_eq(oftawq__awq_nibble(z, c), c + 4);
  }
  ck_assert_int_lt((int32_t)k1, 0);
}
END_TEST

START_TEST(hand_computed_layer)
{
  /* K = N = G = 8 from the format notes: W row k=0 = [-2,-4,...,-16], row 1 = [-0.5,...,-4]. */
  int32_t qw[8], qz[1] = {(int32_t)0xb975a864u};
  uint16_t sc[8];
  float x[8] = {1, 0, 0, 0, 0, 0, 0, 0}, y[8];
  layer L;
  oftawq_context *ctx = tu_context(NULL);
  oftawq_awq *awq;
  int k, n, p;
  for (k = 0; k < 8; k++) {
    uint32_t w = 0;
    for (n = 0; n < 8; n++) w |= (uint32_t)((3 * k + n) % 16) << (4 * ((n & 1) * 4 + (n >> 1)));
    qw[k] = (int32_t)w;
  }
  ck_assert_uint_eq((uint32_t)qw[0], 0x75316420u);
  ck_assert_uint_eq((uint32_t)qw[1], 0xa8649753u);
  for (n = 0; n < 8; n++) sc[n] = oftawq__float_to_half(0.5f * (n + 1));
  L.K = L.N = L.G = 8;
  L.qw = qw;
  L.qz = qz;
  L.sc = sc;
  L.bias = NULL;
  awq = upload(ctx, &L, 8);
  for (p = OFTAWQ_AWQ_GEMV; p <= OFTAWQ_AWQ_DENSE; p++) {
    oftawq_awq_set_path(awq, (oftawq_awq_path)p);
    ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, 1), OFTAWQ_OK);
    for (n = 0; n < 8; n++) ck_assert_float_eq(y[n], -2.0f * (n + 1));
    x[0] = 0;
    x[1] = 1;
    ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, 1), OFTAWQ_OK);
    for (n = 0; n < 8; n++) ck_assert_float_eq(y[n], -0.5f * (n + 1));
    x[0] = 1;
    x[1] = 0;
  }
  oftawq_awq_destroy(awq);
  oftawq_context_destroy(ctx);
}
END_TEST

/* Every path, for one layer shape, rows in {1, 2, 7, 64, 300}, F32, F16 and BF16. */
static void check_layer(int K, int N, int G, int G_arg, int with_bias, uint64_t seed)
{
  static const size_t rows_list[] = {1, 2, 7, 64, 300};
  oftawq_context *ctx = tu_context(NULL);
  layer L = random_layer(K, N, G, with_bias, seed);
  oftawq_awq *awq = upload(ctx, &L, G_arg);
  size_t ri, i;
  for (ri = 0; ri < 5; ri++) {
    size_t rows = rows_list[ri], nx = rows * K, ny = rows * N;
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *yr = malloc(ny * 4), *xb = malloc(nx * 4), *yb = malloc(ny * 4);
    uint16_t *xh = malloc(nx * 2), *yh = malloc(ny * 2), *xbh = malloc(nx * 2);
    tu_rng r;
    int p;
    tu_rng_seed(&r, seed * 31 + ri);
    for (i = 0; i < nx; i++) {
      x[i] = tu_rng_uniform(&r, -2, 2);
      xh[i] = oftawq__float_to_half(x[i]);
      xbh[i] = oftawq__float_to_bf16(x[i]);
      xb[i] = oftawq__bf16_to_float(xbh[i]);
    }
    oftawq__ref_awq(x, rows, K, N, G, L.qw, L.qz, L.sc, L.bias, yr);
    oftawq__ref_awq(xb, rows, K, N, G, L.qw, L.qz, L.sc, L.bias, yb); /* BF16: AutoAWQ takes the bf16 x to fp16 */
    for (p = OFTAWQ_AWQ_AUTO; p <= OFTAWQ_AWQ_DENSE; p++) {
      char what[96];
      if (p == OFTAWQ_AWQ_GEMV && rows > 8) continue; /* valid but slow; AUTO never picks it there */
      snprintf(what, sizeof what, "K=%d N=%d G=%d bias=%d rows=%zu path=%d", K, N, G, with_bias, rows, p);
      ck_assert_int_eq(oftawq_awq_set_path(awq, (oftawq_awq_path)p), OFTAWQ_OK);
      ck_assert_msg(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, rows) == OFTAWQ_OK, "%s: %s", what,
                    oftawq_context_last_error(ctx));
      expect_close(y, yr, ny, what);
      ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F16, xh, yh, rows), OFTAWQ_OK);
      for (i = 0; i < ny; i++) y[i] = oftawq__half_to_float(yh[i]);
      expect_close(y, yr, ny, what);
      /* BF16: the fp16 result rounded to bf16 (8 significant bits) */
      ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_BF16, xbh, yh, rows), OFTAWQ_OK);
      for (i = 0; i < ny; i++) {
        float got = oftawq__bf16_to_float(yh[i]), want = oftawq__bf16_to_float(oftawq__float_to_bf16(yb[i]));
        ck_assert_msg(fabsf(got - want) <= fmaxf(fabsf(want), fabsf(got)) / 128.0f + 1e-4f, "%s bf16 [%zu]: %g vs %g",
                      what, i, got, want);
      }
    }
    free(xb);
    free(yb);
    free(xbh);
    free(x);
    free(y);
    free(yr);
    free(xh);
    free(yh);
  }
  oftawq_awq_destroy(awq);
  free_layer(&L);
  oftawq_context_destroy(ctx);
}

START_TEST(paths_g32_bias) { check_layer(96, 104, 32, 32, 1, 1); }
END_TEST
START_TEST(paths_g64_no_bias) { check_layer(192, 40, 64, 64, 0, 2); }
END_TEST
START_TEST(paths_g128_bias) { check_layer(256, 136, 128, 128, 1, 3); }
END_TEST
START_TEST(paths_g_is_k) { check_layer(200, 72, 200, -1, 1, 4); }
END_TEST

/* AutoAWQ rounds each dequantised weight (q - z) * s to fp16 and we do not (the GEMV folds the zero point),
 * so against its numbers allow 2^-11 of sum_k |x_k W_kn| (one fp16 rounding per term) plus one fp16 ulp. */
static void expect_close_to_autoawq(const float *got, const float *want, const float *x, size_t rows, const layer *L,
                                    const char *what)
{
  size_t m;
  int n, k;
  for (m = 0; m < rows; m++)
    for (n = 0; n < L->N; n++) {
      double scale = 0, tol;
      for (k = 0; k < L->K; k++) {
        int g = k / L->G;
        double q = oftawq__awq_nibble((uint32_t)L->qw[(size_t)k * (L->N / 8) + n / 8], (unsigned)n & 7u);
        double z = oftawq__awq_nibble((uint32_t)L->qz[(size_t)g * (L->N / 8) + n / 8], (unsigned)n & 7u);
        scale += fabs(x[m * L->K + k] * (q - z) * oftawq__half_to_float(L->sc[(size_t)g * L->N + n]));
      }
      tol = scale / 2048.0 + fabs(want[m * L->N + n]) / 1024.0 + 1e-7;
      ck_assert_msg(fabs(got[m * L->N + n] - want[m * L->N + n]) <= tol, "%s [%zu][%d]: %g vs AutoAWQ %g (tol %g)",
                    what, m, n, got[m * L->N + n], want[m * L->N + n], tol);
    }
}

/* Real MiniLM weights quantised and packed by AutoAWQ's own code (tests/gen/gen_awq.py). */
START_TEST(autoawq_fixtures)
{
  char *path = tu_srcpath("tests/fixtures/awq/cases.tsv"), line[256];
  FILE *f = fopen(path, "r");
  oftawq_context *ctx = tu_context(NULL);
  int cases = 0;
  ck_assert_msg(f != NULL, "cannot open %s", path);
  while (fgets(line, sizeof line, f)) {
    char name[64], rel[128], *bin, *data;
    int K, N, G, has_bias, rows, p;
    size_t len = 0, W, groups, off = 0;
    layer L;
    float *x, *yref, *y;
    oftawq_awq *awq;
    if (line[0] == '#') continue;
    ck_assert_int_eq(sscanf(line, "%63s %d %d %d %d %d", name, &K, &N, &G, &has_bias, &rows), 6);
    snprintf(rel, sizeof rel, "tests/fixtures/awq/%s.bin", name);
    bin = tu_srcpath(rel);
    data = tu_read_file(bin, &len);
    ck_assert_ptr_nonnull(data);
    W = (size_t)N / 8;
    groups = (size_t)(K / (G == -1 ? K : G));
    L.K = K;
    L.N = N;
    L.G = G == -1 ? K : G;
    L.qw = (int32_t *)(void *)(data + off);
    off += (size_t)K * W * 4;
    L.qz = (int32_t *)(void *)(data + off);
    off += groups * W * 4;
    L.sc = (uint16_t *)(void *)(data + off);
    off += groups * N * 2;
    L.bias = has_bias ? (uint16_t *)(void *)(data + off) : NULL;
    off += has_bias ? (size_t)N * 2 : 0;
    x = (float *)(void *)(data + off);
    off += (size_t)rows * K * 4;
    yref = (float *)(void *)(data + off);
    off += (size_t)rows * N * 4;
    ck_assert_uint_eq(off, len);
    y = malloc((size_t)rows * N * 4);
    awq = upload(ctx, &L, G);
    for (p = OFTAWQ_AWQ_GEMV; p <= OFTAWQ_AWQ_DENSE; p++) {
      char what[96];
      snprintf(what, sizeof what, "%s path %d", name, p);
      oftawq_awq_set_path(awq, (oftawq_awq_path)p);
      ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, (size_t)rows), OFTAWQ_OK);
      expect_close_to_autoawq(y, yref, x, (size_t)rows, &L, what);
    }
    /* and our reference agrees with AutoAWQ's dequantisation */
    oftawq__ref_awq(x, (size_t)rows, K, N, L.G, L.qw, L.qz, L.sc, L.bias, y);
    expect_close_to_autoawq(y, yref, x, (size_t)rows, &L, name);
    oftawq_awq_destroy(awq);
    free(y);
    free(data);
    free(bin);
    cases++;
  }
  fclose(f);
  free(path);
  ck_assert_int_ge(cases, 3);
  oftawq_context_destroy(ctx);
}
END_TEST

/* One F32 forward of `rows` rows with an explicit plan (as the tuner hands it), through device buffers. */
static oftawq_status awq_forward_plan(oftawq_context *ctx, oftawq_awq *awq, const oftawq__awq_plan *plan,
                                      const float *x, float *y, size_t rows)
{
  cl_context cl;
  cl_command_queue q;
  cl_mem dx, dy;
  int K, N;
  oftawq_status status;
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl, &q, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_awq_get_shape(awq, &K, &N, NULL, NULL), OFTAWQ_OK);
  dx = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, rows * K * 4, (void *)(uintptr_t)x, NULL);
  dy = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, rows * N * 4, NULL, NULL);
  ck_assert(dx && dy);
  status = oftawq__awq_enqueue_plan(awq, OFTAWQ_F32, dx, dy, rows, plan, NULL, 0, NULL, NULL);
  if (status == OFTAWQ_OK)
    ck_assert_int_eq(clEnqueueReadBuffer(q, dy, CL_TRUE, 0, rows * N * 4, y, 0, NULL, NULL), CL_SUCCESS);
  clReleaseMemObject(dx);
  clReleaseMemObject(dy);
  return status;
}

/* The interleaved layouts (K4, KC) hold AutoAWQ's tensors exactly: repacked and unpacked, every bit comes back. */
START_TEST(interleaved_repack_round_trip)
{
  static const int shapes[][3] = {{8, 8, 8}, {96, 104, 32}, {256, 136, 128}, {64, 40, 64}};
  size_t i, j;
  int layout;
  for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    for (layout = OFTAWQ__LAYOUT_K4; layout <= OFTAWQ__LAYOUT_KC; layout++) {
      const int K = shapes[i][0], N = shapes[i][1], G = shapes[i][2], ki = oftawq__awq_layout_ki(layout, G);
      layer L = random_layer(K, N, G, 0, 40 + i);
      size_t W = (size_t)N / 8, groups = (size_t)(K / G);
      uint32_t *packed = malloc((size_t)K * W * 4);
      uint16_t *pairs = malloc(groups * N * 4), *sc = malloc(groups * N * 2);
      int32_t *qw = malloc((size_t)K * W * 4), *qz = malloc(groups * W * 4);
      ck_assert(oftawq__awq_interleave_possible(K, G));
      ck_assert_int_eq(ki, layout == OFTAWQ__LAYOUT_K4 ? 4 : oftawq__awq_chunk(G));
      oftawq__awq_repack(L.qw, L.qz, L.sc, K, N, G, ki, packed, pairs);
      for (j = 0; j < groups * N; j++) /* the pairs are (scale, zero) with the zero exact in fp16 */
        ck_assert_uint_eq(pairs[2 * j], L.sc[j]);
      for (j = 0; j < (size_t)ki; j++) /* k = 0 .. ki-1 of word 0 lie together, then word 1's */
        ck_assert_uint_eq(packed[j], (uint32_t)L.qw[j * W]);
      if (W > 1) ck_assert_uint_eq(packed[ki], (uint32_t)L.qw[1]);
      oftawq__awq_unpack(packed, pairs, K, N, G, ki, qw, qz, sc);
      ck_assert_int_eq(memcmp(qw, L.qw, (size_t)K * W * 4), 0);
      ck_assert_int_eq(memcmp(qz, L.qz, groups * W * 4), 0);
      ck_assert_int_eq(memcmp(sc, L.sc, groups * N * 2), 0);
      free(packed);
      free(pairs);
      free(sc);
      free(qw);
      free(qz);
      free_layer(&L);
    }
  ck_assert(!oftawq__awq_interleave_possible(200, 200)); /* an odd k-chunk (200 -> 100 -> 50 -> 25) */
  ck_assert(!oftawq__awq_interleave_possible(6, 6));
  ck_assert_int_eq(oftawq__awq_layout_ki(OFTAWQ__LAYOUT_AWQ, 128), 1);
}
END_TEST

/* awq_matmul as CPU runtimes get it (AWQ_WI_LOOPS: sums in local memory, x staged as float8 splats, the chunks'
 * sums of x staged once) and as GPUs get it (sums in registers, each item adding x itself): the same plan gives
 * the same bits either way, on every path that uses the kernel: lanes over words (one and four per item) and
 * over a word's columns (one word, and four words as two float16 of two words each), split-K (the partial sums'
 * tree), the GEMM with row groups. (tests/oclgrind.sh runs the variant under oclgrind: kernel_tour's `wi` parts.) */
START_TEST(work_item_loop_variant_same_bits)
{
  oftawq_context *ctx = tu_context(NULL);
  const int real = ctx->info.is_cpu;
  static const int widths[2] = {136, 256}; /* 17 words: a partial work-group; 32: four words per item */
  layer L[2];
  oftawq_awq *a[2] = {NULL, NULL};
  float x[7 * 512], y[2][7 * 256], yr[2][7 * 256];
  int v, l;
  tu_fill_random(x, 7 * 512, 2.0f, 31);
  for (l = 0; l < 2; l++) {
    oftawq_awq_tensors t;
    L[l] = random_layer(512, widths[l], 64, 1, 29 + l);
    oftawq__ref_awq(x, 7, 512, widths[l], 64, L[l].qw, L[l].qz, L[l].sc, L[l].bias, yr[l]);
    layer_tensors(&L[l], 64, &t);
    ck_assert_int_eq(oftawq_awq_create(ctx, &t, &a[l]), OFTAWQ_OK);
  }
  for (v = 0; v < 7; v++) {
    static const char *const what[] = {"word lanes",  "column lanes", "split 4", "split 2, column lanes",
                                       "GEMM",        "four words per item, split 2",
                                       "four words per item, column lanes, split 2"};
    const int n = v >= 5 ? 256 : 136;
    oftawq__awq_plan plan;
    int cpu;
    l = v >= 5;
    oftawq__awq_default_plan(ctx, 512, n, 64, 7, OFTAWQ__LAYOUT_AWQ, &plan);
    plan.path = v == 4 ? OFTAWQ_AWQ_GEMM : OFTAWQ_AWQ_GEMV;
    plan.rpi = v == 3 ? 4 : v >= 5 ? 2 : 8; /* x staged in local memory, nine times over: within oclgrind's 32 KiB */
    plan.vec = v >= 5 ? 4 : 1;
    plan.colvec = v == 1 || v == 3 || v == 6;
    plan.split = v == 2 ? 4 : v == 3 || v >= 5 ? 2 : 1;
    plan.cols = 4;
    plan.grows = 4;
    plan.grgroups = 2;
    plan.gcols = 8;
    for (cpu = 0; cpu < 2; cpu++) {
      ctx->info.is_cpu = cpu;
      ck_assert_int_eq(oftawq__awq_wi_loops(ctx), cpu);
      ck_assert_msg(awq_forward_plan(ctx, a[l], &plan, x, y[cpu], 7) == OFTAWQ_OK, "%s: %s", what[v],
                    oftawq_context_last_error(ctx));
    }
    ctx->info.is_cpu = real;
    expect_close(y[1], yr[l], 7 * n, what[v]);
    ck_assert_msg(memcmp(y[0], y[1], 7 * n * sizeof(float)) == 0, "%s: the two variants differ", what[v]);
  }
  for (l = 0; l < 2; l++) {
    oftawq_awq_destroy(a[l]);
    free_layer(&L[l]);
  }
  oftawq_context_destroy(ctx);
}
END_TEST

/* The defaults of a CPU with 16-float registers (AVX-512), whatever this one has: two words per item at 8 rows
 * (GEMV) and in the GEMM, their lanes over each word's columns, on AutoAWQ's layout and on KC (an item's words
 * are adjacent runs there); the reference's numbers, and the same bits on both layouts. */
START_TEST(wide_register_defaults)
{
  oftawq_context *ctx = tu_context(NULL);
  const unsigned real = ctx->float_width;
  layer L = random_layer(512, 256, 64, 1, 41);
  oftawq_awq_tensors t;
  oftawq_awq *a[2] = {NULL, NULL};
  float x[16 * 512], y[2][16 * 256], yr[16 * 256];
  int v, l;
  tu_fill_random(x, 16 * 512, 2.0f, 43);
  oftawq__ref_awq(x, 16, 512, 256, 64, L.qw, L.qz, L.sc, L.bias, yr);
  layer_tensors(&L, 64, &t);
  ck_assert_int_eq(oftawq__awq_create_layout(ctx, &t, OFTAWQ__LAYOUT_AWQ, &a[0]), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__awq_create_layout(ctx, &t, OFTAWQ__LAYOUT_KC, &a[1]), OFTAWQ_OK);
  for (v = 0; v < 3; v++) {
    static const size_t rows[3] = {8, 16, 2};
    static const char *const what[3] = {"GEMV, two words per item", "GEMM, two words per item",
                                        "GEMV, eight words per item"};
    for (l = 0; l < 2; l++) {
      oftawq__awq_plan plan;
      ctx->float_width = 16;
      oftawq__awq_default_plan(ctx, 512, 256, 64, rows[v], l ? OFTAWQ__LAYOUT_KC : OFTAWQ__LAYOUT_AWQ, &plan);
      ctx->float_width = real;
      plan.path = v == 1 ? OFTAWQ_AWQ_GEMM : OFTAWQ_AWQ_GEMV;
      ck_assert_int_eq(v == 1 ? plan.gvec : plan.vec, v == 2 ? 8 : 2);
      ck_assert_int_eq(v == 1 ? plan.gcolvec : plan.colvec, 1);
      ck_assert_msg(awq_forward_plan(ctx, a[l], &plan, x, y[l], rows[v]) == OFTAWQ_OK, "%s",
                    oftawq_context_last_error(ctx));
      expect_close(y[l], yr, rows[v] * 256, what[v]);
    }
    ck_assert_msg(memcmp(y[0], y[1], rows[v] * 256 * sizeof(float)) == 0, "%s: the layouts differ", what[v]);
  }
  for (l = 0; l < 2; l++) oftawq_awq_destroy(a[l]);
  free_layer(&L);
  oftawq_context_destroy(ctx);
}
END_TEST

/* The interleaved layouts on the device: every path gives the reference's numbers, the matmul the very bits
 * of AutoAWQ's layout with the same launch (both word orders of the sums), and the backward's view of
 * AutoAWQ's tensors comes back bit for bit. */
START_TEST(interleaved_layout_paths)
{
  oftawq_context *ctx = tu_context(NULL);
  layer L = random_layer(256, 136, 64, 1, 17);
  oftawq_awq_tensors t;
  oftawq_awq *a = NULL, *b = NULL, *c = NULL;
  float x[5 * 256], y[5 * 136], ya[5 * 136], yr[5 * 136], y0[5 * 136];
  int p, layout, colvec, pf;
  tu_fill_random(x, 5 * 256, 2.0f, 23);
  oftawq__ref_awq(x, 5, 256, 136, 64, L.qw, L.qz, L.sc, L.bias, yr);
  layer_tensors(&L, 64, &t);
  ck_assert_int_eq(oftawq__awq_create_layout(ctx, &t, OFTAWQ__LAYOUT_AWQ, &a), OFTAWQ_OK);
  for (layout = OFTAWQ__LAYOUT_K4; layout <= OFTAWQ__LAYOUT_KC; layout++) {
    ck_assert_int_eq(oftawq__awq_create_layout(ctx, &t, layout, &b), OFTAWQ_OK);
    ck_assert_int_eq(oftawq__awq_layout(b), layout);
    for (p = OFTAWQ_AWQ_GEMV; p <= OFTAWQ_AWQ_DENSE; p++) {
      char what[48];
      snprintf(what, sizeof what, "%s path %d", oftawq__awq_layout_name(layout), p);
      oftawq_awq_set_path(a, (oftawq_awq_path)p);
      oftawq_awq_set_path(b, (oftawq_awq_path)p);
      ck_assert_msg(oftawq_awq_forward(b, OFTAWQ_F32, x, y, 5) == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
      expect_close(y, yr, 5 * 136, what);
      ck_assert_int_eq(oftawq_awq_forward(a, OFTAWQ_F32, x, ya, 5), OFTAWQ_OK);
      if (p != OFTAWQ_AWQ_DENSE) /* same launch (one word per item on both at 5 rows), same sums */
        ck_assert_int_eq(memcmp(y, ya, sizeof y), 0);
    }
    for (colvec = 0; colvec < 2; colvec++)
      for (pf = 0; pf < 3; pf++) { /* explicit plans: lanes over words or a word's columns; prefetching or not */
        static const int ahead[] = {0, 16, OFTAWQ__MAX_PREFETCH}; /* the largest runs past K: clamped */
        oftawq__awq_plan plan;
        oftawq__awq_default_plan(ctx, 256, 136, 64, 5, OFTAWQ__LAYOUT_AWQ, &plan);
        plan.path = OFTAWQ_AWQ_GEMV;
        plan.rpi = 8;
        plan.vec = 1;
        plan.colvec = colvec;
        plan.prefetch = ahead[pf];
        ck_assert_int_eq(awq_forward_plan(ctx, b, &plan, x, y, 5), OFTAWQ_OK);
        ck_assert_int_eq(awq_forward_plan(ctx, a, &plan, x, ya, 5), OFTAWQ_OK);
        ck_assert_int_eq(memcmp(y, ya, sizeof y), 0);
        if (!pf) memcpy(y0, y, sizeof y);
        ck_assert_int_eq(memcmp(y, y0, sizeof y), 0); /* a prefetch changes no bit */
        expect_close(y, yr, 5 * 136, colvec ? "colvec plan" : "word-lane plan");
      }
    for (colvec = 0; colvec < 2; colvec++)
      for (pf = 0; pf < 4; pf++) { /* one row, one word per item (on KC with a word's columns as lanes, the
                                    * lanes hold 8 k of one column while summing), split or not, prefetching or not */
        oftawq__awq_plan plan;
        oftawq__awq_default_plan(ctx, 256, 136, 64, 1, layout, &plan);
        ck_assert_int_eq(plan.vec, 1);
        plan.path = OFTAWQ_AWQ_GEMV;
        plan.colvec = colvec;
        plan.split = pf < 2 ? 1 : 2;
        plan.prefetch = pf % 2 ? 16 : 0;
        ck_assert_int_eq(awq_forward_plan(ctx, b, &plan, x, y, 1), OFTAWQ_OK);
        expect_close(y, yr, 136, colvec ? "one row, lanes of k or columns" : "one row, scalar lanes");
        if (pf % 2 == 0) memcpy(y0, y, 136 * sizeof *y);
        ck_assert_int_eq(memcmp(y, y0, 136 * sizeof *y), 0); /* a prefetch changes no bit */
      }
    { /* kernels that read AutoAWQ's layout (the backward) get it unpacked on the device, bit for bit */
      cl_mem qw, qz, sc;
      cl_command_queue q;
      const size_t kept = oftawq__awq_device_bytes(b);
      int32_t *qwb = malloc((size_t)256 * 17 * 4), *qzb = malloc((size_t)4 * 17 * 4);
      uint16_t *scb = malloc((size_t)4 * 136 * 2);
      ck_assert_int_eq(oftawq__awq_buffers(b, &qw, &qz, &sc), OFTAWQ_OK);
      ck_assert_int_eq(oftawq_context_get_cl(ctx, NULL, &q, NULL), OFTAWQ_OK);
      ck_assert_int_eq(clEnqueueReadBuffer(q, qw, CL_TRUE, 0, (size_t)256 * 17 * 4, qwb, 0, NULL, NULL), CL_SUCCESS);
      ck_assert_int_eq(clEnqueueReadBuffer(q, qz, CL_TRUE, 0, (size_t)4 * 17 * 4, qzb, 0, NULL, NULL), CL_SUCCESS);
      ck_assert_int_eq(clEnqueueReadBuffer(q, sc, CL_TRUE, 0, (size_t)4 * 136 * 2, scb, 0, NULL, NULL), CL_SUCCESS);
      ck_assert_int_eq(memcmp(qwb, L.qw, (size_t)256 * 17 * 4), 0);
      ck_assert_int_eq(memcmp(qzb, L.qz, (size_t)4 * 17 * 4), 0);
      ck_assert_int_eq(memcmp(scb, L.sc, (size_t)4 * 136 * 2), 0);
      ck_assert_uint_gt(oftawq__awq_device_bytes(b), kept); /* kept from then on */
      free(qwb);
      free(qzb);
      free(scb);
    }
    oftawq_awq_destroy(b);
    b = NULL;
  }
  ck_assert_int_eq(oftawq__awq_create_layout(ctx, &t, OFTAWQ__AWQ_LAYOUTS, &c), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(c);
  t.K = 200;
  t.G = 200;
  for (layout = OFTAWQ__LAYOUT_K4; layout <= OFTAWQ__LAYOUT_KC; layout++) {
    ck_assert_int_eq(oftawq__awq_create_layout(ctx, &t, layout, &c), OFTAWQ_E_INVALID_ARGUMENT);
    ck_assert_ptr_null(c);
  }
  oftawq_awq_destroy(a);
  free_layer(&L);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(auto_path_by_rows)
{
  oftawq_context *ctx = tu_context(NULL);
  layer L = random_layer(64, 64, 32, 0, 9);
  oftawq_awq *awq = upload(ctx, &L, 32);
  ck_assert_int_eq(oftawq_awq_path_for(awq, 1), OFTAWQ_AWQ_GEMV);
  ck_assert_int_ne(oftawq_awq_path_for(awq, 1000), OFTAWQ_AWQ_GEMV); /* per-device thresholds: check_tune */
  oftawq_awq_set_path(awq, OFTAWQ_AWQ_GEMM);
  ck_assert_int_eq(oftawq_awq_path_for(awq, 1), OFTAWQ_AWQ_GEMM);
  ck_assert_int_eq(oftawq_awq_set_path(awq, (oftawq_awq_path)9), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_awq_destroy(awq);
  free_layer(&L);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(validation_errors)
{
  oftawq_context *ctx = tu_context(NULL);
  layer L = random_layer(64, 64, 32, 0, 5);
  oftawq_awq_tensors t;
  oftawq_awq *awq = (oftawq_awq *)1;
  float x[64], y[64];
  layer_tensors(&L, 48, &t);
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(awq);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "group size 48"));
  t.G = 32;
  t.N = 60;
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "multiple of 8"));
  t.N = 64;
  t.qzeros = NULL;
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "qzeros"));
  t.qzeros = L.qz;
  t.scales = NULL;
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "scales"));
  t.scales = L.sc;
  t.K = 0;
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_E_INVALID_ARGUMENT);
  t.K = 0x7ffffff0;
  t.N = 0x7ffffff0;
  t.G = -1;
  /* 2^31 x 2^28 words: more than any device holds; nothing leaks, no layer */
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_E_DEVICE_MEMORY);
  ck_assert_ptr_null(awq);
  ck_assert_int_eq(oftawq_awq_create(ctx, NULL, &awq), OFTAWQ_E_INVALID_ARGUMENT);
  awq = upload(ctx, &L, 32);
  memset(x, 0, sizeof x);
  ck_assert_int_eq(oftawq_awq_forward(awq, (oftawq_dtype)5, x, y, 1), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, NULL, y, 1), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, 0), OFTAWQ_OK);
  oftawq_awq_destroy(awq);
  oftawq_awq_destroy(NULL);
  free_layer(&L);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(non_finite_activations_propagate)
{
  oftawq_context *ctx = tu_context(NULL);
  layer L = random_layer(64, 64, 32, 1, 6);
  oftawq_awq *awq = upload(ctx, &L, 32);
  float x[2 * 64], y[2 * 64];
  int i;
  for (i = 0; i < 128; i++) x[i] = 0.25f;
  x[3] = NAN;
  ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, 2), OFTAWQ_OK);
  for (i = 0; i < 64; i++) ck_assert(isnan(y[i]));
  for (i = 64; i < 128; i++) ck_assert(isfinite(y[i]));
  oftawq_awq_destroy(awq);
  free_layer(&L);
  oftawq_context_destroy(ctx);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("awq");
  TCase *cpu = tcase_create("reference"), *dev = tcase_create("device");
  tcase_add_test(cpu, nibble_order_hand_computed);
  tcase_add_test(cpu, interleaved_repack_round_trip);
  tcase_set_timeout(dev, 300);
  tcase_add_test(dev, hand_computed_layer);
  tcase_add_test(dev, paths_g32_bias);
  tcase_add_test(dev, paths_g64_no_bias);
  tcase_add_test(dev, paths_g128_bias);
  tcase_add_test(dev, paths_g_is_k);
  tcase_add_test(dev, autoawq_fixtures);
  tcase_add_test(dev, interleaved_layout_paths);
  tcase_add_test(dev, work_item_loop_variant_same_bits);
  tcase_add_test(dev, wide_register_defaults);
  tcase_add_test(dev, auto_path_by_rows);
  tcase_add_test(dev, validation_errors);
  tcase_add_test(dev, non_finite_activations_propagate);
  suite_add_tcase(s, cpu);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
