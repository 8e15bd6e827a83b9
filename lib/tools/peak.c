/* peak.c: the device's fp32 FMA ceiling - chains of fma on every lane, sized to the device, checked bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/program.h"
#include "tools/peak.h"
#include "tools/synthetic.h"

#define PEAK_CHAINS 8                         /* as in cl/peak.cl */
#define PEAK_X (1.0f - 0.0009765625f)         /* a <- a x + y tends to y / (1 - x) = 0.25: no overflow, no */
#define PEAK_Y 0.000244140625f                /* subnormal, and a value that keeps changing for ~10^4 steps */
#define PEAK_MAX_ITERATIONS (1 << 24)

/* Work-items enough to fill every compute unit: a few groups of one item each on a CPU (whose lanes are the
 * vectors), sixteen groups of 64 per unit on a GPU or other device (waves in flight to hide the fma's latency). */
static void peak_geometry(const oftawq_context *ctx, size_t *global, size_t *local)
{
  const size_t units = ctx->info.compute_units ? ctx->info.compute_units : 1;
  const int cpu = ctx->info.is_cpu && !ctx->info.is_gpu; /* oclgrind says both */
  size_t wg = cpu ? 1 : 64;
  if (ctx->info.max_work_group_size && wg > ctx->info.max_work_group_size) wg = ctx->info.max_work_group_size;
  *local = wg;
  *global = units * (cpu ? 8 : 16) * wg;
}

static oftawq_status peak_call(oftawq__fma_peak *p, double *seconds)
{
  double t0 = oftawq__now();
  oftawq_status status = oftawq__fma_peak_enqueue(p);
  cl_int err;
  if (status < 0) return status;
  if ((err = clFinish(p->ctx->queue)) != CL_SUCCESS) return oftawq__cl_fail(p->ctx, err, "the FMA reference");
  if (seconds) *seconds = oftawq__now() - t0;
  return OFTAWQ_OK;
}

oftawq_status oftawq__fma_peak_create(oftawq_context *ctx, int iterations, double target_s, oftawq__fma_peak *p)
{
  const unsigned w = ctx->float_width;
  char options[32];
  oftawq_status status;
  cl_int err = CL_SUCCESS;
  double t = 0;
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  p->width = w == 2 || w == 4 || w == 8 || w == 16 ? w : 1;
  peak_geometry(ctx, &p->global, &p->local);
  snprintf(options, sizeof options, "-DVEC=%u", p->width);
  if ((status = oftawq__kernel_create(ctx, "peak", options, "fma_chains", &p->kernel)) < 0) return status;
  p->out = clCreateBuffer(ctx->cl_ctx, CL_MEM_WRITE_ONLY, p->global * PEAK_CHAINS * p->width * sizeof(float), NULL,
                          &err);
  if (!p->out) return oftawq__cl_fail(ctx, err, "allocating the FMA reference's output");
  p->iterations = iterations > 0 ? iterations : 16;
  if ((status = peak_call(p, NULL)) < 0) return status; /* the first call may compile the kernel */
  while (iterations <= 0 && p->iterations < PEAK_MAX_ITERATIONS) {
    if ((status = peak_call(p, &t)) < 0) return status;
    if (t >= target_s) break;
    p->iterations *= t < target_s / 16 ? 8 : 2;
  }
  if (p->iterations > PEAK_MAX_ITERATIONS) p->iterations = PEAK_MAX_ITERATIONS;
  p->flops = 2.0 * (double)p->global * PEAK_CHAINS * p->width * p->iterations;
  return OFTAWQ_OK;
}

oftawq_status oftawq__fma_peak_enqueue(oftawq__fma_peak *p)
{
  const float x = PEAK_X, y = PEAK_Y;
  cl_int err = OFTAWQ__ARG(p->kernel, 0, p->out);
  if (err == CL_SUCCESS) err = OFTAWQ__ARG(p->kernel, 1, x);
  if (err == CL_SUCCESS) err = OFTAWQ__ARG(p->kernel, 2, y);
  if (err == CL_SUCCESS) err = OFTAWQ__ARG(p->kernel, 3, p->iterations);
  if (err != CL_SUCCESS) return oftawq__cl_fail(p->ctx, err, "setting the FMA reference's arguments");
  return oftawq__enqueue(p->ctx, p->kernel, "fma_chains", 1, &p->global, &p->local, 0, NULL, NULL);
}

oftawq_status oftawq__fma_peak_check(oftawq__fma_peak *p)
{
  const size_t per_item = (size_t)PEAK_CHAINS * p->width, items[2] = {0, p->global - 1};
  float *got = malloc(per_item * sizeof *got);
  oftawq_status status = OFTAWQ_OK;
  size_t i, c, l;
  if (!got) return oftawq__fail(p->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < 2 && status == OFTAWQ_OK; i++) {
    cl_int err = clEnqueueReadBuffer(p->ctx->queue, p->out, CL_TRUE, items[i] * per_item * sizeof *got,
                                     per_item * sizeof *got, got, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
      status = oftawq__cl_fail(p->ctx, err, "reading the FMA reference's output");
      break;
    }
    for (c = 0; c < PEAK_CHAINS && status == OFTAWQ_OK; c++)
      for (l = 0; l < p->width && status == OFTAWQ_OK; l++) {
        const size_t base = ((items[i] * PEAK_CHAINS + c) * p->width) % 1024;
        float a = ((float)base + (float)l) * 0.0009765625f;
        int k;
        for (k = 0; k < p->iterations; k++) { /* up to the fixed point, where the chain stays */
          const float next = fmaf(a, PEAK_X, PEAK_Y);
          if (next == a) break;
          a = next;
        }
        if (memcmp(&a, &got[c * p->width + l], sizeof a))
          status = oftawq__fail(p->ctx, OFTAWQ_E_INTERNAL,
                                "FMA reference: work-item %zu, chain %zu, lane %zu gives %.9g after %d steps where "
                                "the host's fmaf gives %.9g", items[i], c, l, got[c * p->width + l], p->iterations, a);
      }
  }
  free(got);
  return status;
}

void oftawq__fma_peak_release(oftawq__fma_peak *p)
{
  if (p->kernel) clReleaseKernel(p->kernel);
  if (p->out) clReleaseMemObject(p->out);
  memset(p, 0, sizeof *p);
}
