/* oft.c: OFT adapters - PEFT config rules, COFT, R built on the device and cached, the block rotation. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/buffer.h"
#include "engines/oft.h"
#include "engines/oft_grad.h"
#include "runtime/program.h"
#include "common/ref.h"
#include "runtime/tuning.h"
#include "common/version.h"

/* Work-group size of the rotation kernel (the autotuner will choose per device). */
#define ROTATE_WG 64
/* Tile edge of the R-build matrix product. */
#define POWER_TILE 8
#define INIT_STD 0.1
#define TWO_PI 6.283185307179586
/* Power iterations that estimate |Q|_2 for the Neumann divergence warning (a lower bound, within a few percent). */
#define NORM2_ITERATIONS 30
/* Exact Cayley: the device kernel's work-group size. Measured on PoCL (r = 128, b = 32): host LU 6.0 ms
 * with the upload, device Gauss-Jordan 7.0 ms - on a CPU device the host is the same processor, so the
 * host builds R there; on a GPU the device path saves the round trip. */
#define EXACT_WG 64

void oftawq_oft_config_init(oftawq_oft_config *c)
{
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->size = sizeof *c;
  c->r = 0;
  c->oft_block_size = 32;
  c->module_dropout = 0.0;
  c->coft = 0;
  c->eps = 6e-5;
  c->block_share = 0;
  c->fan_in_fan_out = 0;
  c->init_weights = 1;
  c->use_cayley_neumann = 1;
  c->num_cayley_neumann_terms = 5;
  c->peft_version = NULL;
  c->seed = 0;
}

void oftawq_oft_shape_init(oftawq_oft_shape *s)
{
  if (!s) return;
  memset(s, 0, sizeof *s);
  s->size = sizeof *s;
}

oftawq_status oftawq_oft_resolve(const oftawq_oft_config *c, int d, oftawq_log_fn log, void *log_user,
                                 oftawq_oft_shape *shape, char *why, size_t cap)
{
  int r, b;
  if (why && cap) why[0] = '\0';
  if (!c || !shape || c->size < sizeof *c || shape->size < sizeof *shape)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL or uninitialised config or shape");
  if (d < 1 || d > OFTAWQ_MAX_IN_FEATURES)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "in_features must be in [1, %d], got %d",
                       OFTAWQ_MAX_IN_FEATURES, d);
  if (c->r < 0 || c->oft_block_size < 0)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "r (%d) and oft_block_size (%d) must not be negative", c->r, c->oft_block_size);
  if (c->r == 0 && c->oft_block_size == 0)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "Either r or oft_block_size must be non-zero. Currently, r = 0 and oft_block_size = 0.");
  if (c->r != 0 && c->oft_block_size != 0)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT,
                   "You can only specify either r (%d) or oft_block_size (%d), but not both simultaneously, "
                   "because r x oft_block_size == in_features.",
                   c->r, c->oft_block_size);
  /* PEFT reads eps only for COFT; there a zero or negative radius is computed as PEFT computes it. */
  if (c->coft && !isfinite(c->eps))
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "eps must be finite with coft, got %g", c->eps);
  /* PEFT reads the term count only for the Neumann series, where n <= 1 gives R = I. */
  if (c->use_cayley_neumann && c->num_cayley_neumann_terms > OFTAWQ_MAX_NEUMANN_TERMS)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT,
                       "num_cayley_neumann_terms %d exceeds the supported %d (each term costs one b x b matrix "
                       "product per block)",
                       c->num_cayley_neumann_terms, OFTAWQ_MAX_NEUMANN_TERMS);
  oftawq_oft_shape_init(shape);
  if (c->r == 0) {
    b = c->oft_block_size;
    if (d % b != 0 || b > d) {
      int old = b;
      b = oftawq__ref_adjust(d, b);
      oftawq__log_to(log, log_user, OFTAWQ_LOG_WARNING,
                     "Invalid `oft_block_size` (%d)! Adjusted `oft_block_size` to (%d) for in_features %d.", old, b,
                     d);
    }
    r = d / b;
  } else {
    r = c->r;
    if (d % r != 0 || r > d) {
      int old = r;
      r = oftawq__ref_adjust(d, r);
      oftawq__log_to(log, log_user, OFTAWQ_LOG_WARNING, "Invalid `r` (%d)! Adjusted `r` to (%d) for in_features %d.",
                     old, r, d);
    }
    b = d / r;
  }
  if (b > OFTAWQ_MAX_OFT_BLOCK)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "block size %d (in_features %d) exceeds the supported %d", b,
                       d, OFTAWQ_MAX_OFT_BLOCK);
  if (c->coft && c->eps <= 0)
    oftawq__log_to(log, log_user, OFTAWQ_LOG_WARNING,
                   "COFT with eps = %g: computed as PEFT computes it - every non-zero block is scaled to norm "
                   "|eps| / sqrt(rows)%s",
                   c->eps, c->eps < 0 ? " with its sign flipped, and a zero block becomes NaN" : " = 0 (R = I)");
  if (c->module_dropout != 0)
    oftawq__log_to(log, log_user, OFTAWQ_LOG_WARNING,
                   "module_dropout = %g has no effect: PEFT has not applied it since 0.16", c->module_dropout);
  shape->in_features = d;
  shape->r = r;
  shape->block_size = b;
  shape->weight_rows = c->block_share ? 1 : r;
  shape->n_elements = b * (b - 1) / 2;
  if (c->use_cayley_neumann && c->peft_version) {
    int ok = oftawq__peft_legacy_neumann(c->peft_version, &shape->legacy_neumann);
    if (ok < 0) return OFTAWQ_E_OUT_OF_MEMORY;
    if (!ok) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "peft_version '%s' is not a PEP 440 version", c->peft_version);
  }
  return OFTAWQ_OK;
}

/* Checks the weights and stores them (projected) in oft->weights. */
static oftawq_status take_weights(oftawq_oft *oft, const float *w, size_t count)
{
  oftawq_context *ctx = oft->ctx;
  const oftawq_oft_shape *s = &oft->shape;
  size_t i;
  int row;
  if (!w && count == 0) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "no weights given");
  if (!w || count != oft->weight_count)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "OFT weights: expected %d x %d = %zu floats for in_features %d (r %d, block %d), got %zu",
                        s->weight_rows, s->n_elements, oft->weight_count, s->in_features, s->r, s->block_size, count);
  for (i = 0; i < count; i++)
    if (!isfinite(w[i]))
      return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "OFT weights: element %zu (row %zu) is %s", i,
                          i / (size_t)s->n_elements, isnan(w[i]) ? "NaN" : "infinite");
  if (count) memcpy(oft->weights, w, count * sizeof *w);
  if (oft->config.coft) oftawq__ref_coft(oft->weights, s->weight_rows, s->n_elements, oft->config.eps);
  /* The Neumann series converges where |Q|_2 < 1. |Q|_2 <= |Q|_F, so only blocks with |Q|_F >= 1 get the power
   * iterations, whose estimate is a lower bound: a warning is always true. Once per adapter. */
  for (row = 0; oft->config.use_cayley_neumann && !oft->warned_neumann && row < s->weight_rows; row++) {
    const float *wr = oft->weights + (size_t)row * s->n_elements;
    double ss = 0, norm2, *scratch;
    int m;
    for (m = 0; m < s->n_elements; m++) ss += (double)wr[m] * wr[m];
    if (sqrt(2.0 * ss) < 1.0 || !(scratch = malloc(2 * (size_t)s->block_size * sizeof *scratch))) continue;
    norm2 = oftawq__ref_skew_norm2_lower(wr, s->block_size, NORM2_ITERATIONS, scratch);
    free(scratch);
    if (norm2 >= 1.0) {
      oft->warned_neumann = 1;
      oftawq__log(ctx, OFTAWQ_LOG_WARNING,
                  "OFT block %d: the spectral norm of Q is at least %.2f, where the Cayley-Neumann series diverges; "
                  "R is the series truncated to %d terms, as PEFT computes and trains it, and is not exactly "
                  "orthogonal",
                  row, floor(norm2 * 100) / 100, oft->config.num_cayley_neumann_terms);
    }
  }
  oft->dirty = 1;
  oft->generation++;
  return OFTAWQ_OK;
}

/* N(0, INIT_STD^2) by Box-Muller over a splitmix64 stream of `seed`. */
static void init_normal(float *w, size_t n, uint64_t seed)
{
  uint64_t s = seed;
  size_t i;
  for (i = 0; i < n; i += 2) {
    double u1, u2, rad;
    uint64_t z;
    z = (s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    u1 = ((double)((z ^ (z >> 31)) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    z = (s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    u2 = (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
    rad = sqrt(-2.0 * log(u1)) * INIT_STD;
    w[i] = (float)(rad * cos(TWO_PI * u2));
    if (i + 1 < n) w[i + 1] = (float)(rad * sin(TWO_PI * u2));
  }
}

oftawq_status oftawq_oft_create(oftawq_context *ctx, const oftawq_oft_config *config, int in_features,
                                const float *weights, size_t count, oftawq_oft **out)
{
  oftawq_oft *oft = NULL;
  oftawq_status status;
  char why[512];
  size_t rbytes;
  cl_int err;

  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_oft_create: NULL output");
  *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(oft = calloc(1, sizeof *oft))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  oft->ctx = ctx;
  oft->exact_on_device = -1;
  oftawq_oft_shape_init(&oft->shape);
  status = oftawq_oft_resolve(config, in_features, ctx->log, ctx->log_user, &oft->shape, why, sizeof why);
  if (status < 0) {
    status = oftawq__fail(ctx, status, "OFT config: %s", why);
    goto fail;
  }
  oft->config = *config;
  if (config->peft_version && !(oft->peft_version = oftawq__strdup(config->peft_version))) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  oft->config.peft_version = oft->peft_version;
  oft->weight_count = (size_t)oft->shape.weight_rows * (size_t)oft->shape.n_elements;
  if (!(oft->weights = calloc(oft->weight_count ? oft->weight_count : 1, sizeof *oft->weights))) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory for %zu OFT weights", oft->weight_count);
    goto fail;
  }
  if (weights || count) {
    OFTAWQ__CHECK(take_weights(oft, weights, count));
  } else {
    if (!config->init_weights) init_normal(oft->weights, oft->weight_count, config->seed);
    OFTAWQ__CHECK(take_weights(oft, oft->weights, oft->weight_count));
  }
  rbytes = (size_t)oft->shape.weight_rows * oft->shape.block_size * oft->shape.block_size * sizeof(float);
  oft->R = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, rbytes, NULL, &err);
  if (!oft->R) {
    status = oftawq__cl_fail(ctx, err, "allocating %zu bytes for the OFT rotation", rbytes);
    goto fail;
  }
  *out = oft;
  return OFTAWQ_OK;
fail:
  oftawq_oft_destroy(oft);
  return status;
}

void oftawq_oft_destroy(oftawq_oft *oft)
{
  if (!oft) return;
  {
    cl_mem bufs[] = {oft->R, oft->w_dev, oft->build_w, oft->build_Q, oft->build_A, oft->build_P[0], oft->build_P[1]};
    size_t i;
    for (i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
      if (bufs[i]) clReleaseMemObject(bufs[i]);
  }
  oftawq__oft_grad_free(oft);
  oftawq__kernel_list_free(oft->kernels);
  free(oft->weights);
  free(oft->peft_version);
  free(oft);
}

/* Training: the device copy of the weights follows a host update. */
static oftawq_status upload_weights(oftawq_oft *oft)
{
  cl_int err = clEnqueueWriteBuffer(oft->ctx->queue, oft->w_dev, CL_TRUE, 0, oft->weight_count * sizeof(float),
                                    oft->weights, 0, NULL, NULL);
  if (err != CL_SUCCESS) return oftawq__cl_fail(oft->ctx, err, "uploading the OFT weights");
  oft->needs_projection = 0; /* take_weights projected them */
  return OFTAWQ_OK;
}

oftawq_status oftawq_oft_set_weights(oftawq_oft *oft, const float *weights, size_t count)
{
  float *keep;
  oftawq_status status;
  if (!oft) return OFTAWQ_E_INVALID_ARGUMENT;
  /* Validate into a copy so a bad update leaves the old weights in place. */
  keep = malloc((oft->weight_count ? oft->weight_count : 1) * sizeof *keep);
  if (!keep) return oftawq__fail(oft->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  memcpy(keep, oft->weights, oft->weight_count * sizeof *keep);
  status = take_weights(oft, weights, count);
  if (status >= 0 && oft->w_dev) status = upload_weights(oft);
  if (status < 0) memcpy(oft->weights, keep, oft->weight_count * sizeof *keep);
  free(keep);
  return status;
}

oftawq_status oftawq_oft_get_shape(const oftawq_oft *oft, oftawq_oft_shape *shape)
{
  if (!oft || !shape || shape->size < sizeof *shape) return OFTAWQ_E_INVALID_ARGUMENT;
  *shape = oft->shape;
  return OFTAWQ_OK;
}

oftawq_status oftawq_oft_get_config(const oftawq_oft *oft, oftawq_oft_config *config)
{
  if (!oft || !config || config->size < sizeof *config) return OFTAWQ_E_INVALID_ARGUMENT;
  *config = oft->config;
  return OFTAWQ_OK;
}

oftawq_status oftawq_oft_get_weights(const oftawq_oft *oft, float *weights, size_t count)
{
  if (!oft || (count && !weights)) return OFTAWQ_E_INVALID_ARGUMENT;
  if (count != oft->weight_count)
    return oftawq__fail(oft->ctx, OFTAWQ_E_INVALID_ARGUMENT, "expected room for %zu weights, got %zu",
                        oft->weight_count, count);
  if (oft->w_dev && count) { /* trained on the device: the optimizer's copy is the current one */
    cl_int err = clEnqueueReadBuffer(oft->ctx->queue, oft->w_dev, CL_TRUE, 0, count * sizeof *weights, weights, 0,
                                     NULL, NULL);
    return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(oft->ctx, err, "reading the OFT weights back");
  }
  if (count) memcpy(weights, oft->weights, count * sizeof *weights);
  return OFTAWQ_OK;
}

uint64_t oftawq_oft_rebuild_count(const oftawq_oft *oft) { return oft ? oft->rebuilds : 0; }

/* Exact Cayley on the host: LU in double per block, then one upload. */
static oftawq_status build_exact_host(oftawq_oft *oft)
{
  oftawq_context *ctx = oft->ctx;
  const int b = oft->shape.block_size, rows = oft->shape.weight_rows;
  size_t bb = (size_t)b * b, i;
  double *Rd = malloc(bb * sizeof *Rd);
  float *Rf = malloc(bb * rows * sizeof *Rf);
  oftawq_status status = OFTAWQ_OK;
  cl_int err;
  int row;
  if (!Rd || !Rf) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory building R");
    goto done;
  }
  if (oft->w_dev && (status = oftawq_oft_get_weights(oft, oft->weights, oft->weight_count)) < 0) goto done;
  for (row = 0; row < rows; row++) {
    if (!oftawq__ref_cayley_exact(oft->weights + (size_t)row * oft->shape.n_elements, b, Rd)) {
      status = oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "OFT block %d: I - Q is singular", row);
      goto done;
    }
    for (i = 0; i < bb; i++) Rf[(size_t)row * bb + i] = (float)Rd[i];
  }
  err = clEnqueueWriteBuffer(ctx->queue, oft->R, CL_TRUE, 0, bb * rows * sizeof *Rf, Rf, 0, NULL, NULL);
  if (err != CL_SUCCESS) status = oftawq__cl_fail(ctx, err, "uploading R");
done:
  free(Rd);
  free(Rf);
  return status;
}

/* A buffer the adapter keeps for building R (made on first use, kept until it is destroyed: a rebuild after
 * every training step allocates nothing). */
static oftawq_status build_buffer(oftawq_oft *oft, cl_mem *m, size_t bytes)
{
  cl_int err = CL_SUCCESS;
  if (*m) return OFTAWQ_OK;
  *m = clCreateBuffer(oft->ctx->cl_ctx, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
  return *m ? OFTAWQ_OK : oftawq__cl_fail(oft->ctx, err, "allocating %zu bytes for building R", bytes);
}

/* Builds Q (and, when R is not NULL, R = I, + 2Q when two_q) for every block on the device, from the
 * trained weights on the device or else from the host weights, uploaded. */
static oftawq_status device_skew(oftawq_oft *oft, cl_uint two_q, cl_mem R, cl_mem Q)
{
  oftawq_context *ctx = oft->ctx;
  const int b = oft->shape.block_size, rows = oft->shape.weight_rows;
  size_t g[2];
  cl_kernel skew = NULL;
  oftawq_status status;
  cl_int err = CL_SUCCESS;
  char opts[96];
  cl_mem src = oft->w_dev;
  snprintf(opts, sizeof opts, "-DOFT_BLOCK=%d", b);
  if ((status = oftawq__kernel_cached(ctx, &oft->kernels, "oft_cayley", opts, "oft_skew", &skew)) < 0) return status;
  if (!src) {
    if ((status = build_buffer(oft, &oft->build_w, oft->weight_count * sizeof(float))) < 0) return status;
    if (oft->weight_count &&
        (err = clEnqueueWriteBuffer(ctx->queue, oft->build_w, CL_TRUE, 0, oft->weight_count * sizeof(float),
                                    oft->weights, 0, NULL, NULL)) != CL_SUCCESS)
      return oftawq__cl_fail(ctx, err, "uploading the OFT weights");
    src = oft->build_w;
  }
  err = OFTAWQ__ARG(skew, 0, src) | OFTAWQ__ARG(skew, 1, Q) | OFTAWQ__ARG(skew, 2, R) | OFTAWQ__ARG(skew, 3, two_q);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting oft_skew arguments");
  g[0] = (size_t)b * b;
  g[1] = (size_t)rows;
  if ((status = oftawq__enqueue(ctx, skew, "oft_skew", 2, g, NULL, 0, NULL, NULL)) < 0) return status;
  return oftawq__ordered(ctx); /* what follows reads Q */
}

oftawq_status oftawq__oft_enqueue_skew(oftawq_oft *oft, cl_mem Q) { return device_skew(oft, 0, NULL, Q); }

/* The R build's parameters: the tuner's candidate, else the tuned ones, else the defaults in *tile, *wg. */
static void build_params(const oftawq_oft *oft, int *tile, int *wg)
{
  oftawq__tuning_cayley(oft->ctx, oft->shape.block_size, tile, wg);
  if (oft->forced_tile) *tile = oft->forced_tile;
  if (oft->forced_gj_wg) *wg = oft->forced_gj_wg;
}

void oftawq__oft_force_params(oftawq_oft *oft, int rotate_wg, int tile, int gj_wg)
{
  oft->forced_wg = rotate_wg;
  oft->forced_tile = tile;
  oft->forced_gj_wg = gj_wg;
  if (tile || gj_wg) oft->dirty = 1;
}

/* Exact Cayley on the device: Gauss-Jordan with partial pivoting, one work-group per block, in fp32. */
static oftawq_status build_exact_device(oftawq_oft *oft)
{
  oftawq_context *ctx = oft->ctx;
  const int b = oft->shape.block_size, rows = oft->shape.weight_rows;
  size_t bytes = (size_t)rows * b * b * sizeof(float), g[2], l[2];
  cl_kernel gj = NULL;
  oftawq_status status;
  cl_int err = CL_SUCCESS;
  char opts[96];
  int tile = POWER_TILE, wg = EXACT_WG;
  build_params(oft, &tile, &wg);
  snprintf(opts, sizeof opts, "-DOFT_BLOCK=%d -DOFT_GJ_WG=%d", b, wg);
  if ((status = oftawq__kernel_cached(ctx, &oft->kernels, "oft_cayley", opts, "oft_cayley_exact", &gj)) < 0 ||
      (status = build_buffer(oft, &oft->build_Q, bytes)) < 0 || (status = build_buffer(oft, &oft->build_A, 2 * bytes)) < 0 ||
      (status = device_skew(oft, 0, oft->R, oft->build_Q)) < 0)
    return status;
  err = OFTAWQ__ARG(gj, 0, oft->build_Q) | OFTAWQ__ARG(gj, 1, oft->build_A) | OFTAWQ__ARG(gj, 2, oft->R);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting oft_cayley_exact arguments");
  g[0] = l[0] = (size_t)wg;
  g[1] = (size_t)rows;
  l[1] = 1;
  if ((status = oftawq__enqueue(ctx, gj, "oft_cayley_exact", 2, g, l, 0, NULL, NULL)) < 0) return status;
  err = clFinish(ctx->queue);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(ctx, err, "building R");
}

static oftawq_status build_exact(oftawq_oft *oft)
{
  int device = oft->exact_on_device < 0 ? !oft->ctx->info.is_cpu : oft->exact_on_device;
  return device ? build_exact_device(oft) : build_exact_host(oft);
}

void oftawq__oft_set_exact_on_device(oftawq_oft *oft, int mode)
{
  oft->exact_on_device = mode < 0 ? -1 : mode != 0;
  oft->dirty = 1;
}

int oftawq__oft_neumann_last(const oftawq_oft *oft)
{
  const int n = oft->config.num_cayley_neumann_terms;
  /* n - 1, except that PEFT's current loop still adds Q^3 when n = 3 (so n = 3 and n = 4 agree) */
  return n < 2 ? 0 : (!oft->shape.legacy_neumann && n == 3) ? 3 : n - 1;
}

float oftawq__oft_neumann_coef(const oftawq_oft *oft, int k)
{
  /* the current formula's last power enters with coefficient 1 (from n = 3 on), every other with 2 */
  if (k == 0) return 1.0f;
  return (k == oftawq__oft_neumann_last(oft) && oft->config.num_cayley_neumann_terms > 2 &&
          !oft->shape.legacy_neumann) ? 1.0f : 2.0f;
}

/* Cayley-Neumann: skew, then n-2 batched products P <- P.Q with R += coef * P. */
static oftawq_status build_neumann(oftawq_oft *oft)
{
  oftawq_context *ctx = oft->ctx;
  const int b = oft->shape.block_size, rows = oft->shape.weight_rows, n = oft->config.num_cayley_neumann_terms;
  size_t bytes = (size_t)rows * b * b * sizeof(float);
  cl_mem *P = oft->build_P;
  cl_kernel step = NULL;
  oftawq_status status;
  cl_int err = CL_SUCCESS;
  char opts[96];
  size_t g[3], l[3];
  int k, cur = 0, steps, tile = POWER_TILE, wg = EXACT_WG;
  const cl_mem *a;

  build_params(oft, &tile, &wg);
  l[0] = l[1] = (size_t)tile;
  l[2] = 1;
  snprintf(opts, sizeof opts, "-DOFT_BLOCK=%d -DOFT_TILE=%d", b, tile);
  if ((status = oftawq__kernel_cached(ctx, &oft->kernels, "oft_cayley", opts, "oft_power_step", &step)) < 0 ||
      (status = build_buffer(oft, &oft->build_Q, bytes)) < 0 || (status = device_skew(oft, n > 1, oft->R, oft->build_Q)) < 0)
    return status;
  steps = oftawq__oft_neumann_last(oft) - 1; /* the products for Q^2 .. Q^last */
  if (steps > 0 && ((status = build_buffer(oft, &P[0], bytes)) < 0 || (status = build_buffer(oft, &P[1], bytes)) < 0))
    return status;
  g[0] = g[1] = (size_t)b;
  g[2] = (size_t)rows;
  a = &oft->build_Q;
  for (k = 0; k < steps; k++) {
    cl_float alpha = oftawq__oft_neumann_coef(oft, k + 2);
    err = OFTAWQ__ARG(step, 0, *a) | OFTAWQ__ARG(step, 1, oft->build_Q) | OFTAWQ__ARG(step, 2, P[cur]) |
          OFTAWQ__ARG(step, 3, oft->R) | OFTAWQ__ARG(step, 4, alpha);
    if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting oft_power_step arguments");
    if ((status = oftawq__enqueue(ctx, step, "oft_power_step", 3, g, l, 0, NULL, NULL)) < 0 ||
        (status = oftawq__ordered(ctx)) < 0) /* the next power reads this one */
      return status;
    a = &P[cur];
    cur ^= 1;
  }
  err = clFinish(ctx->queue);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(ctx, err, "building R");
}

oftawq_status oftawq__oft_rotation_buffer(oftawq_oft *oft, cl_mem *R)
{
  oftawq_status status = OFTAWQ_OK;
  if (oft->dirty) {
    if (oft->needs_projection) { /* COFT after a step on the device, before R, as PEFT's forward does */
      if ((status = oftawq__oft_grad_project(oft)) < 0) return status;
      oft->needs_projection = 0;
    }
    status = oft->config.use_cayley_neumann ? build_neumann(oft) : build_exact(oft);
    if (status < 0) return status;
    oft->dirty = 0;
    oft->rebuilds++;
  }
  *R = oft->R;
  return status;
}

oftawq_status oftawq_oft_prepare(oftawq_oft *oft)
{
  cl_mem R;
  oftawq_status status;
  cl_int err;
  if (!oft) return OFTAWQ_E_INVALID_ARGUMENT;
  if ((status = oftawq__oft_rotation_buffer(oft, &R)) < 0) return status;
  err = clFinish(oft->ctx->queue);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(oft->ctx, err, "building R");
}

oftawq_status oftawq_oft_get_rotation(oftawq_oft *oft, float *R, size_t count)
{
  cl_mem buf;
  oftawq_status status;
  size_t need;
  cl_int err;
  if (!oft || (count && !R)) return OFTAWQ_E_INVALID_ARGUMENT;
  need = (size_t)oft->shape.weight_rows * oft->shape.block_size * oft->shape.block_size;
  if (count != need)
    return oftawq__fail(oft->ctx, OFTAWQ_E_INVALID_ARGUMENT, "expected room for %zu rotation floats, got %zu", need,
                        count);
  if ((status = oftawq__oft_rotation_buffer(oft, &buf)) < 0) return status;
  err = clEnqueueReadBuffer(oft->ctx->queue, buf, CL_TRUE, 0, need * sizeof *R, R, 0, NULL, NULL);
  if (err != CL_SUCCESS) return oftawq__cl_fail(oft->ctx, err, "reading R back");
  return OFTAWQ_OK;
}

int oftawq__oft_default_rotate_wg(void) { return ROTATE_WG; }
int oftawq__oft_default_cayley_tile(void) { return POWER_TILE; }
int oftawq__oft_default_exact_wg(void) { return EXACT_WG; }

static int rotate_vec(int b) { return b % 4 == 0 ? 4 : b % 2 == 0 ? 2 : 1; }

oftawq_status oftawq__oft_enqueue_rotate(oftawq_oft *oft, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                         cl_mem row_select, cl_int select, cl_uint n_wait, const cl_event *wait,
                                         cl_event *done)
{
  cl_mem R;
  oftawq_status status;
  if ((status = oftawq__oft_rotation_buffer(oft, &R)) < 0) return status;
  return oftawq__oft_enqueue_rotate_by(oft, R, dtype, x, y, rows, row_select, select, n_wait, wait, done);
}

oftawq_status oftawq__oft_enqueue_rotate_by(oftawq_oft *oft, cl_mem R, oftawq_dtype dtype, cl_mem x, cl_mem y,
                                            size_t rows, cl_mem row_select, cl_int select, cl_uint n_wait,
                                            const cl_event *wait, cl_event *done)
{
  oftawq_context *ctx = oft->ctx;
  const int b = oft->shape.block_size, vec = rotate_vec(b);
  int wg = ROTATE_WG;
  cl_uint d = (cl_uint)oft->shape.in_features, nrows = (cl_uint)rows, share = (cl_uint)oft->config.block_share;
  size_t g[2], l[2];
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  char opts[128];

  if (oft->forced_wg)
    wg = oft->forced_wg;
  else
    oftawq__tuning_rotate(ctx, b, rows, &wg);
  snprintf(opts, sizeof opts, "-DOFT_BLOCK=%d -DOFT_VEC=%d -DX_DTYPE=%d -DOFT_WG=%d", b, vec, (int)dtype,
           wg);
  if ((status = oftawq__kernel_cached(ctx, &oft->kernels, "oft_rotate", opts, "oft_rotate", &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, x) | OFTAWQ__ARG(k, 1, y) | OFTAWQ__ARG(k, 2, R) | OFTAWQ__ARG(k, 3, nrows) |
        OFTAWQ__ARG(k, 4, d) | OFTAWQ__ARG(k, 5, share) | OFTAWQ__ARG(k, 6, row_select) | OFTAWQ__ARG(k, 7, select);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting oft_rotate arguments");
  g[0] = (oft->shape.in_features + (size_t)vec - 1) / (size_t)vec;
  g[1] = rows;
  l[0] = (size_t)wg;
  l[1] = 1;
  return oftawq__enqueue(ctx, k, "oft_rotate", 2, g, l, n_wait, wait, done);
}

static oftawq_status rotate_op(void *obj, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows, cl_uint n_wait,
                               const cl_event *wait, cl_event *done)
{
  return oftawq__oft_enqueue_rotate(obj, dtype, x, y, rows, NULL, 0, n_wait, wait, done);
}

oftawq_status oftawq_oft_rotate_cl(oftawq_oft *oft, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                   cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  oftawq_status status;
  size_t bytes;
  if (done) *done = NULL;
  if (!oft) return OFTAWQ_E_INVALID_ARGUMENT;
  if ((status = oftawq__rows_bytes(oft->ctx, dtype, rows, (size_t)oft->shape.in_features, &bytes)) < 0)
    return status;
  return oftawq__run_on_device(oft->ctx, rotate_op, oft, dtype, x, bytes, y, bytes, rows, n_wait, wait, done);
}

oftawq_status oftawq_oft_rotate(oftawq_oft *oft, oftawq_dtype dtype, const void *x, void *y, size_t rows)
{
  oftawq_status status;
  size_t bytes;
  if (!oft) return OFTAWQ_E_INVALID_ARGUMENT;
  if ((status = oftawq__rows_bytes(oft->ctx, dtype, rows, (size_t)oft->shape.in_features, &bytes)) < 0)
    return status;
  return oftawq__run_on_host(oft->ctx, rotate_op, oft, dtype, x, bytes, y, bytes, rows);
}

oftawq_context *oftawq__oft_context(const oftawq_oft *oft) { return oft->ctx; }
