/* peak.c: the device's fp32 FMA ceiling - chains of fma on every lane, sized to the device, checked exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/program.h"
#include "tools/peak.h"
#include "tools/synthetic.h"

/* Work-items enough to fill every compute unit: a few groups of one item each on a device that is not a GPU
 * (a CPU, whose lanes are the vectors; the AWQ defaults draw the same line), sixteen groups of up to 64 per unit
 * on a GPU (waves in flight to hide the fma's latency). */
static oftawq_status peak_geometry(oftawq__fma_peak *p)
{
  const oftawq_context *ctx = p->ctx;
  const size_t units = ctx->info.compute_units ? ctx->info.compute_units : 1;
  const int cpu = !ctx->info.is_gpu; /* oclgrind says CPU and GPU: a GPU */
  size_t wg = cpu ? 1 : 64, most = 0;
  cl_int err = clGetKernelWorkGroupInfo(p->kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof most, &most, NULL);
  if (err != CL_SUCCESS) return oftawq__cl_fail(p->ctx, err, "querying the FMA reference's work-group size");
  if (most && wg > most) wg = most;
  p->local = wg;
  p->global = units * (cpu ? 8 : 16) * wg;
  return OFTAWQ_OK;
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
  char options[96];
  oftawq_status status;
  cl_int err = CL_SUCCESS;
  double t = 0;
  memset(p, 0, sizeof *p);
  if (iterations < 0 || iterations > OFTAWQ__PEAK_MAX_ITERATIONS)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "FMA reference: %d steps (0 ... %d)", iterations,
                        OFTAWQ__PEAK_MAX_ITERATIONS);
  p->ctx = ctx;
  p->width = w == 2 || w == 4 || w == 8 || w == 16 ? w : 1;
  snprintf(options, sizeof options, "-DVEC=%u -DPEAK_CHAINS=%d -DPEAK_SEEDS=%d", p->width, OFTAWQ__PEAK_CHAINS,
           OFTAWQ__PEAK_SEEDS);
  if ((status = oftawq__kernel_create(ctx, "peak", options, "fma_chains", &p->kernel)) < 0 ||
      (status = peak_geometry(p)) < 0)
    goto fail;
  p->out = clCreateBuffer(ctx->cl_ctx, CL_MEM_WRITE_ONLY, p->global * OFTAWQ__PEAK_CHAINS * p->width * sizeof(float),
                          NULL, &err);
  if (!p->out) {
    status = oftawq__cl_fail(ctx, err, "allocating the FMA reference's output");
    goto fail;
  }
  p->iterations = iterations ? iterations : 16;
  if ((status = peak_call(p, NULL)) < 0) goto fail; /* the first call may compile the kernel */
  while (!iterations && p->iterations < OFTAWQ__PEAK_MAX_ITERATIONS) {
    long next;
    if ((status = peak_call(p, &t)) < 0) goto fail;
    if (t >= target_s) break;
    next = (long)p->iterations * (t < target_s / 16 ? 8 : 2);
    p->iterations = next < OFTAWQ__PEAK_MAX_ITERATIONS ? (int)next : OFTAWQ__PEAK_MAX_ITERATIONS;
  }
  p->flops = 2.0 * (double)p->global * OFTAWQ__PEAK_CHAINS * p->width * p->iterations;
  return OFTAWQ_OK;
fail:
  oftawq__fma_peak_release(p);
  return status;
}

oftawq_status oftawq__fma_peak_enqueue(oftawq__fma_peak *p)
{
  const float one = 1.0f;
  cl_int err = OFTAWQ__ARG(p->kernel, 0, p->out);
  if (err == CL_SUCCESS) err = OFTAWQ__ARG(p->kernel, 1, one);
  if (err == CL_SUCCESS) err = OFTAWQ__ARG(p->kernel, 2, one);
  if (err == CL_SUCCESS) err = OFTAWQ__ARG(p->kernel, 3, p->iterations);
  if (err != CL_SUCCESS) return oftawq__cl_fail(p->ctx, err, "setting the FMA reference's arguments");
  return oftawq__enqueue(p->ctx, p->kernel, "fma_chains", 1, &p->global, &p->local, 0, NULL, NULL);
}

oftawq_status oftawq__fma_peak_check(oftawq__fma_peak *p)
{
  const size_t per_item = (size_t)OFTAWQ__PEAK_CHAINS * p->width, items[2] = {0, p->global - 1};
  float *got = malloc(per_item * sizeof *got);
  oftawq_status status = OFTAWQ_OK;
  size_t i, k;
  if (!got) return oftawq__fail(p->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < 2 && status == OFTAWQ_OK; i++) {
    cl_int err = clEnqueueReadBuffer(p->ctx->queue, p->out, CL_TRUE, items[i] * per_item * sizeof *got,
                                     per_item * sizeof *got, got, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
      status = oftawq__cl_fail(p->ctx, err, "reading the FMA reference's output");
      break;
    }
    for (k = 0; k < per_item && status == OFTAWQ_OK; k++) { /* lane k % width of chain k / width */
      const float want = (float)((items[i] * per_item + k) % OFTAWQ__PEAK_SEEDS + (size_t)p->iterations);
      if (got[k] != want)
        status = oftawq__fail(p->ctx, OFTAWQ_E_INTERNAL,
                              "FMA reference: work-item %zu, chain %zu, lane %zu holds %.9g after %d steps, not %.9g",
                              items[i], k / p->width, k % p->width, got[k], p->iterations, want);
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
