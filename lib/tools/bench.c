/* bench.c: the measurements behind `oftawq bench` - every implementation checked against the reference, then timed alike. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef OFTAWQ_HAVE_CLBLAST
#include <clblast_c.h>
#endif

#include "engines/awq.h"
#include "engines/awq_repack.h"
#include "engines/oft.h"
#include "engines/layer.h"
#include "common/ref.h"
#include "tools/bench_stats.h"
#include "tools/cpu_int4.h"
#include "tools/peak.h"
#include "tools/synthetic.h"


void oftawq_bench_options_init(oftawq_bench_options *o)
{
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->K = 2048;
  o->N = 2048;
  o->M = 1;
  o->G = 128;
  o->block_size = 32;
  o->runs = 5;
  o->warmup = 2;
  o->seed = 1;
}

#define PEAK_CALL_S 2e-3 /* the FMA reference's calls: long enough to hide a launch (2 % on PoCL) */

typedef struct bench {
  oftawq_context *ctx;
  oftawq_bench_options o;
  oftawq__synthetic s;            /* the layer, its input and reference */
  float *w_exact;
  oftawq_oft *exact;              /* the same weights on the exact Cayley path */
  cl_mem dqw, dcopy, dense, dx16, dense16, dy16;
  oftawq__cpu_int4 *cpu;          /* the native peer */
  float *cpu_y;                   /* its output, M x N */
  oftawq__fma_peak peak;          /* the compute reference */
} bench;

static void bench_free(bench *b)
{
  cl_mem bufs[6];
  size_t i;
  bufs[0] = b->dqw;
  bufs[1] = b->dcopy;
  bufs[2] = b->dense;
  bufs[3] = b->dx16;
  bufs[4] = b->dense16;
  bufs[5] = b->dy16;
  for (i = 0; i < 6; i++)
    if (bufs[i]) clReleaseMemObject(bufs[i]);
  oftawq_oft_destroy(b->exact);
  oftawq__cpu_int4_destroy(b->cpu);
  oftawq__fma_peak_release(&b->peak);
  free(b->cpu_y);
  free(b->w_exact);
  oftawq__synthetic_free(&b->s);
}

static cl_mem device_buffer(bench *b, size_t bytes, const void *init, oftawq_status *status)
{
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(b->ctx->cl_ctx, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                            (void *)(uintptr_t)init, &err);
  if (!m) *status = oftawq__cl_fail(b->ctx, err, "allocating %zu bytes for the benchmark", bytes);
  return m;
}

static oftawq_status bench_setup(bench *b)
{
  const oftawq_bench_options *o = &b->o;
  oftawq_oft_config c;
  oftawq_status status;
  if ((status = oftawq__synthetic_create(b->ctx, o->K, o->N, o->M, o->G, o->block_size, o->seed, &b->s)) < 0)
    return status;
  if (!(b->w_exact = malloc((b->s.n_oft ? b->s.n_oft : 1) * 4)))
    return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  memcpy(b->w_exact, b->s.w_oft, b->s.n_oft * 4);
  oftawq_oft_config_init(&c);
  c.oft_block_size = o->block_size;
  if (o->paths && ((status = oftawq_layer_add_adapter(b->s.layer, "bench2", &c, b->s.w_oft, b->s.n_oft)) < 0 ||
                   (status = oftawq_layer_add_adapter(b->s.layer, "bench3", &c, b->s.w_oft, b->s.n_oft)) < 0))
    return status;
  c.use_cayley_neumann = 0;
  if ((status = oftawq_oft_create(b->ctx, &c, o->K, b->w_exact, b->s.n_oft, &b->exact)) < 0) return status;
  b->dqw = device_buffer(b, (size_t)o->K * o->N / 2, b->s.qw, &status);
  if (b->dqw) b->dcopy = device_buffer(b, (size_t)o->K * o->N / 2, NULL, &status);
  return status;
}

static oftawq_oft *adapter(bench *b) { return oftawq_layer_adapter(b->s.layer, OFTAWQ__SYNTHETIC_ADAPTER); }

/* --- the implementations: each enqueues one call --- */

static oftawq_status run_copy(bench *b)
{
  cl_int err = clEnqueueCopyBuffer(b->ctx->queue, b->dqw, b->dcopy, 0, 0, (size_t)b->o.K * b->o.N / 2, 0, NULL, NULL);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(b->ctx, err, "copying the packed weight");
}

static oftawq_status run_fma(bench *b) { return oftawq__fma_peak_enqueue(&b->peak); }

static oftawq_status run_awq(bench *b)
{
  return oftawq__awq_enqueue(oftawq_layer_base(b->s.layer), OFTAWQ_F32, b->s.dx, b->s.dy, (size_t)b->o.M, 0, NULL, NULL);
}

/* The base layer on one forced path (then back to AUTO). */
static oftawq_status run_path(bench *b, oftawq_awq_path path)
{
  oftawq_awq *awq = oftawq_layer_base(b->s.layer);
  oftawq_status status;
  oftawq_awq_set_path(awq, path);
  status = run_awq(b);
  oftawq_awq_set_path(awq, OFTAWQ_AWQ_AUTO);
  return status;
}

static oftawq_status run_gemv(bench *b) { return run_path(b, OFTAWQ_AWQ_GEMV); }
static oftawq_status run_gemm(bench *b) { return run_path(b, OFTAWQ_AWQ_GEMM); }
static oftawq_status run_dense(bench *b) { return run_path(b, OFTAWQ_AWQ_DENSE); }

/* The layer with the rotation fused into the GEMV, or kept separate (then back to as tuned). */
static oftawq_status run_fusion(bench *b, int mode)
{
  oftawq_status status;
  oftawq__layer_set_fusion(b->s.layer, mode);
  status = oftawq_layer_forward_cl(b->s.layer, OFTAWQ_F32, b->s.dx, b->s.dy, (size_t)b->o.M, 0, NULL, NULL);
  oftawq__layer_set_fusion(b->s.layer, -1);
  return status;
}

static oftawq_status run_fused(bench *b) { return run_fusion(b, 1); }
static oftawq_status run_separate(bench *b) { return run_fusion(b, 0); }

/* The layer with three active adapters (the bench adapter's weights under two more names), then one again. */
static oftawq_status run_three(bench *b)
{
  static const char *const three[] = {OFTAWQ__SYNTHETIC_ADAPTER, "bench2", "bench3"};
  oftawq_status status;
  if ((status = oftawq_layer_set_active(b->s.layer, three, 3)) < 0) return status;
  status = oftawq_layer_forward_cl(b->s.layer, OFTAWQ_F32, b->s.dx, b->s.dy, (size_t)b->o.M, 0, NULL, NULL);
  oftawq_layer_set_active(b->s.layer, three, 1);
  return status;
}


static oftawq_status run_oft_awq(bench *b)
{
  return oftawq_layer_forward_cl(b->s.layer, OFTAWQ_F32, b->s.dx, b->s.dy, (size_t)b->o.M, 0, NULL, NULL);
}

static oftawq_status run_recompute(bench *b)
{
  /* PEFT rebuilds R on every forward: new weights (the same values) force the rebuild */
  oftawq_status status = oftawq_layer_set_adapter_weights(b->s.layer, OFTAWQ__SYNTHETIC_ADAPTER, b->s.w_oft, b->s.n_oft);
  return status < 0 ? status : run_oft_awq(b);
}

static oftawq_status run_rotate(bench *b)
{
  return oftawq__oft_enqueue_rotate(adapter(b), OFTAWQ_F32, b->s.dx, b->s.dxr,
                                    (size_t)b->o.M, NULL, 0, 0, NULL, NULL);
}

static oftawq_status run_neumann(bench *b)
{
  oftawq_oft *oft = adapter(b);
  oftawq_status status = oftawq_oft_set_weights(oft, b->s.w_oft, b->s.n_oft);
  return status < 0 ? status : oftawq_oft_prepare(oft);
}

/* The exact R on one side, forced (then back to the default side). */
static oftawq_status run_exact_on(bench *b, int device)
{
  oftawq_status status;
  oftawq__oft_set_exact_on_device(b->exact, device);
  status = oftawq_oft_prepare(b->exact);
  oftawq__oft_set_exact_on_device(b->exact, -1);
  return status;
}

static oftawq_status run_exact_host(bench *b) { return run_exact_on(b, 0); }
static oftawq_status run_exact_device(bench *b) { return run_exact_on(b, 1); }

static oftawq_status run_exact(bench *b)
{
  oftawq_status status = oftawq_oft_set_weights(b->exact, b->w_exact, b->s.n_oft);
  return status < 0 ? status : oftawq_oft_prepare(b->exact);
}

#ifdef OFTAWQ_HAVE_CLBLAST
/* CLBlast's best routine for the shape: y = x . W as a matrix-vector product for one row, GEMM above. */
static oftawq_status run_clblast_f32(bench *b)
{
  const oftawq_bench_options *o = &b->o;
  CLBlastStatusCode st;
  if (o->M == 1) {
    st = CLBlastSgemv(CLBlastLayoutRowMajor, CLBlastTransposeYes, (size_t)o->K, (size_t)o->N, 1.0f, b->dense, 0,
                      (size_t)o->N, b->s.dx, 0, 1, 0.0f, b->s.dy, 0, 1, &b->ctx->queue, NULL);
    return st == CLBlastSuccess ? OFTAWQ_OK : oftawq__fail(b->ctx, OFTAWQ_E_OPENCL, "CLBlastSgemv: status %d", (int)st);
  }
  st = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)o->M, (size_t)o->N,
                    (size_t)o->K, 1.0f, b->s.dx, 0, (size_t)o->K, b->dense, 0, (size_t)o->N, 0.0f, b->s.dy, 0,
                    (size_t)o->N, &b->ctx->queue, NULL);
  return st == CLBlastSuccess ? OFTAWQ_OK : oftawq__fail(b->ctx, OFTAWQ_E_OPENCL, "CLBlastSgemm: status %d", (int)st);
}

static oftawq_status run_clblast_f16(bench *b)
{
  const oftawq_bench_options *o = &b->o;
  CLBlastStatusCode st;
  if (o->M == 1) {
    st = CLBlastHgemv(CLBlastLayoutRowMajor, CLBlastTransposeYes, (size_t)o->K, (size_t)o->N,
                      oftawq__float_to_half(1.0f), b->dense16, 0, (size_t)o->N, b->dx16, 0, 1,
                      oftawq__float_to_half(0.0f), b->dy16, 0, 1, &b->ctx->queue, NULL);
    return st == CLBlastSuccess ? OFTAWQ_OK : oftawq__fail(b->ctx, OFTAWQ_E_OPENCL, "CLBlastHgemv: status %d", (int)st);
  }
  st = CLBlastHgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)o->M, (size_t)o->N,
                    (size_t)o->K, oftawq__float_to_half(1.0f), b->dx16, 0, (size_t)o->K, b->dense16, 0, (size_t)o->N,
                    oftawq__float_to_half(0.0f), b->dy16, 0, (size_t)o->N, &b->ctx->queue, NULL);
  return st == CLBlastSuccess ? OFTAWQ_OK : oftawq__fail(b->ctx, OFTAWQ_E_OPENCL, "CLBlastHgemm: status %d", (int)st);
}

/* The dense peers' weight: the dequantised W (+ no bias), fp32 and, with fp16, half. */
static oftawq_status dense_setup(bench *b, int half)
{
  const oftawq_bench_options *o = &b->o;
  size_t K = (size_t)o->K, N = (size_t)o->N, W = N / 8, k, n;
  float *Wd = malloc(K * N * 4);
  uint16_t *Wh = half ? malloc(K * N * 2) : NULL, *xh = half ? malloc((size_t)o->M * K * 2) : NULL;
  oftawq_status status = OFTAWQ_OK;
  if (!Wd || (half && (!Wh || !xh))) {
    status = oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (k = 0; k < K; k++)
    for (n = 0; n < N; n++) {
      size_t g = k / (size_t)o->G;
      int q = (int)oftawq__awq_nibble((uint32_t)b->s.qw[k * W + n / 8], (unsigned)n & 7u);
      int z = (int)oftawq__awq_nibble((uint32_t)b->s.qz[g * W + n / 8], (unsigned)n & 7u);
      Wd[k * N + n] = (float)(q - z) * oftawq__half_to_float(b->s.sc[g * N + n]);
      if (half) Wh[k * N + n] = oftawq__float_to_half(Wd[k * N + n]);
    }
  if (!half) {
    b->dense = device_buffer(b, K * N * 4, Wd, &status);
  } else {
    for (k = 0; k < (size_t)o->M * K; k++) xh[k] = oftawq__float_to_half(b->s.x[k]);
    b->dense16 = device_buffer(b, K * N * 2, Wh, &status);
    if (b->dense16) b->dx16 = device_buffer(b, (size_t)o->M * K * 2, xh, &status);
    if (b->dx16) b->dy16 = device_buffer(b, (size_t)o->M * N * 2, NULL, &status);
  }
done:
  free(Wd);
  free(Wh);
  free(xh);
  return status;
}
#endif

/* The native peer on the host: as many threads as the OpenCL CPU device uses (on another device: the
 * host's processors), on AutoAWQ's tensors as they are. */
static oftawq_status cpu_setup(bench *b)
{
  const oftawq_bench_options *o = &b->o;
  long threads = b->ctx->info.is_cpu ? (long)b->ctx->info.compute_units : sysconf(_SC_NPROCESSORS_ONLN);
  oftawq_status status;
  if (!(b->cpu_y = malloc((size_t)o->M * o->N * sizeof(float))))
    return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  status = oftawq__cpu_int4_create(b->s.qw, b->s.qz, b->s.sc, b->s.bias, o->K, o->N, o->G, o->M,
                                   threads < 1 ? 1 : threads > 256 ? 256 : (int)threads, &b->cpu);
  return status < 0 ? oftawq__fail(b->ctx, status, "cannot start the cpu_int4 peer") : OFTAWQ_OK;
}

static oftawq_status run_cpu_int4(bench *b) { return oftawq__cpu_int4_forward(b->cpu, b->s.x, b->cpu_y, b->o.M); }

/* --- checks: the output of one call against the reference --- */

static oftawq_status check_fma(bench *b) { return oftawq__fma_peak_check(&b->peak); }

static oftawq_status check_copy(bench *b)
{
  size_t n = (size_t)b->o.K * b->o.N / 8;
  int32_t *back = malloc(n * 4);
  oftawq_status status = OFTAWQ_OK;
  cl_int err;
  if (!back) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  err = clEnqueueReadBuffer(b->ctx->queue, b->dcopy, CL_TRUE, 0, n * 4, back, 0, NULL, NULL);
  if (err != CL_SUCCESS) status = oftawq__cl_fail(b->ctx, err, "reading the copy");
  else if (memcmp(back, b->s.qw, n * 4)) status = oftawq__fail(b->ctx, OFTAWQ_E_INTERNAL, "copy: bytes differ");
  free(back);
  return status;
}

/* Output rows (fp32 y, or the fp16 one of the half peer) vs the reference layer on x rotated by `oft`. */
static oftawq_status check_matmul(bench *b, const char *impl, oftawq_oft *oft, int times, int with_bias, int half)
{
  size_t N = (size_t)b->o.N, last = (size_t)b->o.M - 1, i;
  float *got = malloc(OFTAWQ__CHECKED_ROWS * N * 4);
  uint16_t *h = half ? malloc(OFTAWQ__CHECKED_ROWS * N * 2) : NULL;
  oftawq_status status = OFTAWQ_OK;
  cl_int err;
  if (!got || (half && !h)) {
    status = oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  } else if (half) {
    err = clEnqueueReadBuffer(b->ctx->queue, b->dy16, CL_TRUE, 0, N * 2, h, 0, NULL, NULL);
    if (err == CL_SUCCESS)
      err = clEnqueueReadBuffer(b->ctx->queue, b->dy16, CL_TRUE, last * N * 2, N * 2, h + N, 0, NULL, NULL);
    if (err != CL_SUCCESS) status = oftawq__cl_fail(b->ctx, err, "reading %s output", impl);
    for (i = 0; status == OFTAWQ_OK && i < OFTAWQ__CHECKED_ROWS * N; i++) got[i] = oftawq__half_to_float(h[i]);
  } else {
    status = oftawq__synthetic_read_rows(&b->s, b->s.dy, N, got);
  }
  if (status == OFTAWQ_OK) status = oftawq__synthetic_check_output(&b->s, impl, oft, times, with_bias, got);
  free(got);
  free(h);
  return status;
}

static oftawq_status check_awq(bench *b) { return check_matmul(b, "awq", NULL, 0, 1, 0); }

static oftawq_status check_cpu_int4(bench *b)
{
  size_t N = (size_t)b->o.N;
  float *got = malloc(OFTAWQ__CHECKED_ROWS * N * sizeof(float));
  oftawq_status status;
  if (!got) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  memcpy(got, b->cpu_y, N * sizeof(float));
  memcpy(got + N, b->cpu_y + (size_t)(b->o.M - 1) * N, N * sizeof(float));
  status = oftawq__synthetic_check_output(&b->s, "cpu_int4", NULL, 0, 1, got);
  free(got);
  return status;
}

/* Three adapters with the same weights: the reference is x . R . R . R. */
static oftawq_status check_three(bench *b) { return check_matmul(b, "oft_awq_3", adapter(b), 3, 1, 0); }

static oftawq_status check_oft_awq(bench *b)
{
  return check_matmul(b, "oft_awq", adapter(b), 1, 1, 0);
}

#ifdef OFTAWQ_HAVE_CLBLAST
static oftawq_status check_clblast_f32(bench *b) { return check_matmul(b, "clblast_f32", NULL, 0, 0, 0); }
static oftawq_status check_clblast_f16(bench *b) { return check_matmul(b, "clblast_f16", NULL, 0, 0, 1); }
#endif

static oftawq_status check_rotate(bench *b)
{
  size_t K = (size_t)b->o.K;
  float *want = malloc(OFTAWQ__CHECKED_ROWS * K * 4), *got = malloc(OFTAWQ__CHECKED_ROWS * K * 4);
  oftawq_status status;
  if (!want || !got) status = oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  else if ((status = oftawq__synthetic_reference_input(&b->s, adapter(b), 1, want)) == OFTAWQ_OK &&
           (status = oftawq__synthetic_read_rows(&b->s, b->s.dxr, K, got)) == OFTAWQ_OK)
    status = oftawq__synthetic_compare(b->ctx, "rotate", got, want, OFTAWQ__CHECKED_ROWS * K);
  free(want);
  free(got);
  return status;
}

static oftawq_status check_neumann(bench *b) { return oftawq__synthetic_check_rotation(adapter(b), "cayley_neumann"); }
static oftawq_status check_exact(bench *b) { return oftawq__synthetic_check_rotation(b->exact, "cayley_exact"); }

typedef struct impl {
  const char *name;
  oftawq_status (*run)(bench *);
  oftawq_status (*check)(bench *);
} impl;

/* Runs an implementation once and waits for it. */
static oftawq_status run_once(bench *b, const impl *im)
{
  oftawq_status status = im->run(b);
  cl_int err;
  if (status < 0) return status;
  err = clFinish(b->ctx->queue);
  return err == CL_SUCCESS ? OFTAWQ_OK : oftawq__cl_fail(b->ctx, err, "%s", im->name);
}

/* Checks an implementation's output once, then warms it up. */
static oftawq_status prepare(bench *b, const impl *im, oftawq_bench_result *r)
{
  oftawq_status status;
  int i;
  if ((status = run_once(b, im)) < 0 || (status = im->check(b)) < 0) return status;
  r->checked = 1;
  for (i = 0; i < b->o.warmup; i++)
    if ((status = run_once(b, im)) < 0) return status;
  return OFTAWQ_OK;
}

/* Times `runs` rounds, each calling every implementation once in turn, so that all see the same
 * machine conditions (on a shared machine these drift more than the differences measured). */
static oftawq_status measure_interleaved(bench *b, const impl *impls, oftawq_bench_result *res, size_t n)
{
  size_t runs = (size_t)b->o.runs, i, k;
  double *t = malloc(runs * n * sizeof *t);
  oftawq_status status = OFTAWQ_OK;
  if (!t) return oftawq__fail(b->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (k = 0; k < runs && status == OFTAWQ_OK; k++)
    for (i = 0; i < n && status == OFTAWQ_OK; i++) {
      double t0 = oftawq__now();
      status = run_once(b, &impls[i]);
      t[i * runs + k] = oftawq__now() - t0;
    }
  for (i = 0; i < n && status == OFTAWQ_OK; i++) oftawq__bench_summarize(&res[i], t + i * runs, runs);
  free(t);
  return status;
}

/* Bytes and flops per call of each implementation (what must move / be computed at least). */
static void workload(const bench *b, const char *name, double *bytes, double *flops)
{
  const oftawq_bench_options *o = &b->o;
  double K = o->K, N = o->N, M = o->M, G = o->G, bs = o->block_size, r = K / bs;
  double packed = K * N / 2 + (K / G) * N * 2 + (K / G) * N / 2 + N * 2, act = M * K * 4 + M * N * 4;
  double rot_bytes = 2 * M * K * 4 + r * bs * bs * 4, rot_flops = 2 * M * K * bs;
  double neumann = 3.0 * r * 2 * bs * bs * bs; /* n = 5: Q^2, Q^3, Q^4 */
  double exact = r * (8.0 / 3.0) * bs * bs * bs;
  double w_bytes = r * bs * (bs - 1) / 2 * 4 + r * bs * bs * 4;
  *bytes = *flops = 0;
  if (!strcmp(name, "copy")) *bytes = 2 * (K * N / 2);
  else if (!strcmp(name, "fma")) *flops = b->peak.flops;
  else if (!strncmp(name, "awq", 3) || !strcmp(name, "cpu_int4")) *bytes = packed + act, *flops = 2 * M * K * N;
  else if (!strncmp(name, "oft_awq", 7) && strcmp(name, "oft_awq_recompute")) *bytes = packed + act + rot_bytes, *flops = 2 * M * K * N + rot_flops;
  else if (!strcmp(name, "oft_awq_recompute"))
    *bytes = packed + act + rot_bytes + w_bytes, *flops = 2 * M * K * N + rot_flops + neumann;
  else if (!strcmp(name, "rotate")) *bytes = rot_bytes, *flops = rot_flops;
  else if (!strcmp(name, "cayley_neumann")) *bytes = w_bytes, *flops = neumann;
  else if (!strncmp(name, "cayley_exact", 12)) *bytes = w_bytes, *flops = exact;
  else if (!strcmp(name, "clblast_f32")) *bytes = K * N * 4 + act, *flops = 2 * M * K * N;
  else if (!strcmp(name, "clblast_f16")) *bytes = K * N * 2 + act / 2, *flops = 2 * M * K * N;
}

/* Bytes of the AWQ tensors: the least a call must read. */
static double format_bytes(const oftawq_bench_options *o)
{
  double K = o->K, N = o->N, G = o->G;
  return K * N / 2 + (K / G) * N * 2 + (K / G) * N / 2 + N * 2;
}

/* Bytes of weights one call reads (packed AWQ tensors, dense copies, the adapters' R), by the plan it
 * runs: each pass over the weight serves a work-group's rows, a fused rotation reads R per work-group. */
static double weight_read(bench *b, const char *name)
{
  const oftawq_bench_options *o = &b->o;
  oftawq_awq *base = oftawq_layer_base(b->s.layer);
  double packed = format_bytes(o), R = (double)o->K * o->block_size * 4, dense = (double)o->K * o->N * 4;
  oftawq__awq_plan p;
  oftawq__awq_geometry g;
  double groups, passes, total;
  int rotations = 0, fused = 0;
  if (!strcmp(name, "copy")) return (double)o->K * o->N / 2;
  if (!strcmp(name, "cpu_int4")) return packed;
  if (!strcmp(name, "clblast_f32")) return dense;
  if (!strcmp(name, "clblast_f16")) return dense / 2;
  if (strncmp(name, "awq", 3) && strncmp(name, "oft_awq", 7)) return 0;
  oftawq__awq_plan_for(base, (size_t)o->M, &p);
  if (!strcmp(name, "awq_gemv")) p.path = OFTAWQ_AWQ_GEMV;
  if (!strcmp(name, "awq_gemm")) p.path = OFTAWQ_AWQ_GEMM;
  if (!strcmp(name, "awq_dense")) p.path = OFTAWQ_AWQ_DENSE;
  if (!strncmp(name, "oft_awq", 7)) {
    fused = !strcmp(name, "oft_awq_fused") || (!strcmp(name, "oft_awq") && p.fuse) ||
            (!strcmp(name, "oft_awq_recompute") && p.fuse);
    fused = fused && oftawq__awq_can_fuse(base, &p, (size_t)o->M);
    rotations = !strcmp(name, "oft_awq_3") ? 3 : fused ? 0 : 1;
  }
  if (p.path == OFTAWQ_AWQ_DENSE) /* the dequantised tile(s), and the packed weight unless the scratch keeps it */
    return dense + (oftawq__awq_dense_tiles(base) == 1 ? 0 : packed) + rotations * R;
  oftawq__awq_plan_geometry(&p, &g);
  if (!oftawq__awq_layout_multiword(oftawq__awq_layout(base), g.colvec)) /* the layout serves one word per item */
    p.vec = p.gvec = 1;
  passes = ceil((double)o->M / ((double)g.rows * g.rgroups));
  groups = (double)oftawq__awq_plan_groups(&p, o->N, (size_t)o->M);
  total = passes * packed + rotations * R;
  if (fused) total += groups * R;
  return total;
}

oftawq_status oftawq_bench_shape(oftawq_context *ctx, const oftawq_bench_options *options,
                                 oftawq_bench_result *results, size_t capacity, size_t *count,
                                 void (*progress)(void *user, const char *impl), void *user)
{
  impl impls[24];
  size_t n_impl = 0, i;
  bench b;
  oftawq_status status;

  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!options || options->size < sizeof *options || !count || (capacity && !results))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_bench_shape: bad arguments");
  *count = 0;
  memset(&b, 0, sizeof b);
  b.ctx = ctx;
  b.o = *options;
  if (b.o.runs < 1 || b.o.warmup < 0)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "benchmark runs %d and warm-up %d: need >= 1 and >= 0",
                        b.o.runs, b.o.warmup);
  impls[n_impl++] = (impl){"copy", run_copy, check_copy};
  impls[n_impl++] = (impl){"awq", run_awq, check_awq};
  if (b.o.paths) {
    impls[n_impl++] = (impl){"awq_gemv", run_gemv, check_awq};
    impls[n_impl++] = (impl){"awq_gemm", run_gemm, check_awq};
    impls[n_impl++] = (impl){"awq_dense", run_dense, check_awq};
  }
  impls[n_impl++] = (impl){"oft_awq", run_oft_awq, check_oft_awq};
  if (b.o.paths) {
    impls[n_impl++] = (impl){"oft_awq_fused", run_fused, check_oft_awq};
    impls[n_impl++] = (impl){"oft_awq_separate", run_separate, check_oft_awq};
    impls[n_impl++] = (impl){"oft_awq_3", run_three, check_three};
  }
  impls[n_impl++] = (impl){"oft_awq_recompute", run_recompute, check_oft_awq};
  impls[n_impl++] = (impl){"rotate", run_rotate, check_rotate};
  impls[n_impl++] = (impl){"cayley_neumann", run_neumann, check_neumann};
  impls[n_impl++] = (impl){"cayley_exact", run_exact, check_exact};
  if (b.o.paths) {
    impls[n_impl++] = (impl){"cayley_exact_host", run_exact_host, check_exact};
    impls[n_impl++] = (impl){"cayley_exact_device", run_exact_device, check_exact};
  }
#ifdef OFTAWQ_HAVE_CLBLAST
  /* the dense peers need the fp32 weight in one buffer */
  if ((uint64_t)b.o.K * (uint64_t)b.o.N * 4 <= ctx->info.max_alloc_size) {
    impls[n_impl++] = (impl){"clblast_f32", run_clblast_f32, check_clblast_f32};
    if (ctx->info.has_fp16) impls[n_impl++] = (impl){"clblast_f16", run_clblast_f16, check_clblast_f16};
  }
#endif
  impls[n_impl++] = (impl){"cpu_int4", run_cpu_int4, check_cpu_int4};
  impls[n_impl++] = (impl){"fma", run_fma, check_fma};
  if ((status = bench_setup(&b)) < 0) goto done;
  for (i = 0; i < n_impl && *count < capacity; i++) {
    oftawq_bench_result *r = &results[*count];
    memset(r, 0, sizeof *r);
    r->size = sizeof *r;
    snprintf(r->impl, sizeof r->impl, "%s", impls[i].name);
    r->K = b.o.K;
    r->N = b.o.N;
    r->M = b.o.M;
    r->G = b.o.G;
    r->block_size = b.o.block_size;
    r->weight_minimum = format_bytes(&b.o);
    if (!strcmp(impls[i].name, "cpu_int4") && (status = cpu_setup(&b)) < 0) goto done;
    if (progress) progress(user, impls[i].name);
    if (!strcmp(impls[i].name, "fma") && (status = oftawq__fma_peak_create(b.ctx, 0, PEAK_CALL_S, &b.peak)) < 0)
      goto done;
    workload(&b, impls[i].name, &r->bytes, &r->flops);
#ifdef OFTAWQ_HAVE_CLBLAST
    if (!strcmp(impls[i].name, "clblast_f32") && (status = dense_setup(&b, 0)) < 0) goto done;
    if (!strcmp(impls[i].name, "clblast_f16") && (status = dense_setup(&b, 1)) < 0) goto done;
#endif
    if ((status = prepare(&b, &impls[i], r)) < 0) goto done;
    r->weight_bytes = weight_read(&b, impls[i].name);
    (*count)++;
  }
  if (progress) progress(user, "timing");
  status = measure_interleaved(&b, impls, results, *count);
done:
  bench_free(&b);
  return status;
}
