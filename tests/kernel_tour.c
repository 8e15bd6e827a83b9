/* kernel_tour.c: every kernel once on small shapes, each result checked - the AWQ paths (GEMV, GEMM, dense) with
 * F32, F16 and BF16 activations (also as CPU runtimes get them), the rotation (blocks of their own, shared blocks,
 * three adapters in a row, mixed batches), R by Neumann (both formulas) and exact Cayley on the device, every
 * plan the tuner tries, and the benchmark's fma reference. tests/oclgrind.sh runs it under oclgrind, whose
 * GPU-type device also takes the GPU defaults; natively it is a quick tour of the same code on the test device.
 * Exit status 0 when every check held. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oftawq.h"
#include "common/ref.h"
#include "engines/awq_repack.h"
#include "runtime/context.h"
#include "runtime/tuning.h"
#include "tools/peak.h"
#include "tools/tune.h"

enum { K = 128, N = 64, G = 32, MAX_ROWS = 40, N_ADAPTERS = 3 };

typedef struct adapter_spec {
  const char *name;
  int block_size, neumann, share, coft;
  const char *peft_version;
} adapter_spec;

/* Neumann (current formula), exact Cayley with one shared block, Neumann with PEFT < 0.18's formula and COFT. */
static const adapter_spec specs[N_ADAPTERS] = {
  {"neumann", 16, 1, 0, 0, NULL},
  {"exact", 32, 0, 1, 0, NULL},
  {"legacy", 16, 1, 0, 1, "0.17.1"},
};

static int failures;

static void fail(const char *fmt, const char *what, double a, double b)
{
  fprintf(stderr, "kernel_tour: ");
  fprintf(stderr, fmt, what, a, b);
  fputc('\n', stderr);
  failures++;
}

static float uniform(uint64_t *s, float scale)
{
  *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
  return scale * (float)((double)(*s >> 11) / 4503599627370496.0 - 1.0);
}

static float round_to(oftawq_dtype dtype, float v)
{
  if (dtype == OFTAWQ_F16) return oftawq__half_to_float(oftawq__float_to_half(v));
  if (dtype == OFTAWQ_BF16) return oftawq__bf16_to_float(oftawq__float_to_bf16(v));
  return v;
}

static void to_dtype(oftawq_dtype dtype, const float *v, size_t n, void *out)
{
  size_t i;
  for (i = 0; i < n; i++) {
    if (dtype == OFTAWQ_F32)
      ((float *)out)[i] = v[i];
    else
      ((uint16_t *)out)[i] = dtype == OFTAWQ_F16 ? oftawq__float_to_half(v[i]) : oftawq__float_to_bf16(v[i]);
  }
}

static void from_dtype(oftawq_dtype dtype, const void *in, size_t n, float *v)
{
  size_t i;
  for (i = 0; i < n; i++) {
    if (dtype == OFTAWQ_F32)
      v[i] = ((const float *)in)[i];
    else
      v[i] = dtype == OFTAWQ_F16 ? oftawq__half_to_float(((const uint16_t *)in)[i])
                                 : oftawq__bf16_to_float(((const uint16_t *)in)[i]);
  }
}

typedef struct tour {
  oftawq_context *ctx;
  oftawq_awq_tensors t;
  int32_t qweight[K * N / 8], qzeros[K / G * N / 8];
  uint16_t scales[K / G * N], bias[N];
  double col_norm[N];
  oftawq_layer *layer;
  double *R[N_ADAPTERS]; /* the reference rotations, in double */
  float x[MAX_ROWS * K];
} tour;

static void make_base(tour *t)
{
  uint64_t s = 11;
  size_t i, k, n;
  for (i = 0; i < sizeof t->qweight / sizeof t->qweight[0]; i++) t->qweight[i] = (int32_t)(uniform(&s, 1) * 2147483647.0f);
  for (i = 0; i < sizeof t->qzeros / sizeof t->qzeros[0]; i++) t->qzeros[i] = (int32_t)(uniform(&s, 1) * 2147483647.0f);
  for (i = 0; i < sizeof t->scales / sizeof t->scales[0]; i++) t->scales[i] = oftawq__float_to_half(0.015f + uniform(&s, 0.005f));
  for (i = 0; i < N; i++) t->bias[i] = oftawq__float_to_half(uniform(&s, 0.5f));
  for (i = 0; i < MAX_ROWS * K; i++) t->x[i] = uniform(&s, 1);
  oftawq_awq_tensors_init(&t->t);
  t->t.K = K;
  t->t.N = N;
  t->t.G = G;
  t->t.qweight = t->qweight;
  t->t.qzeros = t->qzeros;
  t->t.scales = t->scales;
  t->t.bias = t->bias;
  for (n = 0; n < N; n++) {
    double ss = 0;
    for (k = 0; k < K; k++) {
      double q = oftawq__awq_nibble((uint32_t)t->qweight[k * (N / 8) + n / 8], (unsigned)n & 7u);
      double z = oftawq__awq_nibble((uint32_t)t->qzeros[(k / G) * (N / 8) + n / 8], (unsigned)n & 7u);
      double w = (q - z) * oftawq__half_to_float(t->scales[(k / G) * N + n]);
      ss += w * w;
    }
    t->col_norm[n] = sqrt(ss);
  }
}

/* Adds the adapters and checks each R the device built against the reference Cayley of its (projected) weights. */
static int add_adapters(tour *t)
{
  int a;
  for (a = 0; a < N_ADAPTERS; a++) {
    const adapter_spec *sp = &specs[a];
    oftawq_oft_config c;
    oftawq_oft_shape shape;
    oftawq_oft *oft;
    int rows, b = sp->block_size, n_el = b * (b - 1) / 2, i, blk;
    float *w, *R;
    uint64_t s = 100 + (uint64_t)a;
    oftawq_oft_config_init(&c);
    c.oft_block_size = b;
    c.use_cayley_neumann = sp->neumann;
    c.block_share = sp->share;
    c.coft = sp->coft;
    c.eps = 0.5;
    c.peft_version = sp->peft_version;
    rows = sp->share ? 1 : K / b;
    w = malloc((size_t)rows * n_el * sizeof *w);
    R = malloc((size_t)rows * b * b * sizeof *R);
    t->R[a] = malloc((size_t)rows * b * b * sizeof *t->R[a]);
    if (!w || !R || !t->R[a]) return -1;
    for (i = 0; i < rows * n_el; i++) w[i] = uniform(&s, 0.05f);
    if (oftawq_layer_add_adapter(t->layer, sp->name, &c, w, (size_t)rows * n_el) != OFTAWQ_OK) {
      fprintf(stderr, "kernel_tour: adapter %s: %s\n", sp->name, oftawq_context_last_error(t->ctx));
      return -1;
    }
    oft = oftawq_layer_adapter(t->layer, sp->name);
    oftawq_oft_shape_init(&shape);
    oftawq_oft_get_shape(oft, &shape);
    oftawq_oft_get_weights(oft, w, (size_t)rows * n_el); /* after COFT's projection */
    if (oftawq_oft_get_rotation(oft, R, (size_t)rows * b * b) != OFTAWQ_OK) {
      fprintf(stderr, "kernel_tour: R of %s: %s\n", sp->name, oftawq_context_last_error(t->ctx));
      return -1;
    }
    for (blk = 0; blk < rows; blk++) {
      double *ref = t->R[a] + (size_t)blk * b * b;
      if (sp->neumann)
        oftawq__ref_cayley_neumann(w + (size_t)blk * n_el, b, c.num_cayley_neumann_terms, shape.legacy_neumann, ref);
      else
        oftawq__ref_cayley_exact(w + (size_t)blk * n_el, b, ref);
      for (i = 0; i < b * b; i++)
        if (fabs(R[(size_t)blk * b * b + i] - ref[i]) > 1e-5) { /* fp32 sums of terms below 1 */
          fail("R of %s: %g vs %g", sp->name, R[(size_t)blk * b * b + i], ref[i]);
          break;
        }
    }
    free(w);
    free(R);
  }
  return 0;
}

/* The reference forward of row m through the adapters of `order` (n of them; -1 ends early), in `dtype`. */
static void reference_row(const tour *t, oftawq_dtype dtype, const float *x, const int *order, int n, float *y)
{
  float xr[K];
  int i, k;
  for (k = 0; k < K; k++) xr[k] = round_to(dtype, x[k]);
  for (i = 0; i < n; i++) {
    const adapter_spec *sp = &specs[order[i]];
    oftawq__ref_rotate(xr, 1, K / sp->block_size, sp->block_size, t->R[order[i]], sp->share, xr);
    for (k = 0; k < K; k++) xr[k] = round_to(dtype, xr[k]);
  }
  oftawq__ref_awq(xr, 1, K, N, G, t->qweight, t->qzeros, t->scales, t->bias, y);
  for (k = 0; k < N; k++) y[k] = round_to(dtype, y[k]);
}

/* One unit of the activation's rounding: fp16 (AutoAWQ's cast) or, coarser, bf16. */
static double unit(oftawq_dtype dtype) { return dtype == OFTAWQ_BF16 ? 1.0 / 256 : 1.0 / 2048; }

/* A flipped rounding of the rotated x moves y by about one unit of |x|_2 |W[:, n]|_2 per rotation, and y's own
 * rounding by one unit of |y|. */
static void compare(const tour *t, oftawq_dtype dtype, const float *x, const float *got, const float *want,
                    size_t rows, const char *what)
{
  size_t m, n, k;
  for (m = 0; m < rows; m++) {
    double xn = 0;
    for (k = 0; k < K; k++) xn += (double)x[m * K + k] * x[m * K + k];
    xn = sqrt(xn);
    for (n = 0; n < N; n++) {
      double g = got[m * N + n], w = want[m * N + n];
      double tol = 4 * unit(dtype) * (xn * t->col_norm[n] + fabs(w)) + 1e-6;
      if (!(fabs(g - w) <= tol)) {
        fail("%s: %g vs %g", what, g, w);
        return;
      }
    }
  }
}

static void forward_case(tour *t, oftawq_awq_path path, oftawq_dtype dtype, size_t rows, int mixed)
{
  static const char *const paths[] = {"auto", "gemv", "gemm", "dense"}, *const dtypes[] = {"F32", "F16", "BF16"};
  static const int all[N_ADAPTERS] = {0, 1, 2};
  unsigned char xin[MAX_ROWS * K * 4], yout[MAX_ROWS * N * 4];
  float got[MAX_ROWS * N], want[MAX_ROWS * N];
  int index[MAX_ROWS];
  char what[96];
  size_t m;
  oftawq_status st;
  snprintf(what, sizeof what, "%s %s M=%zu%s", paths[path], dtypes[dtype], rows, mixed ? " mixed" : "");
  printf("  %s\n", what);
  oftawq_awq_set_path(oftawq_layer_base(t->layer), path);
  to_dtype(dtype, t->x, rows * K, xin);
  for (m = 0; m < rows; m++) index[m] = (int)(m % (N_ADAPTERS + 1)) - 1; /* none, then each adapter */
  st = mixed ? oftawq_layer_forward_mixed(t->layer, dtype, xin, yout, rows, index)
             : oftawq_layer_forward(t->layer, dtype, xin, yout, rows);
  if (st != OFTAWQ_OK) {
    fprintf(stderr, "kernel_tour: %s: %s\n", what, oftawq_context_last_error(t->ctx));
    failures++;
    return;
  }
  from_dtype(dtype, yout, rows * N, got);
  for (m = 0; m < rows; m++) {
    float xr[K];
    size_t k;
    for (k = 0; k < K; k++) xr[k] = round_to(dtype, t->x[m * K + k]);
    if (mixed)
      reference_row(t, dtype, xr, index[m] < 0 ? all : all + index[m], index[m] < 0 ? 0 : 1, want + m * N);
    else
      reference_row(t, dtype, xr, all, N_ADAPTERS, want + m * N);
  }
  compare(t, dtype, t->x, got, want, rows, what);
}

/* The layer's forward on every path and dtype at `rows` rows (and mixed batches at the largest). */
static void paths_part(tour *t, size_t rows)
{
  static const oftawq_awq_path paths[] = {OFTAWQ_AWQ_AUTO, OFTAWQ_AWQ_GEMV, OFTAWQ_AWQ_GEMM, OFTAWQ_AWQ_DENSE};
  static const oftawq_dtype dtypes[] = {OFTAWQ_F32, OFTAWQ_F16, OFTAWQ_BF16};
  size_t p, d;
  for (p = 0; p < sizeof paths / sizeof paths[0]; p++)
    for (d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) forward_case(t, paths[p], dtypes[d], rows, 0);
  for (d = 0; rows == MAX_ROWS && d < sizeof dtypes / sizeof dtypes[0]; d++)
    forward_case(t, OFTAWQ_AWQ_AUTO, dtypes[d], rows, 1);
}

/* Training: forward, backward (with dx), AdamW step, one and three trainable adapters, each checked against the
 * plain-C reference by the benchmark before it times it once. */
static void train_part(tour *t)
{
  oftawq_bench_options bo;
  oftawq_bench_result results[32];
  size_t n = 0;
  oftawq_bench_options_init(&bo);
  bo.K = K;
  bo.N = N;
  bo.M = 5;
  bo.G = G;
  bo.block_size = specs[0].block_size;
  bo.runs = 1;
  bo.warmup = 0;
  if (oftawq_bench_train(t->ctx, &bo, results, sizeof results / sizeof results[0], &n, NULL, NULL) != OFTAWQ_OK) {
    fprintf(stderr, "kernel_tour: training: %s\n", oftawq_context_last_error(t->ctx));
    failures++;
  }
  printf("training: %zu implementations checked\n", n);
}

/* The benchmark's compute reference at every vector width the kernel takes: each lane must hold its start plus
 * the steps, and the check must see a call of another length. */
static void peak_part(tour *t)
{
  static const unsigned widths[] = {1, 2, 4, 8, 16};
  const unsigned native = t->ctx->float_width;
  oftawq__fma_peak p;
  size_t i;
  if (oftawq__fma_peak_create(t->ctx, -1, 0, &p) != OFTAWQ_E_INVALID_ARGUMENT ||
      oftawq__fma_peak_create(t->ctx, OFTAWQ__PEAK_MAX_ITERATIONS + 1, 0, &p) != OFTAWQ_E_INVALID_ARGUMENT) {
    fprintf(stderr, "kernel_tour: fma reference: a step count out of range was taken\n");
    failures++;
  }
  for (i = 0; i < sizeof widths / sizeof widths[0]; i++) {
    t->ctx->float_width = widths[i];
    if (oftawq__fma_peak_create(t->ctx, 40, 0, &p) != OFTAWQ_OK || oftawq__fma_peak_enqueue(&p) != OFTAWQ_OK ||
        clFinish(t->ctx->queue) != CL_SUCCESS || oftawq__fma_peak_check(&p) != OFTAWQ_OK) {
      fprintf(stderr, "kernel_tour: fma reference, width %u: %s\n", widths[i], oftawq_context_last_error(t->ctx));
      failures++;
    } else {
      p.iterations++; /* the values of 41 steps are not those of 40 */
      if (oftawq__fma_peak_check(&p) != OFTAWQ_E_INTERNAL) {
        fprintf(stderr, "kernel_tour: fma reference, width %u: the check passed a call of another length\n",
                widths[i]);
        failures++;
      }
    }
    printf("fma reference: width %u, %zu work-items of %d chains\n", widths[i], p.global, OFTAWQ__PEAK_CHAINS);
    oftawq__fma_peak_release(&p);
  }
  t->ctx->float_width = native;
}

/* Every plan the tuner tries in one unit of its search (`rows`: that rows bucket's AWQ plans, fused or not, and
 * rotation, with the R build at 1 row; 0: the device layout), on AutoAWQ's layout or an interleaved repack, each
 * checked by the tuner against the reference: a budget that never runs out, one timed run each. */
static void tune_part(tour *t, long rows)
{
  oftawq_tune_options to;
  oftawq_tune_report report;
  unsigned unit = rows ? OFTAWQ__TUNE_BUCKET(oftawq__m_bucket((size_t)rows)) : OFTAWQ__TUNE_LAYOUT;
  oftawq_tune_options_init(&to);
  to.budget_s = 1e6;
  to.runs = 1;
  oftawq_tune_report_init(&report);
  if (oftawq__tune_units(t->ctx, K, N, G, specs[0].block_size, &to, unit, &report) != OFTAWQ_OK) {
    fprintf(stderr, "kernel_tour: tuning: %s\n", oftawq_context_last_error(t->ctx));
    failures++;
  } else if (report.candidates_rejected != 0 || report.candidates_timed == 0) {
    fprintf(stderr, "kernel_tour: the tuner rejected %u of %u candidates: %s\n", report.candidates_rejected,
            report.candidates_rejected + report.candidates_timed, oftawq_context_last_error(t->ctx));
    failures++;
  }
  printf("tuner: %u candidates run and checked, %u rejected\n", report.candidates_timed, report.candidates_rejected);
}

static const char usage[] =
  "usage: kernel_tour PART [k4|kc|wi|cpu]   (k4, kc: the layers' weights in the K4 or KC repack instead of\n"
  "               AutoAWQ's layout; wi: the AWQ kernels as CPU runtimes get them - sums in local memory, x\n"
  "               splatted; cpu: those kernels with a CPU's plans for 16-float registers - several words per\n"
  "               item, and among the tuner's candidates two words' columns in one float16)\n"
  "  paths ROWS   the layer on every AWQ path and activation dtype (F32, F16, BF16) with three adapters\n"
  "               (Neumann, exact with a shared block, pre-0.18 Neumann with COFT); mixed batches at 40 rows\n"
  "  train        training forward, backward and AdamW step (oftawq_bench_train's checked implementations)\n"
  "  peak         the benchmark's fma reference at every vector width\n"
  "  tune ROWS    every candidate of the tuner's unit for ROWS' rows bucket (0: the device layout choice),\n"
  "               each checked against the reference\n"
  "Each part runs in a process of its own under oclgrind: buffers of one size per process.\n";

int main(int argc, char **argv)
{
  static tour t;
  oftawq_device_info info;
  const char *names[N_ADAPTERS], *part = argc > 1 ? argv[1] : "";
  long rows = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
  const char *last = argc > 1 ? argv[argc - 1] : "";
  const int layout = !strcmp(last, "k4") ? OFTAWQ__LAYOUT_K4 : !strcmp(last, "kc") ? OFTAWQ__LAYOUT_KC : 0;
  const int wi = !strcmp(last, "wi"), cpu = !strcmp(last, "cpu");
  int a;

  if (argc > 4 || (argc == 4 && !layout && !wi && !cpu) ||
      (strcmp(part, "train") && strcmp(part, "peak") && (strcmp(part, "tune") || rows < 0 || rows > 512) &&
       (strcmp(part, "paths") || rows < 1 || rows > MAX_ROWS))) {
    fputs(usage, stderr);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress under a slow simulator */
  if (oftawq_context_create(NULL, &t.ctx) != OFTAWQ_OK) {
    fprintf(stderr, "kernel_tour: no OpenCL device\n");
    return 1;
  }
  oftawq_device_info_init(&info);
  oftawq_context_device_info(t.ctx, &info);
  printf("kernel_tour %s %s on %s (%s)\n", part, oftawq__awq_layout_name(layout), info.name, info.is_gpu ? "gpu" : info.is_cpu ? "cpu" : "other");
  /* layers of the tour's shape (the tour's own, the tuner's and the training benchmark's synthetic ones) take
   * the device layout the database names: the repack asked for */
  if (layout && oftawq__tuning_store_awq_layout(t.ctx, K, N, G, layout, "kernel_tour") != OFTAWQ_OK) {
    fprintf(stderr, "kernel_tour: %s\n", oftawq_context_last_error(t.ctx));
    return 1;
  }
  if (wi || cpu) t.ctx->info.is_cpu = 1; /* the AWQ kernels as a CPU runtime gets them (AWQ_WI_LOOPS) */
  if (cpu) { /* and a CPU's plans for registers of 16 floats (AVX-512) */
    t.ctx->info.is_gpu = 0;
    t.ctx->float_width = 16;
  }
  if (!strcmp(part, "paths")) {
    make_base(&t);
    if (oftawq_layer_create(t.ctx, &t.t, &t.layer) != OFTAWQ_OK || add_adapters(&t) < 0) {
      fprintf(stderr, "kernel_tour: %s\n", oftawq_context_last_error(t.ctx));
      return 1;
    }
    for (a = 0; a < N_ADAPTERS; a++) names[a] = specs[a].name;
    oftawq_layer_set_active(t.layer, names, N_ADAPTERS);
    paths_part(&t, (size_t)rows);
  } else if (!strcmp(part, "train")) {
    train_part(&t);
  } else if (!strcmp(part, "peak")) {
    peak_part(&t);
  } else {
    tune_part(&t, rows);
  }
  oftawq_layer_destroy(t.layer);
  for (a = 0; a < N_ADAPTERS; a++) free(t.R[a]);
  oftawq_context_destroy(t.ctx);
  printf("kernel_tour %s: %s\n", part, failures ? "FAILED" : "all checks held");
  return failures ? 1 : 0;
}
