/* bench_train.c: the measurements behind `oftawq bench --train` - the training forward, backward and optimizer step,
 * each checked against the reference, then timed alike (SPEC 10, 12). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ref.h"
#include "engines/awq.h"
#include "engines/layer.h"
#include "engines/oft.h"
#include "engines/oft_grad.h"
#include "engines/train.h"
#include "runtime/buffer.h"
#include "tools/bench_stats.h"
#include "tools/synthetic.h"

/* The inner adapters of the three-adapter layer (the synthetic one is the first). */
#define SECOND "bench2"
#define THIRD "bench3"
#define LR 1e-3

typedef struct tbench {
  oftawq_context *ctx;
  oftawq_bench_options o;
  oftawq__synthetic s;       /* one trainable adapter */
  oftawq__synthetic s3;      /* three trainable adapters, same weights */
  oftawq_optimizer *opt;
  cl_mem dy, dx;             /* M x N gradient in, M x K gradient out */
  float *dy_host;
  float *want;               /* a reference computed before a run (train_step, train_iteration) */
} tbench;

typedef struct timp {
  const char *name;
  oftawq_status (*prep)(tbench *); /* untimed, before each run (may be NULL) */
  oftawq_status (*run)(tbench *);
  oftawq_status (*before_check)(tbench *); /* before the checked run (may be NULL) */
  oftawq_status (*check)(tbench *);
} timp;

static oftawq_oft *adapter(oftawq__synthetic *s) { return oftawq_layer_adapter(s->layer, OFTAWQ__SYNTHETIC_ADAPTER); }

static void tbench_free(tbench *b)
{
  oftawq_optimizer_destroy(b->opt);
  if (b->dy) clReleaseMemObject(b->dy);
  if (b->dx) clReleaseMemObject(b->dx);
  free(b->dy_host);
  free(b->want);
  oftawq__synthetic_free(&b->s);
  oftawq__synthetic_free(&b->s3);
}

static oftawq_status setup(tbench *b)
{
  const oftawq_bench_options *o = &b->o;
  oftawq_optimizer_options oo;
  oftawq_oft_config c;
  oftawq_status status;
  size_t i, ny = (size_t)o->M * o->N;
  cl_int err = CL_SUCCESS;
  if ((status = oftawq__synthetic_create(b->ctx, o->K, o->N, o->M, o->G, o->block_size, o->seed, &b->s)) < 0 ||
      (status = oftawq__synthetic_create(b->ctx, o->K, o->N, o->M, o->G, o->block_size, o->seed, &b->s3)) < 0)
    return status;
  oftawq_oft_config_init(&c);
  c.oft_block_size = o->block_size;
  if ((status = oftawq_layer_add_adapter(b->s3.layer, SECOND, &c, b->s3.w_oft, b->s3.n_oft)) < 0 ||
      (status = oftawq_layer_add_adapter(b->s3.layer, THIRD, &c, b->s3.w_oft, b->s3.n_oft)) < 0)
    return status;
  {
    const char *three[3] = {OFTAWQ__SYNTHETIC_ADAPTER, SECOND, THIRD};
    if ((status = oftawq_layer_set_active(b->s3.layer, three, 3)) < 0) return status;
    for (i = 0; i < 3; i++)
      if ((status = oftawq_layer_set_trainable(b->s3.layer, three[i], 1)) < 0) return status;
  }
  if ((status = oftawq_layer_set_trainable(b->s.layer, OFTAWQ__SYNTHETIC_ADAPTER, 1)) < 0) return status;
  oftawq_optimizer_options_init(&oo);
  oo.lr = LR;
  if ((status = oftawq_optimizer_create(b->ctx, &oo, &b->opt)) < 0 ||
      (status = oftawq_optimizer_add(b->opt, b->s.layer, OFTAWQ__SYNTHETIC_ADAPTER)) < 0)
    return status;
  if (!(b->dy_host = malloc(ny * 4)) || !(b->want = malloc((size_t)OFTAWQ__CHECKED_ROWS * (o->K > o->N ? o->K : o->N) * 4 +
                                                             b->s.n_oft * 4)))
    return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < ny; i++) b->dy_host[i] = (float)((double)((i * 2654435761u) % 2001u) / 1000.0 - 1.0);
  b->dy = clCreateBuffer(b->ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, ny * 4, b->dy_host, &err);
  if (b->dy) b->dx = clCreateBuffer(b->ctx->cl_ctx, CL_MEM_READ_WRITE, (size_t)o->M * o->K * 4, NULL, &err);
  if (!b->dy || !b->dx) return oftawq__cl_fail(b->ctx, err, "allocating the benchmark's gradients");
  return OFTAWQ_OK;
}

/* --- the implementations: each enqueues one call --- */

/* R built before the timed call: the forwards are timed as inference is (after a step, training rebuilds R
 * in its next forward, which train_iteration includes). */
static oftawq_status prep_rotation(tbench *b) { return oftawq_oft_prepare(adapter(&b->s)); }

static oftawq_status run_forward(tbench *b)
{
  return oftawq_layer_forward_cl(b->s.layer, OFTAWQ_F32, b->s.dx, b->s.dy, (size_t)b->o.M, 0, NULL, NULL);
}

static oftawq_status run_train_forward(tbench *b)
{
  return oftawq_layer_forward_train_cl(b->s.layer, OFTAWQ_F32, b->s.dx, b->s.dy, (size_t)b->o.M, 0, NULL, NULL);
}

static oftawq_status run_backward(tbench *b)
{
  return oftawq_layer_backward_cl(b->s.layer, OFTAWQ_F32, b->dy, b->dx, (size_t)b->o.M, 0, NULL, NULL);
}

static oftawq_status run_step(tbench *b) { return oftawq_optimizer_step(b->opt, NULL); }

static oftawq_status run_iteration(tbench *b)
{
  oftawq_status status;
  if ((status = run_train_forward(b)) < 0 || (status = run_backward(b)) < 0 || (status = run_step(b)) < 0) return status;
  return oftawq_optimizer_zero_grad(b->opt);
}

static oftawq_status prep_three(tbench *b, int recompute)
{
  oftawq_status status = oftawq__layer_set_train_recompute(b->s3.layer, recompute);
  if (status < 0) return status;
  return oftawq_layer_forward_train_cl(b->s3.layer, OFTAWQ_F32, b->s3.dx, b->s3.dy, (size_t)b->o.M, 0, NULL, NULL);
}

static oftawq_status prep_keep(tbench *b) { return prep_three(b, 0); }
static oftawq_status prep_recompute(tbench *b) { return prep_three(b, 1); }

static oftawq_status run_backward_three(tbench *b)
{
  return oftawq_layer_backward_cl(b->s3.layer, OFTAWQ_F32, b->dy, b->dx, (size_t)b->o.M, 0, NULL, NULL);
}

/* --- checks --- */

static oftawq_status check_forward(tbench *b)
{
  float *got = malloc((size_t)OFTAWQ__CHECKED_ROWS * b->o.N * 4);
  oftawq_status status;
  if (!got) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = oftawq__synthetic_read_rows(&b->s, b->s.dy, (size_t)b->o.N, got)) == OFTAWQ_OK)
    status = oftawq__synthetic_check_output(&b->s, "train_forward", adapter(&b->s), 1, 1, got);
  free(got);
  return status;
}

/* dx of rows 0 and M-1 in double: g = dy . W^T (W = (q - z) s), then g . BD(R)^T once per adapter in reverse. */
static oftawq_status reference_dx(tbench *b, oftawq__synthetic *s, int adapters, float *want)
{
  const size_t K = (size_t)s->K, N = (size_t)s->N, W8 = N / 8, rows[2] = {0, (size_t)s->M - 1};
  oftawq_oft *oft = adapter(s);
  oftawq_oft_shape sh;
  float *R;
  double *g = malloc(K * sizeof *g), *t = malloc(K * sizeof *t);
  size_t r, k, n, nr;
  int a;
  oftawq_status status = OFTAWQ_OK;
  oftawq_oft_shape_init(&sh);
  oftawq_oft_get_shape(oft, &sh);
  nr = (size_t)sh.weight_rows * sh.block_size * sh.block_size;
  R = malloc(nr * 4);
  if (!g || !t || !R) status = oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if (status == OFTAWQ_OK) status = oftawq_oft_get_rotation(oft, R, nr);
  for (r = 0; r < 2 && status == OFTAWQ_OK; r++) {
    const float *dy = b->dy_host + rows[r] * N;
    for (k = 0; k < K; k++) {
      double acc = 0;
      size_t grp = k / (size_t)s->G;
      for (n = 0; n < N; n++) {
        double q = oftawq__awq_nibble((uint32_t)s->qw[k * W8 + n / 8], (unsigned)n & 7u);
        double z = oftawq__awq_nibble((uint32_t)s->qz[grp * W8 + n / 8], (unsigned)n & 7u);
        acc += dy[n] * (q - z) * oftawq__half_to_float(s->sc[grp * N + n]);
      }
      g[k] = acc;
    }
    for (a = 0; a < adapters; a++) { /* every adapter has the same R */
      const size_t bs = (size_t)sh.block_size;
      for (k = 0; k < K; k++) {
        const size_t blk = k / bs, i = k % bs;
        const float *Rb = R + (sh.weight_rows == 1 ? 0 : blk * bs * bs);
        double acc = 0;
        for (n = 0; n < bs; n++) acc += g[blk * bs + n] * Rb[i * bs + n];
        t[k] = acc;
      }
      memcpy(g, t, K * sizeof *g);
    }
    for (k = 0; k < K; k++) want[r * K + k] = (float)g[k];
  }
  free(g);
  free(t);
  free(R);
  return status;
}

static oftawq_status check_dx(tbench *b, oftawq__synthetic *s, int adapters, const char *what)
{
  const size_t K = (size_t)b->o.K;
  float *got = malloc(OFTAWQ__CHECKED_ROWS * K * 4), *want = malloc(OFTAWQ__CHECKED_ROWS * K * 4);
  oftawq_status status;
  if (!got || !want) status = oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  else if ((status = oftawq__synthetic_read_rows(s, b->dx, K, got)) == OFTAWQ_OK &&
           (status = reference_dx(b, s, adapters, want)) == OFTAWQ_OK)
    status = oftawq__synthetic_compare(b->ctx, what, got, want, OFTAWQ__CHECKED_ROWS * K);
  free(got);
  free(want);
  return status;
}

static oftawq_status check_backward(tbench *b) { return check_dx(b, &b->s, 1, "train_backward"); }
static oftawq_status check_three(tbench *b) { return check_dx(b, &b->s3, 3, "train_backward_3"); }

/* The first AdamW step from the gradient now accumulated: w (1 - lr wd) - lr g / (|g| + eps). */
static oftawq_status before_step(tbench *b)
{
  oftawq_oft *oft = adapter(&b->s);
  size_t n = b->s.n_oft, i;
  float *g = malloc((n ? n : 1) * 4);
  oftawq_status status;
  if (!g) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = oftawq_layer_get_grad(b->s.layer, OFTAWQ__SYNTHETIC_ADAPTER, g, n)) == OFTAWQ_OK &&
      (status = oftawq_oft_get_weights(oft, b->want, n)) == OFTAWQ_OK)
    for (i = 0; i < n; i++)
      b->want[i] = (float)(b->want[i] * (1.0 - LR * 1e-2) - LR * g[i] / (fabs((double)g[i]) + 1e-8));
  free(g);
  return status;
}

static oftawq_status check_step(tbench *b)
{
  size_t n = b->s.n_oft;
  float *w = malloc((n ? n : 1) * 4);
  oftawq_status status;
  if (!w) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = oftawq_oft_get_weights(adapter(&b->s), w, n)) == OFTAWQ_OK)
    status = oftawq__synthetic_compare(b->ctx, "train_step", w, b->want, n);
  free(w);
  return status;
}

/* The iteration's forward uses the weights before its step: its reference is taken first. */
static oftawq_status before_iteration(tbench *b)
{
  float *xr = malloc(OFTAWQ__CHECKED_ROWS * (size_t)b->o.K * 4);
  oftawq_status status;
  if (!xr) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = oftawq__synthetic_reference_input(&b->s, adapter(&b->s), 1, xr)) == OFTAWQ_OK)
    oftawq__ref_awq(xr, OFTAWQ__CHECKED_ROWS, b->s.K, b->s.N, b->s.G, b->s.qw, b->s.qz, b->s.sc, b->s.bias, b->want);
  free(xr);
  return status;
}

static oftawq_status check_iteration(tbench *b)
{
  float *got = malloc((size_t)OFTAWQ__CHECKED_ROWS * b->o.N * 4);
  oftawq_status status;
  if (!got) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = oftawq__synthetic_read_rows(&b->s, b->s.dy, (size_t)b->o.N, got)) == OFTAWQ_OK)
    status = oftawq__synthetic_compare(b->ctx, "train_iteration", got, b->want, OFTAWQ__CHECKED_ROWS * (size_t)b->o.N);
  free(got);
  return status;
}

/* --- timing --- */

/* prep (untimed, finished), then run timed from the first enqueue to clFinish. */
static oftawq_status run_timed(tbench *b, const timp *im, double *seconds)
{
  oftawq_status status;
  cl_int err;
  double t0;
  if (im->prep && (status = im->prep(b)) < 0) return status;
  if ((err = clFinish(b->ctx->queue)) != CL_SUCCESS) return oftawq__cl_fail(b->ctx, err, "%s", im->name);
  t0 = oftawq__now();
  if ((status = im->run(b)) < 0) return status;
  if ((err = clFinish(b->ctx->queue)) != CL_SUCCESS) return oftawq__cl_fail(b->ctx, err, "%s", im->name);
  if (seconds) *seconds = oftawq__now() - t0;
  return OFTAWQ_OK;
}

/* Bytes and flops per call: the packed weight, the activations, and the dominant products. */
static void workload(const tbench *b, const char *name, double *bytes, double *flops)
{
  const oftawq_bench_options *o = &b->o;
  double K = o->K, N = o->N, M = o->M, G = o->G, bs = o->block_size, r = K / bs, w = r * bs * (bs - 1) / 2;
  double packed = K * N / 2 + (K / G) * N * 2 + (K / G) * N / 2, act = M * K * 4 + M * N * 4;
  double rot = 2 * M * K * bs, dr = 2 * M * K * bs, dq = 8.0 * r * 2 * bs * bs * bs; /* n = 5: 8 products */
  double fwd = 2 * M * K * N + rot, bwd = 2 * M * K * N + rot + dr + dq, step = 16 * w;
  *bytes = *flops = 0;
  if (!strcmp(name, "oft_awq") || !strcmp(name, "train_forward")) *bytes = packed + act, *flops = fwd;
  else if (!strcmp(name, "train_backward")) *bytes = packed + act + M * K * 4, *flops = bwd;
  else if (!strcmp(name, "train_step")) *bytes = 5 * w * 4, *flops = step;
  else if (!strcmp(name, "train_iteration")) *bytes = 2 * (packed + act) + 5 * w * 4, *flops = fwd + bwd + step;
  else *bytes = packed + act + 3 * M * K * 4, *flops = 2 * M * K * N + 3 * (rot + dr + dq) + 2 * rot; /* three adapters */
}

oftawq_status oftawq_bench_train(oftawq_context *ctx, const oftawq_bench_options *options,
                                 oftawq_bench_result *results, size_t capacity, size_t *count,
                                 void (*progress)(void *user, const char *impl), void *user)
{
  static const timp impls[] = {
    {"oft_awq", prep_rotation, run_forward, NULL, check_forward},
    {"train_forward", prep_rotation, run_train_forward, NULL, check_forward},
    {"train_backward", run_train_forward, run_backward, NULL, check_backward},
    {"train_step", NULL, run_step, before_step, check_step},
    {"train_iteration", NULL, run_iteration, before_iteration, check_iteration},
    {"train_backward_3", prep_keep, run_backward_three, NULL, check_three},
    {"train_backward_3_recompute", prep_recompute, run_backward_three, NULL, check_three},
  };
  const size_t n_impl = sizeof impls / sizeof impls[0];
  tbench b;
  oftawq_status status;
  double *t = NULL;
  size_t i, k, runs;
  int w;

  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!options || options->size < sizeof *options || !count || (capacity && !results))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_bench_train: bad arguments");
  *count = 0;
  if (options->runs < 1 || options->warmup < 0)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "benchmark runs %d and warm-up %d: need >= 1 and >= 0",
                        options->runs, options->warmup);
  memset(&b, 0, sizeof b);
  b.ctx = ctx;
  b.o = *options;
  runs = (size_t)b.o.runs;
  if ((status = setup(&b)) < 0) goto done;
  for (i = 0; i < n_impl && *count < capacity; i++) { /* check, then warm up */
    oftawq_bench_result *r = &results[*count];
    memset(r, 0, sizeof *r);
    r->size = sizeof *r;
    r->K = b.o.K, r->N = b.o.N, r->M = b.o.M, r->G = b.o.G, r->block_size = b.o.block_size;
    snprintf(r->impl, sizeof r->impl, "%s", impls[i].name);
    workload(&b, impls[i].name, &r->bytes, &r->flops);
    if (progress) progress(user, impls[i].name);
    if ((impls[i].before_check && (status = impls[i].before_check(&b)) < 0) ||
        (status = run_timed(&b, &impls[i], NULL)) < 0 || (status = impls[i].check(&b)) < 0)
      goto done;
    r->checked = 1;
    for (w = 0; w < b.o.warmup; w++)
      if ((status = run_timed(&b, &impls[i], NULL)) < 0) goto done;
    (*count)++;
  }
  if (progress) progress(user, "timing");
  if (!(t = malloc(runs * n_impl * sizeof *t))) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (k = 0; k < runs; k++) /* round-robin, as oftawq_bench_shape */
    for (i = 0; i < *count; i++)
      if ((status = run_timed(&b, &impls[i], &t[i * runs + k])) < 0) goto done;
  for (i = 0; i < *count; i++) oftawq__bench_summarize(&results[i], t + i * runs, runs);
  /* training must not have made a dense copy of W (K x N floats): the layers keep their int4 tensors only */
  if (oftawq__awq_device_bytes(oftawq_layer_base(b.s.layer)) >= (size_t)b.o.K * b.o.N * sizeof(float) ||
      oftawq__awq_device_bytes(oftawq_layer_base(b.s3.layer)) >= (size_t)b.o.K * b.o.N * sizeof(float))
    status = oftawq__fail(ctx, OFTAWQ_E_INTERNAL, "training allocated a dense copy of W");
done:
  free(t);
  tbench_free(&b);
  return status;
}
