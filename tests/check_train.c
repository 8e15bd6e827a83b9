/* check_train.c: training - gradients, optimizers, loops and saving against torch autograd + PEFT fixtures; bad input. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ref.h"
#include "common/version.h"
#include "engines/oft.h"
#include "engines/oft_grad.h"
#include "engines/train.h"
#include "oftawq_cl.h"
#include "testutil.h"

/* The fixtures' base layer: tests/fixtures/awq/minilm_query_g64.bin (K = N = 384, G = 64, bias). */
#define FK 384 /* K, N, G of the fixtures' base layer */
#define FN 384
#define FG 64
#define MAX_ADAPTERS 4

static oftawq_awq_tensors base_t;
static char *base_data;
static double *abs_w; /* |W[k][n]|, for tolerances */
static oftawq_context *ctx;

/* Checked fixture (runs in the forked child, so OpenCL stays out of the parent). */
static void setup(void)
{
  size_t k, n, W8 = FN / 8;
  tu_awq_fixture("minilm_query_g64", FK, FN, FG, &base_t, &base_data);
  abs_w = malloc((size_t)FK * FN * sizeof *abs_w);
  ck_assert_ptr_nonnull(abs_w);
  for (k = 0; k < FK; k++)
    for (n = 0; n < FN; n++) {
      double q = oftawq__awq_nibble((uint32_t)base_t.qweight[k * W8 + n / 8], (unsigned)n & 7u);
      double z = oftawq__awq_nibble((uint32_t)base_t.qzeros[(k / FG) * W8 + n / 8], (unsigned)n & 7u);
      abs_w[k * FN + n] = fabs((q - z) * oftawq__half_to_float(base_t.scales[(k / FG) * FN + n]));
    }
  ctx = tu_context(NULL);
}

static void teardown(void)
{
  oftawq_context_destroy(ctx);
  free(abs_w);
  free(base_data);
}

/* sqrt(sum_k (sum_n |dy[n]| |W[k][n]|)^2) for one row of dy: AutoAWQ's dequantize_gemm rounds each W to fp16
 * (the fixtures' weight), SPEC 12 takes it exact, so dx = dy . W^T may differ by 2^-12 of each term. */
static double awq_term_norm(const float *dy_row)
{
  double total = 0;
  size_t k, n;
  for (k = 0; k < FK; k++) {
    double v = 0;
    for (n = 0; n < FN; n++) v += fabs(dy_row[n]) * abs_w[k * FN + n];
    total += v * v;
  }
  return sqrt(total);
}

/* ------------------------------------------------------------------ fixture helpers */

/* An adapter as tests/gen/gen_train.py writes it: name:r:b:neumann:terms:coft:eps:share:legacy:trainable:scale:seed. */
typedef struct adapter_spec {
  char name[32];
  oftawq_oft_config c;
  int legacy, trainable;
  float scale;
  unsigned seed;
  size_t count;
} adapter_spec;

static adapter_spec parse_spec(const char *text)
{
  adapter_spec s;
  memset(&s, 0, sizeof s);
  oftawq_oft_config_init(&s.c);
  ck_assert_int_eq(sscanf(text, "%31[^:]:%d:%d:%d:%d:%d:%lf:%d:%d:%d:%f:%u", s.name, &s.c.r, &s.c.oft_block_size,
                          &s.c.use_cayley_neumann, &s.c.num_cayley_neumann_terms, &s.c.coft, &s.c.eps,
                          &s.c.block_share, &s.legacy, &s.trainable, &s.scale, &s.seed),
                   12);
  if (s.legacy) s.c.peft_version = "0.17.1"; /* the last PEFT with the pre-0.18 Neumann formula */
  return s;
}

/* Adds the adapter of `s` with its seeded weights (and makes it trainable if it is). */
static void add_spec(oftawq_layer *layer, adapter_spec *s)
{
  oftawq_oft_shape shape;
  float *w;
  oftawq_oft_shape_init(&shape);
  ck_assert_int_eq(oftawq_oft_resolve(&s->c, FK, NULL, NULL, &shape, NULL, 0), OFTAWQ_OK);
  s->count = (size_t)shape.weight_rows * (size_t)shape.n_elements;
  w = tu_random_floats(s->count, s->scale, s->seed);
  ck_assert_msg(oftawq_layer_add_adapter(layer, s->name, &s->c, w, s->count) == OFTAWQ_OK, "%s",
                oftawq_context_last_error(ctx));
  if (s->trainable) ck_assert_int_eq(oftawq_layer_set_trainable(layer, s->name, 1), OFTAWQ_OK);
  free(w);
}

/* Splits "a,b,c" in place into names. */
static size_t split_names(char *list, const char **names, size_t cap)
{
  char *tok, *save = NULL;
  size_t n = 0;
  for (tok = strtok_r(list, ",", &save); tok && n < cap; tok = strtok_r(NULL, ",", &save)) names[n++] = tok;
  return n;
}

/* Activations of `rows` x `cols` from a seed, as the generator makes them (rounded to fp16 for F16). */
static void *activations(oftawq_dtype dtype, size_t rows, size_t cols, unsigned seed, float **as_float)
{
  size_t n = rows * cols, i;
  float *f = tu_random_floats(n, 1.0f, seed);
  uint16_t *h;
  if (dtype == OFTAWQ_F32) {
    *as_float = f;
    return f;
  }
  h = malloc(n * 2 + 2);
  ck_assert_ptr_nonnull(h);
  for (i = 0; i < n; i++) {
    h[i] = oftawq__float_to_half(f[i]);
    f[i] = oftawq__half_to_float(h[i]);
  }
  *as_float = f;
  return h;
}

/* Frees what activations() returned. */
static void free_activations(void *a, float *as_float)
{
  if (a != as_float) free(a);
  free(as_float);
}

static float element(oftawq_dtype dtype, const void *p, size_t i)
{
  return dtype == OFTAWQ_F32 ? ((const float *)p)[i] : oftawq__half_to_float(((const uint16_t *)p)[i]);
}

static size_t esize(oftawq_dtype dtype) { return dtype == OFTAWQ_F32 ? 4 : 2; }

/* The rows of dx a gradient fixture keeps (as gen_train.py's checked_rows). */
static int checked_row(size_t r, size_t rows) { return rows <= 16 || r % 7 == 0 || r == rows - 1; }

/* max |got - want| / max |want| over n values. */
static double rel_error(const float *got, const float *want, size_t n, double *scale)
{
  double err = 0, big = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (d > err || isnan(d)) err = isnan(d) ? INFINITY : d;
    if (fabs(want[i]) > big) big = fabs(want[i]);
  }
  if (scale) *scale = big;
  return big > 0 ? err / big : err;
}

/* ------------------------------------------------------------------ gradients against torch autograd */

typedef struct grad_case {
  char name[64];
  oftawq_dtype dtype;
  size_t rows;
  unsigned xs, ys;
  char active[128];
  adapter_spec spec[MAX_ADAPTERS];
  size_t n_spec;
} grad_case;

static int next_grad_case(FILE *f, grad_case *c)
{
  char line[2048], dtype[8], *specs, *tok, *save = NULL;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    line[strcspn(line, "\n")] = '\0';
    memset(c, 0, sizeof *c);
    ck_assert_int_eq(sscanf(line, "%63s %7s %zu %u %u %127s", c->name, dtype, &c->rows, &c->xs, &c->ys, c->active), 6);
    c->dtype = strcmp(dtype, "f16") ? OFTAWQ_F32 : OFTAWQ_F16;
    specs = strrchr(line, '\t') + 1;
    for (tok = strtok_r(specs, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
      ck_assert_uint_lt(c->n_spec, MAX_ADAPTERS);
      c->spec[c->n_spec++] = parse_spec(tok);
    }
    return 1;
  }
  return 0;
}

static oftawq_layer *case_layer(grad_case *c)
{
  oftawq_layer *layer;
  const char *names[MAX_ADAPTERS];
  char active[128];
  size_t i, n;
  ck_assert_int_eq(oftawq_layer_create(ctx, &base_t, &layer), OFTAWQ_OK);
  for (i = 0; i < c->n_spec; i++) add_spec(layer, &c->spec[i]);
  snprintf(active, sizeof active, "%s", c->active);
  n = split_names(active, names, MAX_ADAPTERS);
  ck_assert_int_eq(oftawq_layer_set_active(layer, names, n), OFTAWQ_OK);
  return layer;
}

/* One training forward and backward of a case: dx (host dtype array) and each trainable adapter's gradient. */
static void run_case(oftawq_layer *layer, const grad_case *c, void *dx, float **dw, float **dy_out)
{
  float *xf, *dyf;
  void *x = activations(c->dtype, c->rows, FK, c->xs, &xf), *dy = activations(c->dtype, c->rows, FN, c->ys, &dyf);
  void *y = malloc(c->rows * FN * 4), *y_plain = malloc(c->rows * FN * 4);
  size_t i;
  ck_assert_int_eq(oftawq_layer_zero_grad(layer), OFTAWQ_OK);
  ck_assert_msg(oftawq_layer_forward_train(layer, c->dtype, x, y, c->rows) == OFTAWQ_OK, "%s: %s", c->name,
                oftawq_context_last_error(ctx));
  ck_assert_int_eq(oftawq_layer_forward(layer, c->dtype, x, y_plain, c->rows), OFTAWQ_OK);
  ck_assert_msg(memcmp(y, y_plain, c->rows * FN * esize(c->dtype)) == 0, "%s: training forward != forward", c->name);
  ck_assert_msg(oftawq_layer_backward(layer, c->dtype, dy, dx, c->rows) == OFTAWQ_OK, "%s: %s", c->name,
                oftawq_context_last_error(ctx));
  for (i = 0; i < c->n_spec; i++) {
    dw[i] = NULL;
    if (!c->spec[i].trainable) continue;
    dw[i] = malloc(c->spec[i].count * sizeof(float) + 4);
    ck_assert_int_eq(oftawq_layer_get_grad(layer, c->spec[i].name, dw[i], c->spec[i].count), OFTAWQ_OK);
  }
  free_activations(x, xf);
  if (dy != dyf) free(dy);
  if (dy_out)
    *dy_out = dyf;
  else
    free(dyf);
  free(y);
  free(y_plain);
}

START_TEST(gradients_match_autograd)
{
  char *path = tu_srcpath("tests/fixtures/train/grad_cases.tsv");
  FILE *f = fopen(path, "r");
  grad_case c;
  int cases = 0;
  ck_assert_msg(f != NULL, "cannot open %s", path);
  while (next_grad_case(f, &c)) {
    char rel[128], *bin, *data;
    size_t len = 0, off = 0, i, r, checked = 0, es = esize(c.dtype);
    const int awq_w = strstr(c.name, "_awqw") != NULL; /* AutoAWQ's fp16 weight, not the exact one */
    oftawq_layer *layer = case_layer(&c);
    void *dx = malloc(c.rows * FK * es);
    float *dw[MAX_ADAPTERS], *dyf, *got, *want;
    double err, scale, tol;
    run_case(layer, &c, dx, dw, &dyf);
    snprintf(rel, sizeof rel, "tests/fixtures/train/%s.bin", c.name);
    bin = tu_srcpath(rel);
    data = tu_read_file(bin, &len);
    ck_assert_ptr_nonnull(data);
    for (r = 0; r < c.rows; r++) checked += checked_row(r, c.rows);
    got = malloc(checked * FK * sizeof *got);
    want = malloc(checked * FK * sizeof *want);
    for (r = 0, i = 0; r < c.rows; r++) {
      size_t k;
      double e2 = 0, w2 = 0;
      if (!checked_row(r, c.rows)) continue;
      for (k = 0; k < FK; k++, i++) {
        got[i] = element(c.dtype, dx, r * FK + k);
        want[i] = element(c.dtype, data, i);
        e2 += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        w2 += (double)want[i] * want[i];
      }
      if (awq_w) {
        /* Per row, in the 2-norm: AutoAWQ's fp16 weight (2^-12 of each term of dy . W^T, see awq_term_norm),
         * carried through the adapters' R^T (|R|_2 <= 1.05 for these weights), plus the exact-weight tolerance. */
        tol = awq_term_norm(dyf + r * FN) / 4096.0 * pow(1.05, (double)c.n_spec) +
              sqrt(w2) * (c.dtype == OFTAWQ_F16 ? (double)(c.n_spec + 1) / 2048.0 : 1e-5);
        ck_assert_msg(sqrt(e2) <= tol, "%s: dx row %zu: |error|_2 %g > %g", c.name, r, sqrt(e2), tol);
      }
    }
    if (!awq_w) {
      /* F32 differs from autograd by fp32 summation order only (N = 384 terms, then b per adapter): 1e-5 of
       * the largest element. F16 rounds g to fp16 after the AWQ layer and after each adapter, as PEFT does;
       * a different summation order can flip such a rounding (one fp16 ulp, 2^-11 relative) at each stage. */
      err = rel_error(got, want, checked * FK, &scale);
      tol = c.dtype == OFTAWQ_F32 ? 1e-5 : (double)(c.n_spec + 1) / 2048.0;
      ck_assert_msg(err <= tol, "%s: dx relative error %g > %g", c.name, err, tol);
    }
    off = checked * FK * es;
    for (i = 0; i < c.n_spec; i++) {
      if (!c.spec[i].trainable) continue;
      ck_assert_uint_le(off + c.spec[i].count * 4, len);
      err = rel_error(dw[i], (const float *)(const void *)(data + off), c.spec[i].count, &scale);
      /* dw = sums over rows (and blocks) of x times g, then the b x b products of dR -> dQ: with the exact weight
       * F32 agrees to fp32 rounding (1e-5 of the largest |dw|); with F16, g carries fp16 rounding flips (2^-11
       * per element) into dR; AutoAWQ's fp16 weight adds 2^-12 per term of g: 2^-10 of the largest |dw|. */
      tol = c.dtype == OFTAWQ_F32 && !awq_w ? 1e-5 : 1.0 / 1024.0;
      ck_assert_msg(err <= tol, "%s: dw of %s relative error %g > %g (largest |dw| %g)", c.name, c.spec[i].name, err,
                    tol, scale);
      off += c.spec[i].count * 4;
      free(dw[i]);
    }
    ck_assert_uint_eq(off, len);
    oftawq_layer_destroy(layer);
    free(got);
    free(want);
    free(dx);
    free(dyf);
    free(data);
    free(bin);
    cases++;
  }
  fclose(f);
  free(path);
  ck_assert_int_ge(cases, 20);
}
END_TEST

/* ------------------------------------------------------------------ optimizers against torch.optim */

/* Writes a gradient into a trainable adapter's buffer (what a backward would have accumulated). */
static void set_grad(oftawq_layer *layer, const char *name, const float *g, size_t count)
{
  cl_command_queue q;
  cl_mem buf = oftawq__oft_grad_buffer(oftawq_layer_adapter(layer, name));
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(oftawq_context_get_cl(ctx, NULL, &q, NULL), OFTAWQ_OK);
  ck_assert_int_eq(clEnqueueWriteBuffer(q, buf, CL_TRUE, 0, count * sizeof *g, g, 0, NULL, NULL), CL_SUCCESS);
}

/* The two parameters of tests/fixtures/train/optim.tsv: block_share adapters with b = 16 and b = 8. */
static const struct {
  const char *name;
  int b;
  size_t count;
  unsigned seed;
} optim_params[2] = {{"p", 16, 120, 7001}, {"q", 8, 28, 7002}};

static oftawq_layer *optim_layer(void)
{
  oftawq_layer *layer;
  size_t i;
  ck_assert_int_eq(oftawq_layer_create(ctx, &base_t, &layer), OFTAWQ_OK);
  for (i = 0; i < 2; i++) {
    oftawq_oft_config c;
    float *w = tu_random_floats(optim_params[i].count, 0.05f, optim_params[i].seed);
    oftawq_oft_config_init(&c);
    c.oft_block_size = optim_params[i].b;
    c.block_share = 1;
    ck_assert_int_eq(oftawq_layer_add_adapter(layer, optim_params[i].name, &c, w, optim_params[i].count), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_set_trainable(layer, optim_params[i].name, 1), OFTAWQ_OK);
    free(w);
  }
  return layer;
}

START_TEST(optimizer_steps_match_torch)
{
  char *path = tu_srcpath("tests/fixtures/train/optim.tsv"), line[512];
  FILE *f = fopen(path, "r");
  int cases = 0;
  ck_assert_ptr_nonnull(f);
  while (fgets(line, sizeof line, f)) {
    char name[64], kind[16], rel[128], *bin, *data;
    oftawq_optimizer_options o;
    oftawq_optimizer *opt;
    oftawq_layer *layer;
    size_t len = 0, off = 0, i, t;
    if (line[0] == '#') continue;
    oftawq_optimizer_options_init(&o);
    ck_assert_int_eq(sscanf(line, "%63s %15s %lf %lf %lf %lf %lf %lf", name, kind, &o.lr, &o.beta1, &o.beta2, &o.eps,
                            &o.weight_decay, &o.max_grad_norm),
                     8);
    o.kind = strcmp(kind, "sgd") ? OFTAWQ_OPTIMIZER_ADAMW : OFTAWQ_OPTIMIZER_SGD;
    snprintf(rel, sizeof rel, "tests/fixtures/train/%s.bin", name);
    bin = tu_srcpath(rel);
    data = tu_read_file(bin, &len);
    ck_assert_ptr_nonnull(data);
    layer = optim_layer();
    ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
    for (i = 0; i < 2; i++) ck_assert_int_eq(oftawq_optimizer_add(opt, layer, optim_params[i].name), OFTAWQ_OK);
    for (t = 0; t < 8; t++) {
      double norm;
      for (i = 0; i < 2; i++) {
        float *g = tu_random_floats(optim_params[i].count, 1.0f, 100u * optim_params[i].seed + (unsigned)t);
        set_grad(layer, optim_params[i].name, g, optim_params[i].count);
        free(g);
      }
      ck_assert_int_eq(oftawq_optimizer_step(opt, &norm), OFTAWQ_OK);
      ck_assert(norm > 0);
      for (i = 0; i < 2; i++) {
        float w[128];
        const float *want = (const float *)(const void *)(data + off);
        size_t k;
        ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layer, optim_params[i].name), w,
                                                optim_params[i].count),
                         OFTAWQ_OK);
        /* The same fp32 operations as torch's single-tensor AdamW / SGD with the scalars computed in double;
         * what may differ is the order inside torch's vectorised kernels and the clip norm's summation
         * order: 4 ulps (2^-23 relative) of the weight or of an update (about lr). */
        for (k = 0; k < optim_params[i].count; k++)
          ck_assert_msg(fabs((double)w[k] - want[k]) <= 4.8e-7 * (fabs(want[k]) + o.lr),
                        "%s step %zu param %zu[%zu]: %.9g vs %.9g", name, t, i, k, w[k], want[k]);
        off += optim_params[i].count * 4;
      }
    }
    ck_assert_uint_eq(off, len);
    oftawq_optimizer_destroy(opt);
    oftawq_layer_destroy(layer);
    free(data);
    free(bin);
    cases++;
  }
  fclose(f);
  free(path);
  ck_assert_int_eq(cases, 5);
}
END_TEST

/* Saving and restoring the state mid-run gives the same weights as an uninterrupted run. */
START_TEST(optimizer_state_resumes)
{
  oftawq_layer *a = optim_layer(), *b = optim_layer();
  oftawq_optimizer_options o;
  oftawq_optimizer *oa, *ob;
  float m[120], v[120], wa[120], wb[120];
  uint64_t step;
  size_t i, t;
  oftawq_optimizer_options_init(&o);
  o.lr = 0.05;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &oa), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &ob), OFTAWQ_OK);
  for (i = 0; i < 2; i++) {
    ck_assert_int_eq(oftawq_optimizer_add(oa, a, optim_params[i].name), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_optimizer_add(ob, b, optim_params[i].name), OFTAWQ_OK);
  }
  ck_assert_uint_eq(oftawq_optimizer_param_count(oa), 2);
  for (t = 0; t < 6; t++) {
    if (t == 3) { /* b resumes from a's state and weights, as a saved run would */
      for (i = 0; i < 2; i++) {
        size_t n = optim_params[i].count;
        ck_assert_int_eq(oftawq_optimizer_get_state(oa, i, m, v, n, &step), OFTAWQ_OK);
        ck_assert_uint_eq(step, 3);
        ck_assert_int_eq(oftawq_optimizer_set_state(ob, i, m, v, n, step), OFTAWQ_OK);
        ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(a, optim_params[i].name), wa, n), OFTAWQ_OK);
        ck_assert_int_eq(oftawq_layer_set_adapter_weights(b, optim_params[i].name, wa, n), OFTAWQ_OK);
      }
    }
    for (i = 0; i < 2; i++) {
      float *g = tu_random_floats(optim_params[i].count, 1.0f, 77u + (unsigned)(10 * t + i));
      set_grad(a, optim_params[i].name, g, optim_params[i].count);
      set_grad(b, optim_params[i].name, g, optim_params[i].count);
      free(g);
    }
    ck_assert_int_eq(oftawq_optimizer_step(oa, NULL), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_optimizer_step(ob, NULL), OFTAWQ_OK);
  }
  for (i = 0; i < 2; i++) {
    size_t n = optim_params[i].count;
    ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(a, optim_params[i].name), wa, n), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(b, optim_params[i].name), wb, n), OFTAWQ_OK);
    ck_assert_mem_eq(wa, wb, n * sizeof *wa);
  }
  oftawq_optimizer_destroy(oa);
  oftawq_optimizer_destroy(ob);
  oftawq_layer_destroy(a);
  oftawq_layer_destroy(b);
}
END_TEST

/* ------------------------------------------------------------------ training loops against PEFT + torch */

static double mse_and_grad(oftawq_dtype dtype, const void *y, const float *t, size_t n, void *dy)
{
  double loss;
  ck_assert_int_eq(oftawq_mse_loss(dtype, y, t, n, dy, &loss), OFTAWQ_OK);
  return loss;
}

START_TEST(training_loops_match_peft)
{
  char *path = tu_srcpath("tests/fixtures/train/loops.tsv"), line[512];
  FILE *f = fopen(path, "r");
  int cases = 0;
  ck_assert_ptr_nonnull(f);
  while (fgets(line, sizeof line, f)) {
    char name[64], dtype_s[8], kind[16], spec_s[256], rel[128], *bin, *data;
    size_t rows, len = 0, step, i;
    unsigned xs, ts;
    double lr;
    oftawq_dtype dtype;
    oftawq_optimizer_options o;
    oftawq_optimizer *opt;
    oftawq_layer *layer;
    adapter_spec sp;
    float *xf, *t, *w, *w0;
    void *x, *y, *dy;
    if (line[0] == '#') continue;
    ck_assert_int_eq(sscanf(line, "%63s %7s %zu %u %u %15s %lf %255s", name, dtype_s, &rows, &xs, &ts, kind, &lr, spec_s),
                     8);
    dtype = strcmp(dtype_s, "f16") ? OFTAWQ_F32 : OFTAWQ_F16;
    sp = parse_spec(spec_s);
    snprintf(rel, sizeof rel, "tests/fixtures/train/%s.bin", name);
    bin = tu_srcpath(rel);
    data = tu_read_file(bin, &len);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(oftawq_layer_create(ctx, &base_t, &layer), OFTAWQ_OK);
    add_spec(layer, &sp);
    w0 = malloc(sp.count * sizeof *w0); /* as added: COFT projected them */
    ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layer, sp.name), w0, sp.count), OFTAWQ_OK);
    oftawq_optimizer_options_init(&o);
    o.lr = lr;
    o.kind = strcmp(kind, "sgd") ? OFTAWQ_OPTIMIZER_ADAMW : OFTAWQ_OPTIMIZER_SGD;
    ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_optimizer_add(opt, layer, sp.name), OFTAWQ_OK);
    x = activations(dtype, rows, FK, xs, &xf);
    t = tu_random_floats(rows * FN, 1.0f, ts);
    y = malloc(rows * FN * 4);
    dy = malloc(rows * FN * 4);
    for (step = 0; step < 5; step++) {
      double loss, want;
      ck_assert_int_eq(oftawq_layer_forward_train(layer, dtype, x, y, rows), OFTAWQ_OK);
      loss = mse_and_grad(dtype, y, t, rows * FN, dy);
      memcpy(&want, data + 8 * step, 8);
      /* y agrees with PEFT's to fp16 rounding flips of single elements, which separate the trajectories
       * slowly (see below): 1e-4 of the loss. */
      ck_assert_msg(fabs(loss - want) <= 1e-4 * want, "%s step %zu: loss %.9g vs %.9g", name, step, loss, want);
      ck_assert_int_eq(oftawq_layer_backward(layer, dtype, dy, NULL, rows), OFTAWQ_OK);
      ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_OK);
      ck_assert_int_eq(oftawq_optimizer_zero_grad(opt), OFTAWQ_OK);
    }
    w = malloc(sp.count * sizeof *w);
    ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layer, sp.name), w, sp.count), OFTAWQ_OK);
    ck_assert_uint_eq(len, 40 + sp.count * 4);
    /* y is rounded to fp16 as AutoAWQ does; a different fp32 summation order flips single roundings (2^-11
     * of an element; with F16 activations also those of the rotated x), which moves the gradients by up to
     * 1e-4 relative: over five steps the trajectories separate by at most 2e-3 (F32) or 1e-2 (F16) of the
     * distance the weights moved. */
    {
      double worst = 0, moved = 0;
      for (i = 0; i < sp.count; i++) {
        float want = ((const float *)(const void *)(data + 40))[i];
        if (fabs((double)w[i] - want) > worst) worst = fabs((double)w[i] - want);
        if (fabs((double)want - w0[i]) > moved) moved = fabs((double)want - w0[i]);
      }
      ck_assert_msg(worst <= (dtype == OFTAWQ_F32 ? 2e-3 : 1e-2) * moved, "%s: weights differ by %g (moved %g)",
                    name, worst, moved);
    }
    oftawq_optimizer_destroy(opt);
    oftawq_layer_destroy(layer);
    free_activations(x, xf);
    free(t);
    free(y);
    free(dy);
    free(w);
    free(w0);
    free(data);
    free(bin);
    cases++;
  }
  fclose(f);
  free(path);
  ck_assert_int_eq(cases, 3);
}
END_TEST

/* The first gradient case with this name, from the fixture list. */
static grad_case find_case(const char *name)
{
  char *path = tu_srcpath("tests/fixtures/train/grad_cases.tsv");
  FILE *f = fopen(path, "r");
  grad_case c;
  int found = 0;
  ck_assert_ptr_nonnull(f);
  while (!found && next_grad_case(f, &c)) found = !strcmp(c.name, name);
  fclose(f);
  free(path);
  ck_assert_msg(found, "no case %s", name);
  return c;
}

/* Both training modes (keeping every adapter's input, or recomputing the inner ones) and both call forms
 * (host arrays, device buffers) give the same bits. */
START_TEST(modes_and_forms_agree)
{
  static const char *const names[] = {"three_abc_f32_m7", "three_cab_frozen_f16_m7", "two_ab_f16_m7"};
  size_t n;
  for (n = 0; n < sizeof names / sizeof names[0]; n++) {
    grad_case c = find_case(names[n]);
    oftawq_layer *layer = case_layer(&c);
    size_t es = esize(c.dtype), i, xb = c.rows * FK * es, yb = c.rows * FN * es;
    void *dx[3];
    float *dw[3][MAX_ADAPTERS], *xf, *dyf;
    void *x = activations(c.dtype, c.rows, FK, c.xs, &xf), *dy = activations(c.dtype, c.rows, FN, c.ys, &dyf);
    cl_context cc;
    cl_command_queue q;
    cl_mem bx, by, bdy, bdx;
    cl_event ev;
    cl_int err;
    size_t kept;
    for (i = 0; i < 3; i++) dx[i] = malloc(xb);
    run_case(layer, &c, dx[0], dw[0], NULL);
    kept = oftawq__layer_train_bytes(layer);
    ck_assert_int_eq(oftawq__layer_set_train_recompute(layer, 1), OFTAWQ_OK);
    run_case(layer, &c, dx[1], dw[1], NULL);
    /* one saved activation instead of one per adapter (the rotation scratch is two buffers either way) */
    if (c.n_spec >= 3) ck_assert_uint_lt(oftawq__layer_train_bytes(layer), kept);
    ck_assert_int_eq(oftawq__layer_set_train_recompute(layer, 0), OFTAWQ_OK);
    /* device buffers, with an event chain */
    ck_assert_int_eq(oftawq_context_get_cl(ctx, &cc, &q, NULL), OFTAWQ_OK);
    bx = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, xb, x, &err);
    by = clCreateBuffer(cc, CL_MEM_READ_WRITE, yb, NULL, &err);
    bdy = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, yb, dy, &err);
    bdx = clCreateBuffer(cc, CL_MEM_READ_WRITE, xb, NULL, &err);
    ck_assert(bx && by && bdy && bdx);
    ck_assert_int_eq(oftawq_layer_zero_grad(layer), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_forward_train_cl(layer, c.dtype, bx, by, c.rows, 0, NULL, &ev), OFTAWQ_OK);
    ck_assert_ptr_nonnull(ev);
    ck_assert_int_eq(oftawq_layer_backward_cl(layer, c.dtype, bdy, bdx, c.rows, 1, &ev, NULL), OFTAWQ_OK);
    clReleaseEvent(ev);
    ck_assert_int_eq(clEnqueueReadBuffer(q, bdx, CL_TRUE, 0, xb, dx[2], 0, NULL, NULL), CL_SUCCESS);
    for (i = 0; i < c.n_spec; i++) {
      dw[2][i] = NULL;
      if (!c.spec[i].trainable) continue;
      dw[2][i] = malloc(c.spec[i].count * sizeof(float));
      ck_assert_int_eq(oftawq_layer_get_grad(layer, c.spec[i].name, dw[2][i], c.spec[i].count), OFTAWQ_OK);
    }
    ck_assert_mem_eq(dx[0], dx[1], xb);
    ck_assert_mem_eq(dx[0], dx[2], xb);
    for (i = 0; i < c.n_spec; i++) {
      if (!c.spec[i].trainable) continue;
      ck_assert_mem_eq(dw[0][i], dw[1][i], c.spec[i].count * sizeof(float));
      ck_assert_mem_eq(dw[0][i], dw[2][i], c.spec[i].count * sizeof(float));
      free(dw[0][i]);
      free(dw[1][i]);
      free(dw[2][i]);
    }
    clReleaseMemObject(bx);
    clReleaseMemObject(by);
    clReleaseMemObject(bdy);
    clReleaseMemObject(bdx);
    for (i = 0; i < 3; i++) free(dx[i]);
    free_activations(x, xf);
    free_activations(dy, dyf);
    oftawq_layer_destroy(layer);
  }
}
END_TEST

/* Gradients accumulate over backward calls until zeroed; without dx the adapters' gradients are the same. */
START_TEST(gradients_accumulate)
{
  grad_case c = find_case("n5_f32_m7");
  oftawq_layer *layer = case_layer(&c);
  float *xf, *dyf, *once = malloc(c.spec[0].count * 4), *twice = malloc(c.spec[0].count * 4);
  void *x = activations(c.dtype, c.rows, FK, c.xs, &xf), *dy = activations(c.dtype, c.rows, FN, c.ys, &dyf);
  float *y = malloc(c.rows * FN * 4);
  size_t i, r;
  int t;
  for (r = 0; r < 2; r++) {
    ck_assert_int_eq(oftawq_layer_forward_train(layer, c.dtype, x, y, c.rows), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_backward(layer, c.dtype, dy, NULL, c.rows), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_get_grad(layer, "a", r ? twice : once, c.spec[0].count), OFTAWQ_OK);
  }
  for (i = 0; i < c.spec[0].count; i++) ck_assert_float_eq(twice[i], once[i] + once[i]);
  ck_assert_int_eq(oftawq_layer_zero_grad(layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_get_grad(layer, "a", twice, c.spec[0].count), OFTAWQ_OK);
  for (i = 0; i < c.spec[0].count; i++) ck_assert_float_eq(twice[i], 0.0f);
  ck_assert_int_eq(oftawq_layer_is_trainable(layer, "a", &t), OFTAWQ_OK);
  ck_assert_int_eq(t, 1);
  ck_assert_int_eq(oftawq_layer_set_trainable(layer, "a", 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_is_trainable(layer, "a", &t), OFTAWQ_OK);
  ck_assert_int_eq(t, 0);
  ck_assert_int_eq(oftawq_layer_get_grad(layer, "a", twice, c.spec[0].count), OFTAWQ_E_INVALID_ARGUMENT);
  /* a frozen layer still gives dx */
  ck_assert_int_eq(oftawq_layer_forward_train(layer, c.dtype, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, c.dtype, dy, xf, c.rows), OFTAWQ_OK);
  free(once);
  free(twice);
  free(y);
  free_activations(x, xf);
  free_activations(dy, dyf);
  oftawq_layer_destroy(layer);
}
END_TEST

/* An out-of-order queue of the caller's gives the same results (the steps are ordered by barriers). */
START_TEST(out_of_order_queue)
{
  grad_case c = find_case("two_ab_f16_m7");
  oftawq_context *own = ctx, *ooo;
  cl_context cc;
  cl_device_id dev;
  cl_command_queue q;
  cl_int err;
  oftawq_layer *layer;
  void *dx[2];
  float *dw[2][MAX_ADAPTERS];
  size_t i, xb = c.rows * FK * 2;
  ck_assert_int_eq(oftawq_context_get_cl(own, &cc, NULL, &dev), OFTAWQ_OK);
  q = clCreateCommandQueue(cc, dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
  if (!q) { /* the device refuses out-of-order queues: nothing to check */
    ck_assert_int_eq(err, CL_INVALID_QUEUE_PROPERTIES);
    return;
  }
  ck_assert_int_eq(oftawq_context_create_from_cl(NULL, cc, q, &ooo), OFTAWQ_OK);
  for (i = 0; i < 2; i++) {
    dx[i] = malloc(xb);
    ctx = i ? ooo : own;
    layer = case_layer(&c);
    run_case(layer, &c, dx[i], dw[i], NULL);
    oftawq_layer_destroy(layer);
  }
  ctx = own;
  ck_assert_mem_eq(dx[0], dx[1], xb);
  for (i = 0; i < c.n_spec; i++) {
    ck_assert_mem_eq(dw[0][i], dw[1][i], c.spec[i].count * sizeof(float));
    free(dw[0][i]);
    free(dw[1][i]);
  }
  free(dx[0]);
  free(dx[1]);
  oftawq_context_destroy(ooo);
  clReleaseCommandQueue(q);
}
END_TEST

/* ------------------------------------------------------------------ saving */

#define MODULE "model.layers.0.self_attn.q_proj"

/* Reads a whole file that must exist. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
  char path[4096], *data;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  data = tu_read_file(path, len);
  ck_assert_msg(data != NULL, "cannot read %s", path);
  return data;
}

static int exists(const char *dir, const char *name)
{
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return stat(path, &st) == 0;
}

/* Removes a test folder and everything below it. */
static void rm_tree(char *dir)
{
  char cmd[4300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(dir);
}

/* Files in a folder (hidden temporary ones included). */
static int count_files(const char *dir)
{
  char cmd[4200];
  FILE *p;
  int n = -1;
  snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
  p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(fscanf(p, "%d", &n), 1);
  pclose(p);
  return n;
}

START_TEST(save_then_load_bit_for_bit)
{
  grad_case c = find_case("three_abc_f32_m7");
  oftawq_layer *layer = case_layer(&c), *other = case_layer(&c);
  oftawq_layer *layers[2];
  const char *modules[2] = {MODULE, "model.layers.1.self_attn.q_proj"};
  char *dir = tu_tempdir("save"), sub[4200];
  oftawq_optimizer_options o;
  oftawq_optimizer *opt;
  oftawq_adapter_file *a;
  oftawq_oft_config cfg;
  float *xf, *dyf, *w = malloc(c.spec[0].count * 4), *y = malloc(c.rows * FN * 4);
  const float *loaded;
  void *x = activations(c.dtype, c.rows, FK, c.xs, &xf), *dy = activations(c.dtype, c.rows, FN, c.ys, &dyf);
  size_t rows, cols, m;
  /* a trained adapter: one step */
  oftawq_optimizer_options_init(&o);
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "a"), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, c.dtype, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, c.dtype, dy, NULL, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_OK);
  layers[0] = layer;
  layers[1] = other;
  snprintf(sub, sizeof sub, "%s/a", dir);
  ck_assert_msg(oftawq_adapter_save(sub, "a", modules, layers, 2, NULL) == OFTAWQ_OK, "%s",
                oftawq_context_last_error(ctx));
  ck_assert_int_eq(oftawq_adapter_open(sub, &a, NULL, 0), OFTAWQ_OK);
  oftawq_oft_config_init(&cfg);
  ck_assert_int_eq(oftawq_adapter_config(a, &cfg), OFTAWQ_OK);
  ck_assert_int_eq(cfg.oft_block_size, 32);
  ck_assert_int_eq(cfg.use_cayley_neumann, 1);
  ck_assert_str_eq(cfg.peft_version, OFTAWQ_PEFT_VERSION_CURRENT);
  for (m = 0; m < 2; m++) {
    ck_assert_int_eq(oftawq_adapter_weights(a, modules[m], &loaded, &rows, &cols, NULL, 0), OFTAWQ_OK);
    ck_assert_uint_eq(rows * cols, c.spec[0].count);
    ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layers[m], "a"), w, c.spec[0].count), OFTAWQ_OK);
    ck_assert_mem_eq(loaded, w, c.spec[0].count * sizeof *w);
  }
  oftawq_adapter_close(a);
  /* adapters of another config cannot share a folder; a missing adapter is NOT_FOUND; nothing is written */
  snprintf(sub, sizeof sub, "%s/b", dir);
  layers[1] = layer;
  ck_assert_int_eq(oftawq_adapter_save(sub, "b", modules, layers, 1, NULL), OFTAWQ_OK);
  {
    const char *mixed[2] = {"x", "y"};
    oftawq_layer *pair[2];
    oftawq_layer *lone;
    oftawq_oft_config c2;
    snprintf(sub, sizeof sub, "%s/mixed", dir);
    ck_assert_int_eq(oftawq_layer_create(ctx, &base_t, &lone), OFTAWQ_OK);
    oftawq_oft_config_init(&c2);
    c2.oft_block_size = 16;
    ck_assert_int_eq(oftawq_layer_add_adapter(lone, "a", &c2, NULL, 0), OFTAWQ_OK);
    pair[0] = layer;
    pair[1] = lone;
    ck_assert_int_eq(oftawq_adapter_save(sub, "a", mixed, pair, 2, NULL), OFTAWQ_E_INVALID_ARGUMENT);
    ck_assert_int_eq(oftawq_adapter_save(sub, "zz", mixed, pair, 1, NULL), OFTAWQ_E_NOT_FOUND);
    ck_assert(!exists(dir, "mixed"));
    oftawq_layer_destroy(lone);
  }
  /* the pre-0.18 formula is named so */
  {
    oftawq_layer *old;
    oftawq_oft_config lc;
    oftawq_oft_shape s;
    snprintf(sub, sizeof sub, "%s/legacy", dir);
    oftawq_oft_config_init(&lc);
    lc.peft_version = "0.17.0";
    ck_assert_int_eq(oftawq_layer_create(ctx, &base_t, &old), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_add_adapter(old, "default", &lc, NULL, 0), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_adapter_save(sub, "default", modules, &old, 1, NULL), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_adapter_open(sub, &a, NULL, 0), OFTAWQ_OK);
    oftawq_oft_config_init(&cfg);
    oftawq_adapter_config(a, &cfg);
    ck_assert_str_eq(cfg.peft_version, OFTAWQ_PEFT_VERSION_LEGACY);
    oftawq_oft_shape_init(&s);
    ck_assert_int_eq(oftawq_oft_resolve(&cfg, FK, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
    ck_assert_int_eq(s.legacy_neumann, 1);
    oftawq_adapter_close(a);
    oftawq_layer_destroy(old);
  }
  oftawq_optimizer_destroy(opt);
  oftawq_layer_destroy(layer);
  oftawq_layer_destroy(other);
  free(w);
  free(y);
  free_activations(x, xf);
  free_activations(dy, dyf);
  rm_tree(dir);
}
END_TEST

/* tests/fixtures/train/saved was written by oftawq train; PEFT loaded it (tests/gen/gen_train.py --check-saved)
 * and its forward is saved_y_peft. Our forward with it matches, and writing its weights again gives the
 * same bytes (so the folder is what the current code writes). */
START_TEST(saved_folder_loads_in_peft)
{
  char *model = tu_srcpath("tests/fixtures/real/neumann_f32/model"), *saved = tu_srcpath("tests/fixtures/train/saved");
  char *xpath = tu_srcpath("tests/fixtures/train/qerr/x.safetensors");
  char *ypath = tu_srcpath("tests/fixtures/train/saved_y_peft.safetensors"), *dir = tu_tempdir("resave");
  const char *dirs[1] = {saved};
  oftawq_layer *layer;
  oftawq_safetensors *xs, *ys;
  oftawq_tensor xt, yt;
  oftawq_adapter_file *a;
  oftawq_adapter_module m;
  oftawq_oft_config cfg;
  const float *w, *x, *ypeft;
  float *y;
  size_t rows, cols, n, i, j, la, lb;
  int f;
  ck_assert_int_eq(oftawq_layer_load(ctx, model, MODULE, dirs, NULL, 1, &layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_open(xpath, &xs, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_open(ypath, &ys, NULL, 0), OFTAWQ_OK);
  oftawq_tensor_init(&xt);
  oftawq_tensor_init(&yt);
  ck_assert_int_eq(oftawq_safetensors_find(xs, "x", &xt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_find(ys, "y", &yt), OFTAWQ_OK);
  n = (size_t)yt.shape[0];
  x = xt.data;
  ypeft = yt.data;
  y = malloc(n * FN * sizeof *y);
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y, n), OFTAWQ_OK);
  for (i = 0; i < n; i++) {
    double xn = 0;
    for (j = 0; j < FK; j++) xn += (double)x[i * FK + j] * x[i * FK + j];
    for (j = 0; j < FN; j++) {
      double colw = 0, tol;
      size_t k;
      for (k = 0; k < FK; k++) colw += abs_w[k * FN + j] * abs_w[k * FN + j];
      /* as check_layer: AutoAWQ's fp16 weight and fp16 rounding of x' (2^-11 |x| |W[:, n]|), one fp16 ulp of y */
      tol = sqrt(xn) * sqrt(colw) / 2048.0 + fabs(ypeft[i * FN + j]) / 1024.0 + 1e-6;
      ck_assert_msg(fabs((double)y[i * FN + j] - ypeft[i * FN + j]) <= tol, "y[%zu][%zu]: %g vs PEFT %g", i, j,
                    y[i * FN + j], ypeft[i * FN + j]);
    }
  }
  /* the same bytes again */
  ck_assert_int_eq(oftawq_adapter_open(saved, &a, NULL, 0), OFTAWQ_OK);
  oftawq_oft_config_init(&cfg);
  oftawq_adapter_config(a, &cfg);
  ck_assert_int_eq(oftawq_adapter_weights(a, MODULE, &w, &rows, &cols, NULL, 0), OFTAWQ_OK);
  oftawq_adapter_module_init(&m);
  m.module = MODULE;
  m.weights = w;
  m.rows = rows;
  m.cols = cols;
  ck_assert_int_eq(oftawq_adapter_write(dir, &cfg, &m, 1, NULL, NULL, 0), OFTAWQ_OK);
  for (f = 0; f < 2; f++) {
    const char *name = f ? "adapter_config.json" : "adapter_model.safetensors";
    char *mine = slurp(dir, name, &la), *theirs = slurp(saved, name, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(mine, theirs, la);
    free(mine);
    free(theirs);
  }
  ck_assert_int_eq(count_files(dir), 2); /* no temporary files left */
  oftawq_adapter_close(a);
  oftawq_safetensors_close(xs);
  oftawq_safetensors_close(ys);
  oftawq_layer_destroy(layer);
  tu_rmdir(dir);
  free(dir);
  free(y);
  free(model);
  free(saved);
  free(xpath);
  free(ypath);
}
END_TEST

/* ------------------------------------------------------------------ bad input */

START_TEST(bad_training_calls)
{
  grad_case c = find_case("n5_f32_m7");
  oftawq_layer *layer = case_layer(&c);
  float *xf, *dyf, *y = malloc(c.rows * FN * 4), *dx = malloc(c.rows * FK * 4), w[16];
  void *x = activations(c.dtype, c.rows, FK, c.xs, &xf), *dy = activations(c.dtype, c.rows, FN, c.ys, &dyf);
  float *before = malloc(c.spec[0].count * 4), *after = malloc(c.spec[0].count * 4);
  oftawq_optimizer_options o;
  oftawq_optimizer *opt;
  cl_context cc;
  cl_mem small;
  cl_int err;
  int t;
  /* NULLs and unknown names */
  ck_assert_int_eq(oftawq_layer_set_trainable(NULL, "a", 1), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_set_trainable(layer, "nope", 1), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_layer_set_trainable(layer, NULL, 1), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_layer_is_trainable(layer, "a", NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_is_trainable(NULL, "a", &t), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_get_grad(layer, "a", w, 16), OFTAWQ_E_INVALID_ARGUMENT); /* wrong count */
  ck_assert_int_eq(oftawq_layer_get_grad(layer, "a", NULL, c.spec[0].count), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_zero_grad(NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_train(NULL, OFTAWQ_F32, x, y, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, NULL, y, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, (oftawq_dtype)7, x, y, c.rows), OFTAWQ_E_UNSUPPORTED);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_BF16, x, y, c.rows), OFTAWQ_E_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "F32 or F16"));
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_BF16, dy, dx, c.rows), OFTAWQ_E_UNSUPPORTED);
  ck_assert_int_eq(oftawq_layer_backward(NULL, OFTAWQ_F32, dy, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, NULL, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_backward(layer, (oftawq_dtype)7, dy, dx, c.rows), OFTAWQ_E_UNSUPPORTED);
  ck_assert_int_eq(oftawq_layer_backward_cl(NULL, OFTAWQ_F32, NULL, NULL, 1, 0, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_train_cl(NULL, OFTAWQ_F32, NULL, NULL, 1, 0, NULL, NULL),
                   OFTAWQ_E_INVALID_ARGUMENT);
  /* backward without a training forward, after a plain forward, twice, with other rows or dtype */
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "without a training forward"));
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, c.rows - 1), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F16, dy, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  /* buffers too small for the rows */
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cc, NULL, NULL), OFTAWQ_OK);
  small = clCreateBuffer(cc, CL_MEM_READ_WRITE, 64, NULL, &err);
  ck_assert_int_eq(oftawq_layer_forward_train_cl(layer, OFTAWQ_F32, small, small, c.rows, 0, NULL, NULL),
                   OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_layer_backward_cl(layer, OFTAWQ_F32, small, NULL, c.rows, 0, NULL, NULL),
                   OFTAWQ_E_INVALID_ARGUMENT);
  clReleaseMemObject(small);
  /* the weights or the active list changed between forward and backward */
  oftawq_optimizer_options_init(&o);
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "a"), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "weights changed"));
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_enable_adapters(layer, 1), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, c.rows), OFTAWQ_E_INVALID_ARGUMENT);
  /* non-finite gradients: the step refuses and the weights stay */
  ck_assert_int_eq(oftawq_optimizer_zero_grad(opt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layer, "a"), before, c.spec[0].count), OFTAWQ_OK);
  ((float *)dy)[3] = NAN;
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, NULL, c.rows), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "not finite"));
  ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layer, "a"), after, c.spec[0].count), OFTAWQ_OK);
  ck_assert_mem_eq(before, after, c.spec[0].count * 4);
  /* parameters that went away */
  ck_assert_int_eq(oftawq_layer_set_trainable(layer, "a", 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_zero_grad(opt), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_optimizer_destroy(opt);
  oftawq_layer_destroy(layer);
  free(before);
  free(after);
  free(y);
  free(dx);
  free_activations(x, xf);
  free_activations(dy, dyf);
}
END_TEST

START_TEST(bad_optimizer_calls)
{
  oftawq_layer *layer = optim_layer(), *frozen;
  oftawq_optimizer_options o;
  oftawq_optimizer *opt = (oftawq_optimizer *)&o;
  oftawq_oft_config c;
  float m[120], v[120];
  uint64_t step;
  oftawq_optimizer_options_init(&o);
  ck_assert_int_eq(oftawq_optimizer_create(NULL, &o, &opt), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_create(ctx, NULL, &opt), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(opt);
  o.size = 8;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_optimizer_options_init(&o);
  o.lr = NAN;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_optimizer_options_init(&o);
  o.beta2 = 1.0;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_optimizer_options_init(&o);
  o.max_grad_norm = -1;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_optimizer_options_init(&o);
  o.kind = (oftawq_optimizer_kind)9;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_optimizer_options_init(&o);
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_add(NULL, layer, "p"), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_add(opt, NULL, "p"), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "nope"), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "p"), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "p"), OFTAWQ_E_EXISTS);
  ck_assert_int_eq(oftawq_layer_create(ctx, &base_t, &frozen), OFTAWQ_OK);
  oftawq_oft_config_init(&c);
  ck_assert_int_eq(oftawq_layer_add_adapter(frozen, "f", &c, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_add(opt, frozen, "f"), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_get_state(opt, 1, m, v, 120, &step), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_get_state(opt, 0, m, v, 119, &step), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_get_state(opt, 0, m, v, 120, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_get_state(opt, 0, m, v, 120, &step), OFTAWQ_OK);
  ck_assert_uint_eq(step, 0);
  v[5] = -1;
  ck_assert_int_eq(oftawq_optimizer_set_state(opt, 0, m, v, 120, 3), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_set_state(NULL, 0, m, v, 120, 3), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_step(NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_zero_grad(NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_uint_eq(oftawq_optimizer_param_count(NULL), 0);
  oftawq_optimizer_destroy(opt);
  oftawq_optimizer_destroy(NULL);
  /* SGD keeps no state */
  o.kind = OFTAWQ_OPTIMIZER_SGD;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "q"), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_get_state(opt, 0, NULL, NULL, 0, &step), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_get_state(opt, 0, m, v, 28, &step), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_optimizer_set_state(opt, 0, NULL, NULL, 0, 4), OFTAWQ_OK);
  oftawq_optimizer_destroy(opt);
  oftawq_layer_destroy(frozen);
  oftawq_layer_destroy(layer);
}
END_TEST

START_TEST(bad_saves)
{
  char *dir = tu_tempdir("badsave"), path[4200], *before, *after;
  float w[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  oftawq_adapter_module m;
  oftawq_adapter_save_options so;
  oftawq_oft_config c;
  const char *targets[1] = {"q_proj"};
  size_t lb, la;
  FILE *f;
  oftawq_oft_config_init(&c);
  oftawq_adapter_module_init(&m);
  m.module = MODULE;
  m.weights = w;
  m.rows = 1;
  m.cols = 4;
  oftawq_adapter_save_options_init(&so);
  /* argument checks before anything is written */
  ck_assert_int_eq(oftawq_adapter_write(NULL, &c, &m, 1, NULL, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_adapter_write(dir, NULL, &m, 1, NULL, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_adapter_write(dir, &c, NULL, 1, NULL, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_adapter_write(dir, &c, &m, 0, NULL, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  so.n_target_modules = 1;
  ck_assert_int_eq(oftawq_adapter_write(dir, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  so.target_modules = targets;
  c.size = 4;
  ck_assert_int_eq(oftawq_adapter_write(dir, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_oft_config_init(&c);
  c.r = 4;
  ck_assert_int_eq(oftawq_adapter_write(dir, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  c.r = 0;
  c.peft_version = "not a version";
  ck_assert_int_eq(oftawq_adapter_write(dir, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  c.peft_version = NULL;
  w[2] = INFINITY;
  ck_assert_int_eq(oftawq_adapter_write(dir, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  w[2] = 0.3f;
  {
    oftawq_adapter_module two[2];
    two[0] = two[1] = m;
    ck_assert_int_eq(oftawq_adapter_write(dir, &c, two, 2, &so, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  }
  ck_assert_int_eq(count_files(dir), 0);
  ck_assert_int_eq(oftawq_adapter_save(dir, "a", NULL, NULL, 1, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  /* a folder under a regular file cannot be made: E_IO, nothing left */
  snprintf(path, sizeof path, "%s/file", dir);
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  snprintf(path, sizeof path, "%s/file/adapter", dir);
  ck_assert_int_eq(oftawq_adapter_write(path, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_IO);
  snprintf(path, sizeof path, "%s/file", dir);
  ck_assert_int_eq(oftawq_adapter_write(path, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_IO);
  ck_assert_int_eq(oftawq_adapter_write("/proc/self", &c, &m, 1, &so, NULL, 0), OFTAWQ_E_IO);
  ck_assert_int_eq(count_files(dir), 1);
  /* an existing folder keeps its files when the new ones cannot replace them */
  snprintf(path, sizeof path, "%s/out", dir);
  ck_assert_int_eq(oftawq_adapter_write(path, &c, &m, 1, &so, NULL, 0), OFTAWQ_OK);
  before = slurp(path, "adapter_model.safetensors", &lb);
  snprintf(path, sizeof path, "%s/out/adapter_config.json", dir);
  ck_assert_int_eq(remove(path), 0);
  ck_assert_int_eq(mkdir(path, 0755), 0); /* in the way of the config file */
  w[0] = 0.9f;
  snprintf(path, sizeof path, "%s/out", dir);
  ck_assert_int_eq(oftawq_adapter_write(path, &c, &m, 1, &so, NULL, 0), OFTAWQ_E_IO);
  after = slurp(path, "adapter_model.safetensors", &la);
  ck_assert_uint_eq(la, lb);
  ck_assert_mem_eq(before, after, la);
  ck_assert_int_eq(count_files(path), 2);
  free(before);
  free(after);
  rm_tree(dir);
}
END_TEST

START_TEST(loss_checks)
{
  float y[3] = {1.0f, 2.0f, 3.0f}, t[3] = {1.0f, 1.0f, 1.0f}, dy[3];
  double loss;
  ck_assert_int_eq(oftawq_mse_loss(OFTAWQ_F32, y, t, 3, dy, &loss), OFTAWQ_OK);
  ck_assert_double_eq_tol(loss, 5.0 / 3.0, 1e-6);
  ck_assert_float_eq_tol(dy[2], 4.0f / 3.0f, 1e-6f);
  ck_assert_int_eq(oftawq_mse_loss(OFTAWQ_F32, y, t, 3, NULL, &loss), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_mse_loss(OFTAWQ_F32, y, t, 3, dy, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_mse_loss(OFTAWQ_F32, NULL, t, 3, dy, &loss), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_mse_loss((oftawq_dtype)5, y, t, 3, dy, &loss), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_mse_loss(OFTAWQ_F32, NULL, NULL, 0, NULL, &loss), OFTAWQ_OK);
  ck_assert_double_eq(loss, 0.0);
}
END_TEST

/* ------------------------------------------------------------------ small shapes against a C reference */

/* A tiny layer (K = 48, N = 16, G = 16, M = 3) with three trainable adapters on every path (exact, b = 6;
 * Neumann with block_share and COFT, b = 12; the pre-0.18 formula, b = 3 - so the vector kernels run with 2, 4
 * and 1 columns per work-item), checked against the backward of SPEC 12 in double written out here
 * independently of the library's recursion: dQ = sum_k c_k sum_{j<k} (Q^j)^T dR (Q^(k-1-j))^T for Neumann,
 * -1/2 (R+I)^T dR (R+I)^T for exact. Small enough for oclgrind (see tests/oclgrind_train.sh). */
#define SK 48
#define SN 16
#define SG 16
#define SM 3

typedef struct small {
  int32_t qw[SK * SN / 8], qz[(SK / SG) * SN / 8];
  uint16_t sc[(SK / SG) * SN], bias[SN];
  oftawq_awq_tensors t;
} small;

static void small_layer_tensors(small *sm)
{
  tu_rng r;
  size_t i;
  tu_rng_seed(&r, 4242);
  for (i = 0; i < sizeof sm->qw / 4; i++) sm->qw[i] = (int32_t)tu_rng_u32(&r);
  for (i = 0; i < sizeof sm->qz / 4; i++) sm->qz[i] = (int32_t)tu_rng_u32(&r);
  for (i = 0; i < sizeof sm->sc / 2; i++) sm->sc[i] = oftawq__float_to_half(tu_rng_uniform(&r, 0.01f, 0.05f));
  for (i = 0; i < SN; i++) sm->bias[i] = oftawq__float_to_half(tu_rng_uniform(&r, -1, 1));
  oftawq_awq_tensors_init(&sm->t);
  sm->t.K = SK;
  sm->t.N = SN;
  sm->t.G = SG;
  sm->t.qweight = sm->qw;
  sm->t.qzeros = sm->qz;
  sm->t.scales = sm->sc;
  sm->t.bias = sm->bias;
}

static double small_w(const small *sm, size_t k, size_t n)
{
  double q = oftawq__awq_nibble((uint32_t)sm->qw[k * (SN / 8) + n / 8], (unsigned)n & 7u);
  double z = oftawq__awq_nibble((uint32_t)sm->qz[(k / SG) * (SN / 8) + n / 8], (unsigned)n & 7u);
  return (q - z) * oftawq__half_to_float(sm->sc[(k / SG) * SN + n]);
}

static void dmul(const double *A, int ta, const double *B, int tb, double *C, int b)
{
  int i, j, k;
  for (i = 0; i < b; i++)
    for (j = 0; j < b; j++) {
      double acc = 0;
      for (k = 0; k < b; k++) acc += (ta ? A[k * b + i] : A[i * b + k]) * (tb ? B[j * b + k] : B[k * b + j]);
      C[i * b + j] = acc;
    }
}

/* SPEC 12's coefficients c_k of R = sum_k c_k Q^k (k >= 1); returns the highest power. */
static int spec_coefs(int n, int legacy, double *c)
{
  int k, last = n < 2 ? 0 : (!legacy && n == 3) ? 3 : n - 1;
  for (k = 1; k <= last; k++) c[k] = 2.0;
  if (!legacy && n > 2) c[last] = 1.0;
  return last;
}

/* dw of one adapter (weights w, R as the device built it) from dR, in double. */
static void reference_dw(const oftawq_oft_config *c, const oftawq_oft_shape *s, const float *w, const float *R,
                         const double *dR, double *dw)
{
  const int b = s->block_size, bb = b * b;
  double *dQ = calloc((size_t)bb, sizeof *dQ), *Q = malloc((size_t)bb * sizeof *Q), *T = malloc((size_t)bb * 8),
         *U = malloc((size_t)bb * 8), *P[16], coef[16];
  int row, i, j, k, last, m;
  ck_assert(dQ && Q && T && U);
  for (row = 0; row < s->weight_rows; row++) {
    const double *Gr = dR + (size_t)row * bb;
    memset(dQ, 0, (size_t)bb * sizeof *dQ);
    if (!c->use_cayley_neumann) { /* -1/2 S dR S, S = (R + I)^T */
      double *S = malloc((size_t)bb * sizeof *S);
      for (i = 0; i < b; i++)
        for (j = 0; j < b; j++) S[i * b + j] = R[(size_t)row * bb + j * b + i] + (i == j);
      dmul(S, 0, Gr, 0, T, b);
      dmul(T, 0, S, 0, U, b);
      for (i = 0; i < bb; i++) dQ[i] = -0.5 * U[i];
      free(S);
    } else {
      int legacy = 0;
      if (c->peft_version) oftawq__peft_legacy_neumann(c->peft_version, &legacy);
      last = spec_coefs(c->num_cayley_neumann_terms, legacy, coef);
      ck_assert_int_lt(last, 16);
      oftawq__ref_skew(w + (size_t)row * s->n_elements, b, Q);
      for (k = 0; k < last; k++) { /* P[k] = Q^k */
        P[k] = malloc((size_t)bb * sizeof(double));
        if (k == 0)
          for (i = 0; i < bb; i++) P[0][i] = (i % (b + 1)) == 0;
        else
          dmul(P[k - 1], 0, Q, 0, P[k], b);
      }
      for (k = 1; k <= last; k++)
        for (j = 0; j < k; j++) { /* c_k (Q^j)^T dR (Q^(k-1-j))^T */
          dmul(P[j], 1, Gr, 0, T, b);
          dmul(T, 0, P[k - 1 - j], 1, U, b);
          for (i = 0; i < bb; i++) dQ[i] += coef[k] * U[i];
        }
      for (k = 0; k < last; k++) free(P[k]);
    }
    for (i = 0, m = 0; i < b; i++)
      for (j = i + 1; j < b; j++, m++) dw[(size_t)row * s->n_elements + m] = dQ[i * b + j] - dQ[j * b + i];
  }
  free(dQ);
  free(Q);
  free(T);
  free(U);
}

START_TEST(small_shapes_against_c_reference)
{
  static const char *const names[3] = {"e", "n", "l"};
  small sm;
  oftawq_layer *layer;
  oftawq_oft_config c[3];
  oftawq_oft_shape sh[3];
  float x[SM * SK], dy[SM * SN], y[SM * SN], dx[SM * SK], *xs[4];
  double g[SM * SK], gn[SM * SK];
  oftawq_optimizer_options o;
  oftawq_optimizer *opt;
  size_t i, m, k, a;
  small_layer_tensors(&sm);
  ck_assert_int_eq(oftawq_layer_create(ctx, &sm.t, &layer), OFTAWQ_OK);
  for (a = 0; a < 3; a++) oftawq_oft_config_init(&c[a]);
  c[0].oft_block_size = 6, c[0].use_cayley_neumann = 0;
  c[1].oft_block_size = 12, c[1].block_share = 1, c[1].coft = 1, c[1].eps = 0.05, c[1].num_cayley_neumann_terms = 5;
  c[2].oft_block_size = 3, c[2].num_cayley_neumann_terms = 4, c[2].peft_version = "0.17.0";
  for (a = 0; a < 3; a++) {
    float *w;
    oftawq_oft_shape_init(&sh[a]);
    ck_assert_int_eq(oftawq_oft_resolve(&c[a], SK, NULL, NULL, &sh[a], NULL, 0), OFTAWQ_OK);
    w = tu_random_floats((size_t)sh[a].weight_rows * sh[a].n_elements, 0.1f, 60 + a);
    ck_assert_int_eq(oftawq_layer_add_adapter(layer, names[a], &c[a], w, (size_t)sh[a].weight_rows * sh[a].n_elements),
                     OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_set_trainable(layer, names[a], 1), OFTAWQ_OK);
    free(w);
  }
  ck_assert_int_eq(oftawq_layer_set_active(layer, names, 3), OFTAWQ_OK);
  tu_fill_random(x, SM * SK, 1.0f, 71);
  tu_fill_random(dy, SM * SN, 1.0f, 72);
  for (int recompute = 0; recompute < 2; recompute++) {
    float *R[3], *w[3];
    double *dR, *dw;
    ck_assert_int_eq(oftawq__layer_set_train_recompute(layer, recompute), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_zero_grad(layer), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, SM), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, dx, SM), OFTAWQ_OK);
    /* the reference: the adapters' inputs, then the backward */
    for (a = 0; a < 3; a++) {
      size_t nr = (size_t)sh[a].weight_rows * sh[a].block_size * sh[a].block_size, nw = (size_t)sh[a].weight_rows * sh[a].n_elements;
      R[a] = malloc(nr * 4);
      w[a] = malloc(nw * 4);
      ck_assert_int_eq(oftawq_oft_get_rotation(oftawq_layer_adapter(layer, names[a]), R[a], nr), OFTAWQ_OK);
      ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layer, names[a]), w[a], nw), OFTAWQ_OK);
    }
    xs[0] = malloc(sizeof x);
    memcpy(xs[0], x, sizeof x);
    for (a = 0; a < 3; a++) {
      int b = sh[a].block_size;
      xs[a + 1] = malloc(sizeof x);
      for (m = 0; m < SM; m++)
        for (k = 0; k < SK; k++) {
          size_t blk = k / (size_t)b, cc = k % (size_t)b, kk;
          const float *Rb = R[a] + (sh[a].weight_rows == 1 ? 0 : blk * (size_t)b * b);
          double acc = 0;
          for (kk = 0; kk < (size_t)b; kk++) acc += (double)xs[a][m * SK + blk * b + kk] * Rb[kk * b + cc];
          xs[a + 1][m * SK + k] = (float)acc; /* F32: no rounding, as the layer */
        }
    }
    for (m = 0; m < SM; m++)
      for (k = 0; k < SK; k++) {
        double acc = 0;
        size_t n;
        for (n = 0; n < SN; n++) acc += (double)dy[m * SN + n] * small_w(&sm, k, n);
        g[m * SK + k] = acc;
      }
    for (a = 3; a-- > 0;) {
      int b = sh[a].block_size, bb = b * b;
      size_t nw = (size_t)sh[a].weight_rows * sh[a].n_elements;
      float *got = malloc(nw * 4 + 4);
      dR = calloc((size_t)sh[a].weight_rows * bb, sizeof *dR);
      dw = calloc(nw + 1, sizeof *dw);
      for (m = 0; m < SM; m++)
        for (k = 0; k < SK; k++) {
          size_t blk = k / (size_t)b, kr = k % (size_t)b, cc, row = sh[a].weight_rows == 1 ? 0 : blk;
          for (cc = 0; cc < (size_t)b; cc++)
            dR[row * bb + kr * b + cc] += (double)xs[a][m * SK + k] * g[m * SK + blk * b + cc];
        }
      reference_dw(&c[a], &sh[a], w[a], R[a], dR, dw);
      ck_assert_int_eq(oftawq_layer_get_grad(layer, names[a], got, nw), OFTAWQ_OK);
      {
        double big = 0, err = 0;
        for (i = 0; i < nw; i++) {
          if (fabs(dw[i]) > big) big = fabs(dw[i]);
          if (fabs(dw[i] - got[i]) > err) err = fabs(dw[i] - got[i]);
        }
        /* fp32 sums of a few terms against double: 1e-5 of the largest element */
        ck_assert_msg(big > 0 && err <= 1e-5 * big, "adapter %s: dw error %g of %g", names[a], err, big);
      }
      for (m = 0; m < SM; m++) /* g = g . BD(R)^T */
        for (k = 0; k < SK; k++) {
          size_t blk = k / (size_t)b, kr = k % (size_t)b, cc;
          const float *Rb = R[a] + (sh[a].weight_rows == 1 ? 0 : blk * (size_t)bb);
          double acc = 0;
          for (cc = 0; cc < (size_t)b; cc++) acc += g[m * SK + blk * b + cc] * Rb[kr * b + cc];
          gn[m * SK + k] = acc;
        }
      memcpy(g, gn, sizeof g);
      free(got);
      free(dR);
      free(dw);
    }
    for (i = 0; i < SM * SK; i++) ck_assert_msg(fabs(dx[i] - g[i]) <= 1e-5 * (fabs(g[i]) + 1), "dx[%zu]: %g vs %g", i, dx[i], g[i]);
    for (a = 0; a < 4; a++) free(xs[a]);
    for (a = 0; a < 3; a++) {
      free(R[a]);
      free(w[a]);
    }
  }
  /* F16 activations run the F16 variants: the same gradients to fp16 rounding */
  {
    uint16_t xh[SM * SK], dyh[SM * SN], yh[SM * SN], dxh[SM * SK];
    for (i = 0; i < SM * SK; i++) xh[i] = oftawq__float_to_half(x[i]);
    for (i = 0; i < SM * SN; i++) dyh[i] = oftawq__float_to_half(dy[i]);
    ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F16, xh, yh, SM), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F16, dyh, dxh, SM), OFTAWQ_OK);
    for (i = 0; i < SM * SK; i++)
      ck_assert_msg(fabs(oftawq__half_to_float(dxh[i]) - dx[i]) <= 4e-3 * (fabs(dx[i]) + 0.1), "F16 dx[%zu]", i);
  }
  /* steps: AdamW with clipping, then SGD; COFT keeps the shared adapter's weights inside its radius */
  oftawq_optimizer_options_init(&o);
  o.lr = 0.05;
  o.max_grad_norm = 0.5;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
  for (a = 0; a < 3; a++) ck_assert_int_eq(oftawq_optimizer_add(opt, layer, names[a]), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_OK);
  oftawq_optimizer_destroy(opt);
  o.kind = OFTAWQ_OPTIMIZER_SGD;
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &o, &opt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "n"), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_OK);
  oftawq_optimizer_destroy(opt);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, SM), OFTAWQ_OK); /* projects first */
  {
    float w[66];
    double ss = 0;
    ck_assert_int_eq(oftawq_oft_get_weights(oftawq_layer_adapter(layer, "n"), w, 66), OFTAWQ_OK);
    for (i = 0; i < 66; i++) ss += (double)w[i] * w[i];
    ck_assert_msg(sqrt(2 * ss) <= 0.05 * (1 + 1e-5) && sqrt(2 * ss) >= 0.05 * (1 - 1e-5), "COFT: |Q|_F = %g", sqrt(2 * ss));
  }
  oftawq_layer_destroy(layer);
}
END_TEST

static Suite *train_suite(void)
{
  Suite *s = suite_create("train");
  TCase *t = tcase_create("fixtures");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_set_timeout(t, 600);
  tcase_add_test(t, gradients_match_autograd);
  tcase_add_test(t, optimizer_steps_match_torch);
  tcase_add_test(t, optimizer_state_resumes);
  tcase_add_test(t, training_loops_match_peft);
  tcase_add_test(t, modes_and_forms_agree);
  tcase_add_test(t, gradients_accumulate);
  tcase_add_test(t, out_of_order_queue);
  tcase_add_test(t, save_then_load_bit_for_bit);
  tcase_add_test(t, saved_folder_loads_in_peft);
  tcase_add_test(t, bad_training_calls);
  tcase_add_test(t, bad_optimizer_calls);
  tcase_add_test(t, bad_saves);
  suite_add_tcase(s, t);
  t = tcase_create("small");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_set_timeout(t, 600);
  tcase_add_test(t, small_shapes_against_c_reference);
  suite_add_tcase(s, t);
  t = tcase_create("host");
  tcase_add_test(t, loss_checks);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tu_run(train_suite()); }
