/* context.c: creating and destroying contexts (own OpenCL objects or the caller's), and their accessors. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cache.h"
#include "runtime/device.h"
#include "runtime/program.h"
#include "runtime/buffer.h"
#include "runtime/tuning.h"

void oftawq_context_options_init(oftawq_context_options *options)
{
  if (!options) return;
  memset(options, 0, sizeof *options);
  options->size = sizeof *options;
}

void oftawq_context_stats_init(oftawq_context_stats *stats)
{
  if (!stats) return;
  memset(stats, 0, sizeof *stats);
  stats->size = sizeof *stats;
}

/* Options from a caller whose struct may be older (smaller) than ours. */
static oftawq_status read_options(const oftawq_context_options *in, oftawq_context_options *out)
{
  oftawq_context_options_init(out);
  if (!in) return OFTAWQ_OK;
  if (in->size < offsetof(oftawq_context_options, opencl_library) || in->size > sizeof *out)
    return OFTAWQ_E_INVALID_ARGUMENT;
  memcpy(out, in, in->size);
  out->size = sizeof *out;
  return OFTAWQ_OK;
}

/* The common second half of both constructors: options, cache folder, device info. */
static oftawq_status context_finish(oftawq_context *ctx, const oftawq_context_options *opt)
{
  ctx->log = opt->log;
  ctx->log_user = opt->log_user;
  ctx->profiling = opt->profiling != 0;
  ctx->float_width = oftawq__device_float_width(ctx->device);
  oftawq_context_stats_init(&ctx->stats);
  if (opt->cache_dir && *opt->cache_dir) {
    if (oftawq__cache_dir_prepare(opt->cache_dir) == OFTAWQ_OK) {
      ctx->cache_dir = oftawq__strdup(opt->cache_dir);
      if (!ctx->cache_dir) return OFTAWQ_E_OUT_OF_MEMORY;
    } else {
      oftawq__log(ctx, OFTAWQ_LOG_WARNING, "cache folder '%s' cannot be written; caching in memory only",
                  opt->cache_dir);
    }
  }
  oftawq__tuning_load(ctx);
  return OFTAWQ_OK;
}

oftawq_status oftawq_context_create(const oftawq_context_options *options, oftawq_context **out)
{
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  oftawq_status status;
  char why[512];
  cl_int err = CL_SUCCESS;
  cl_context_properties props[3];

  if (!out) return OFTAWQ_E_INVALID_ARGUMENT;
  *out = NULL;
  if (read_options(options, &opt) < 0) return OFTAWQ_E_INVALID_ARGUMENT;
  ctx = calloc(1, sizeof *ctx);
  if (!ctx) return OFTAWQ_E_OUT_OF_MEMORY;
  ctx->log = opt.log;
  ctx->log_user = opt.log_user;

  oftawq_device_info_init(&ctx->info);
  status = oftawq__device_select(opt.device, opt.opencl_library, &ctx->platform, &ctx->device, &ctx->info, why,
                                 sizeof why);
  if (status < 0) {
    oftawq__log(ctx, OFTAWQ_LOG_ERROR, "%s", why[0] ? why : oftawq_status_message(status));
    goto fail;
  }
  props[0] = CL_CONTEXT_PLATFORM;
  props[1] = (cl_context_properties)ctx->platform;
  props[2] = 0;
  ctx->cl_ctx = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
  if (!ctx->cl_ctx) {
    status = err == CL_OUT_OF_HOST_MEMORY ? OFTAWQ_E_OUT_OF_MEMORY : OFTAWQ_E_OPENCL;
    oftawq__log(ctx, OFTAWQ_LOG_ERROR, "clCreateContext on '%s' failed: %d (%s)", ctx->info.name, (int)err,
                oftawq__cl_error_name(err));
    goto fail;
  }
  ctx->queue = clCreateCommandQueue(ctx->cl_ctx, ctx->device, opt.profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (!ctx->queue) {
    status = err == CL_OUT_OF_HOST_MEMORY ? OFTAWQ_E_OUT_OF_MEMORY : OFTAWQ_E_OPENCL;
    oftawq__log(ctx, OFTAWQ_LOG_ERROR, "clCreateCommandQueue on '%s' failed: %d (%s)", ctx->info.name, (int)err,
                oftawq__cl_error_name(err));
    goto fail;
  }
  ctx->in_order = 1;
  OFTAWQ__CHECK(context_finish(ctx, &opt));
  *out = ctx;
  return OFTAWQ_OK;
fail:
  oftawq_context_destroy(ctx);
  return status;
}

oftawq_status oftawq_context_create_from_cl(const oftawq_context_options *options, cl_context context,
                                            cl_command_queue queue, oftawq_context **out)
{
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  oftawq_status status;
  cl_context queue_ctx = NULL;
  cl_command_queue_properties qprops = 0;
  char why[256];

  if (!out) return OFTAWQ_E_INVALID_ARGUMENT;
  *out = NULL;
  if (!context || !queue || read_options(options, &opt) < 0) return OFTAWQ_E_INVALID_ARGUMENT;
  status = oftawq__opencl_load(opt.opencl_library, why, sizeof why);
  if (status < 0) return status;
  ctx = calloc(1, sizeof *ctx);
  if (!ctx) return OFTAWQ_E_OUT_OF_MEMORY;
  if (clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof queue_ctx, &queue_ctx, NULL) != CL_SUCCESS ||
      queue_ctx != context ||
      clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof ctx->device, &ctx->device, NULL) != CL_SUCCESS ||
      clGetDeviceInfo(ctx->device, CL_DEVICE_PLATFORM, sizeof ctx->platform, &ctx->platform, NULL) != CL_SUCCESS) {
    free(ctx);
    return OFTAWQ_E_INVALID_ARGUMENT;
  }
  clRetainContext(context);
  clRetainCommandQueue(queue);
  ctx->cl_ctx = context;
  ctx->queue = queue;
  oftawq_device_info_init(&ctx->info);
  oftawq__device_query(ctx->platform, ctx->device, &ctx->info);
  OFTAWQ__CHECK(context_finish(ctx, &opt));
  /* Profiling follows the caller's queue, whatever the options say. */
  if (clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof qprops, &qprops, NULL) == CL_SUCCESS) {
    ctx->profiling = (qprops & CL_QUEUE_PROFILING_ENABLE) != 0;
    ctx->in_order = (qprops & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) == 0;
  }
  *out = ctx;
  return OFTAWQ_OK;
fail:
  oftawq_context_destroy(ctx);
  return status;
}

void oftawq_context_destroy(oftawq_context *ctx)
{
  if (!ctx) return;
  /* Work still queued (an optimizer step, a _cl forward) ends here: releasing the queue only flushes it, and a
   * process that exited right after this while PoCL still built or ran such a kernel crashed in its exit handlers. */
  if (ctx->queue) clFinish(ctx->queue);
  oftawq__scratch_release_all(ctx);
  oftawq__programs_refresh_binaries(ctx);
  oftawq__programs_release(ctx);
  oftawq__tuning_free(ctx);
  if (ctx->queue) clReleaseCommandQueue(ctx->queue);
  if (ctx->cl_ctx) clReleaseContext(ctx->cl_ctx);
  free(ctx->cache_dir);
  free(ctx->last_error);
  free(ctx);
}

oftawq_status oftawq_context_get_cl(const oftawq_context *ctx, cl_context *context, cl_command_queue *queue,
                                    cl_device_id *device)
{
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (context) *context = ctx->cl_ctx;
  if (queue) *queue = ctx->queue;
  if (device) *device = ctx->device;
  return OFTAWQ_OK;
}

oftawq_status oftawq_context_device_info(const oftawq_context *ctx, oftawq_device_info *info)
{
  if (!ctx || !info || info->size < sizeof *info) return OFTAWQ_E_INVALID_ARGUMENT;
  *info = ctx->info;
  return OFTAWQ_OK;
}

const char *oftawq_context_cache_dir(const oftawq_context *ctx) { return ctx ? ctx->cache_dir : NULL; }

oftawq_status oftawq_context_get_stats(const oftawq_context *ctx, oftawq_context_stats *stats)
{
  if (!ctx || !stats || stats->size < sizeof *stats) return OFTAWQ_E_INVALID_ARGUMENT;
  *stats = ctx->stats;
  return OFTAWQ_OK;
}
