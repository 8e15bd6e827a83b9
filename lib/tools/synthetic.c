/* synthetic.c: synthetic AWQ layers with an OFT adapter and their reference outputs, for the benchmark and the tuner. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engines/oft.h"
#include "common/ref.h"
#include "tools/synthetic.h"

/* Synthetic data ranges. */
#define SCALE_MIN 0.002f
#define SCALE_MAX 0.02f
#define OFT_WEIGHT_SPAN 0.3f /* uniform in +-span/b: |Q| < 1, a proper rotation */
/* Output agreement: fp32 sums of fp16-rounded terms; relative to the output's RMS. */
#define CHECK_TOL 2e-3

double oftawq__now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t next(uint64_t *s)
{
  uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float lo, float hi)
{
  return lo + (hi - lo) * (float)((double)(next(s) >> 11) / 9007199254740992.0);
}

void oftawq__synthetic_free(oftawq__synthetic *s)
{
  cl_mem bufs[3];
  size_t i;
  bufs[0] = s->dx;
  bufs[1] = s->dy;
  bufs[2] = s->dxr;
  for (i = 0; i < 3; i++)
    if (bufs[i]) clReleaseMemObject(bufs[i]);
  oftawq_layer_destroy(s->layer);
  free(s->qw);
  free(s->qz);
  free(s->sc);
  free(s->bias);
  free(s->x);
  free(s->w_oft);
  memset(s, 0, sizeof *s);
}

static cl_mem device_buffer(oftawq_context *ctx, size_t bytes, const void *init, oftawq_status *status)
{
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                            (void *)(uintptr_t)init, &err);
  if (!m) *status = oftawq__cl_fail(ctx, err, "allocating %zu bytes for a synthetic layer", bytes);
  return m;
}

oftawq_status oftawq__synthetic_check_shape(oftawq_context *ctx, int K, int N, int M, int G, int block_size)
{
  uint64_t packed, act, limit = ctx->info.max_alloc_size;
  if (M < 1 || K < 1 || N < 8 || N % 8 || G < 1 || K % G || block_size < 1)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "synthetic layer K=%d N=%d M=%d G=%d b=%d: need N %% 8 == 0, K %% G == 0, all >= 1", K, N, M, G,
                        block_size);
  packed = (uint64_t)K * (uint64_t)N / 2;
  act = (uint64_t)M * (uint64_t)(K > N ? K : N) * 4;
  if (packed > limit || act > limit || packed + act > ctx->info.global_mem_size)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "a %d x %d layer needs %llu bytes of packed weight and %llu of activations at M = %d; the "
                        "device holds at most %llu in one buffer and %llu in all",
                        K, N, (unsigned long long)packed, (unsigned long long)act, M, (unsigned long long)limit,
                        (unsigned long long)ctx->info.global_mem_size);
  return OFTAWQ_OK;
}

void oftawq__synthetic_tensors(const oftawq__synthetic *s, oftawq_awq_tensors *t)
{
  oftawq_awq_tensors_init(t);
  t->K = s->K;
  t->N = s->N;
  t->G = s->G;
  t->qweight = s->qw;
  t->qzeros = s->qz;
  t->scales = s->sc;
  t->bias = s->bias;
}

oftawq_status oftawq__synthetic_create(oftawq_context *ctx, int K, int N, int M, int G, int block_size, uint64_t seed,
                                       oftawq__synthetic *s)
{
  size_t W, groups, i;
  uint64_t r = seed;
  oftawq_target t;
  oftawq_oft_config c;
  oftawq_oft_shape shape;
  oftawq_status status = OFTAWQ_OK;

  memset(s, 0, sizeof *s);
  s->ctx = ctx;
  if ((status = oftawq__synthetic_check_shape(ctx, K, N, M, G, block_size)) < 0) return status;
  s->K = K;
  s->N = N;
  s->M = M;
  s->G = G;
  s->block_size = block_size;
  W = (size_t)N / 8;
  groups = (size_t)(K / G);
  s->qw = malloc((size_t)K * W * 4);
  s->qz = malloc(groups * W * 4);
  s->sc = malloc(groups * N * 2);
  s->bias = malloc((size_t)N * 2);
  s->x = malloc((size_t)M * K * 4);
  if (!s->qw || !s->qz || !s->sc || !s->bias || !s->x) {
    oftawq__synthetic_free(s);
    return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory for a synthetic layer");
  }
  for (i = 0; i < (size_t)K * W; i++) s->qw[i] = (int32_t)(uint32_t)next(&r);
  for (i = 0; i < groups * W; i++) s->qz[i] = (int32_t)(uint32_t)next(&r);
  for (i = 0; i < groups * N; i++) s->sc[i] = oftawq__float_to_half(uniform(&r, SCALE_MIN, SCALE_MAX));
  for (i = 0; i < (size_t)N; i++) s->bias[i] = oftawq__float_to_half(uniform(&r, -1, 1));
  for (i = 0; i < (size_t)M * K; i++) s->x[i] = oftawq__half_to_float(oftawq__float_to_half(uniform(&r, -1, 1)));

  oftawq_oft_config_init(&c);
  c.oft_block_size = block_size;
  oftawq_oft_shape_init(&shape);
  if ((status = oftawq_oft_resolve(&c, K, NULL, NULL, &shape, NULL, 0)) < 0) {
    oftawq__synthetic_free(s);
    return oftawq__fail(ctx, status, "block size %d does not fit K = %d", block_size, K);
  }
  s->n_oft = (size_t)shape.weight_rows * shape.n_elements;
  if (!(s->w_oft = malloc((s->n_oft ? s->n_oft : 1) * 4))) {
    oftawq__synthetic_free(s);
    return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  for (i = 0; i < s->n_oft; i++) s->w_oft[i] = uniform(&r, -OFT_WEIGHT_SPAN, OFT_WEIGHT_SPAN) / (float)shape.block_size;

  oftawq_target_init(&t);
  oftawq__synthetic_tensors(s, &t.tensors);
  if ((status = oftawq_dispatch(ctx, &t, OFTAWQ__SYNTHETIC_ADAPTER, &c, s->w_oft, s->n_oft, &s->layer)) == OFTAWQ_OK &&
      (s->dx = device_buffer(ctx, (size_t)M * K * 4, s->x, &status)) != NULL &&
      (s->dy = device_buffer(ctx, (size_t)M * N * 4, NULL, &status)) != NULL)
    s->dxr = device_buffer(ctx, (size_t)M * K * 4, NULL, &status);
  if (status < 0) oftawq__synthetic_free(s);
  return status;
}

oftawq_status oftawq__synthetic_compare(oftawq_context *ctx, const char *what, const float *got, const float *want,
                                        size_t n)
{
  double rms = 0;
  size_t i;
  for (i = 0; i < n; i++) rms += (double)want[i] * want[i];
  rms = sqrt(rms / (double)(n ? n : 1));
  for (i = 0; i < n; i++)
    if (!(fabs((double)got[i] - want[i]) <= CHECK_TOL * (fabs(want[i]) + rms)))
      return oftawq__fail(ctx, OFTAWQ_E_INTERNAL, "%s gives %g at element %zu where the reference gives %g", what,
                          got[i], i, want[i]);
  return OFTAWQ_OK;
}

oftawq_status oftawq__synthetic_read_rows(const oftawq__synthetic *s, cl_mem buf, size_t cols, float *out)
{
  size_t last = (size_t)s->M - 1;
  cl_int err = clEnqueueReadBuffer(s->ctx->queue, buf, CL_TRUE, 0, cols * 4, out, 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clEnqueueReadBuffer(s->ctx->queue, buf, CL_TRUE, last * cols * 4, cols * 4, out + cols, 0, NULL, NULL);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(s->ctx, err, "reading an output back");
}

oftawq_status oftawq__synthetic_reference_input(const oftawq__synthetic *b, oftawq_oft *oft, int times, float *xr)
{
  size_t K = (size_t)b->K, last = (size_t)b->M - 1, nr, i;
  oftawq_oft_shape s;
  float *R;
  double *Rd;
  oftawq_status status;
  memcpy(xr, b->x, K * 4);
  memcpy(xr + K, b->x + last * K, K * 4);
  if (!oft) return OFTAWQ_OK;
  oftawq_oft_shape_init(&s);
  oftawq_oft_get_shape(oft, &s);
  nr = (size_t)s.weight_rows * s.block_size * s.block_size;
  R = malloc(nr * 4);
  Rd = malloc(nr * sizeof *Rd);
  if (!R || !Rd) {
    free(R);
    free(Rd);
    return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  if ((status = oftawq_oft_get_rotation(oft, R, nr)) == OFTAWQ_OK) {
    int k;
    for (i = 0; i < nr; i++) Rd[i] = R[i];
    for (k = 0; k < times; k++)
      oftawq__ref_rotate(xr, OFTAWQ__CHECKED_ROWS, s.r, s.block_size, Rd, s.weight_rows == 1 && s.r > 1, xr);
  }
  free(R);
  free(Rd);
  return status;
}

oftawq_status oftawq__synthetic_check_output(const oftawq__synthetic *s, const char *what, oftawq_oft *oft, int times,
                                             int with_bias, const float *got)
{
  size_t K = (size_t)s->K, N = (size_t)s->N;
  float *xr = malloc(OFTAWQ__CHECKED_ROWS * K * 4), *want = malloc(OFTAWQ__CHECKED_ROWS * N * 4);
  oftawq_status status;
  if (!xr || !want)
    status = oftawq__fail(s->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  else if ((status = oftawq__synthetic_reference_input(s, oft, times, xr)) == OFTAWQ_OK) {
    oftawq__ref_awq(xr, OFTAWQ__CHECKED_ROWS, s->K, s->N, s->G, s->qw, s->qz, s->sc, with_bias ? s->bias : NULL, want);
    status = oftawq__synthetic_compare(s->ctx, what, got, want, OFTAWQ__CHECKED_ROWS * N);
  }
  free(xr);
  free(want);
  return status;
}

/* An adapter's R (from the device) against the reference Cayley of its weights, in double. */
oftawq_status oftawq__synthetic_check_rotation(oftawq_oft *oft, const char *what)
{
  oftawq_oft_shape sh;
  oftawq_oft_config c;
  size_t bb, nr, nw, i;
  float *R, *want, *w;
  double *Rd;
  int blk;
  oftawq_status status = OFTAWQ_OK;
  oftawq_oft_shape_init(&sh);
  oftawq_oft_config_init(&c);
  oftawq_oft_get_shape(oft, &sh);
  oftawq_oft_get_config(oft, &c);
  bb = (size_t)sh.block_size * sh.block_size;
  nr = (size_t)sh.weight_rows * bb;
  nw = (size_t)sh.weight_rows * sh.n_elements;
  R = malloc(nr * 4);
  want = malloc(nr * 4);
  w = malloc((nw ? nw : 1) * 4);
  Rd = malloc(bb * sizeof *Rd);
  if (!R || !want || !w || !Rd) status = oftawq__fail(oftawq__oft_context(oft), OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if (status == OFTAWQ_OK && (status = oftawq_oft_get_rotation(oft, R, nr)) == OFTAWQ_OK &&
      (status = oftawq_oft_get_weights(oft, w, nw)) == OFTAWQ_OK) {
    for (blk = 0; blk < sh.weight_rows; blk++) {
      const float *wb = w + (size_t)blk * sh.n_elements;
      if (c.use_cayley_neumann)
        oftawq__ref_cayley_neumann(wb, sh.block_size, c.num_cayley_neumann_terms, sh.legacy_neumann, Rd);
      else
        oftawq__ref_cayley_exact(wb, sh.block_size, Rd);
      for (i = 0; i < bb; i++) want[(size_t)blk * bb + i] = (float)Rd[i];
    }
    status = oftawq__synthetic_compare(oftawq__oft_context(oft), what, R, want, nr);
  }
  free(R);
  free(want);
  free(w);
  free(Rd);
  return status;
}

