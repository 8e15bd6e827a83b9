/* error.c: the per-context error detail (status, message, OpenCL code) and logging through the context. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/context.h"

static void set_error(oftawq_context *ctx, const char *fmt, va_list ap)
{
  if (!ctx) return;
  free(ctx->last_error);
  ctx->last_error = oftawq__vformat_escaped(fmt, ap);
}

oftawq_status oftawq__fail(oftawq_context *ctx, oftawq_status status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  set_error(ctx, fmt, ap);
  va_end(ap);
  if (ctx) ctx->last_cl_error = CL_SUCCESS;
  return status;
}

static oftawq_status status_of_cl(cl_int err)
{
  switch (err) {
  case CL_MEM_OBJECT_ALLOCATION_FAILURE:
  case CL_OUT_OF_RESOURCES:
  case CL_INVALID_BUFFER_SIZE:
    return OFTAWQ_E_DEVICE_MEMORY;
  case CL_OUT_OF_HOST_MEMORY:
    return OFTAWQ_E_OUT_OF_MEMORY;
  case CL_BUILD_PROGRAM_FAILURE:
  case CL_COMPILE_PROGRAM_FAILURE:
  case CL_LINK_PROGRAM_FAILURE:
  case CL_INVALID_BUILD_OPTIONS:
    return OFTAWQ_E_BUILD;
  case CL_DEVICE_NOT_FOUND:
  case CL_DEVICE_NOT_AVAILABLE:
  case -1001: /* CL_PLATFORM_NOT_FOUND_KHR */
    return OFTAWQ_E_NO_DEVICE;
  default:
    return OFTAWQ_E_OPENCL;
  }
}

oftawq_status oftawq__cl_fail(oftawq_context *ctx, cl_int err, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  set_error(ctx, fmt, ap);
  va_end(ap);
  if (ctx) {
    char code[96];
    snprintf(code, sizeof code, " (OpenCL error %d, %s)", (int)err, oftawq__cl_error_name(err));
    oftawq__append_error(ctx, code);
    ctx->last_cl_error = err;
  }
  return status_of_cl(err);
}

void oftawq__append_error(oftawq_context *ctx, const char *text)
{
  size_t old, add;
  char *s;
  if (!ctx || !text) return;
  old = ctx->last_error ? strlen(ctx->last_error) : 0;
  add = strlen(text);
  s = realloc(ctx->last_error, old + add + 1);
  if (!s) return; /* keep the shorter detail rather than lose it */
  memcpy(s + old, text, add + 1);
  ctx->last_error = s;
}

void oftawq__clear_error(oftawq_context *ctx)
{
  if (!ctx) return;
  free(ctx->last_error);
  ctx->last_error = NULL;
  ctx->last_cl_error = CL_SUCCESS;
}

const char *oftawq_context_last_error(const oftawq_context *ctx)
{
  return (ctx && ctx->last_error) ? ctx->last_error : "";
}

cl_int oftawq_context_last_cl_error(const oftawq_context *ctx) { return ctx ? ctx->last_cl_error : CL_SUCCESS; }

void oftawq__log(const oftawq_context *ctx, oftawq_log_level level, const char *fmt, ...)
{
  va_list ap;
  if (!ctx) return;
  va_start(ap, fmt);
  oftawq__vlog(ctx->log, ctx->log_user, level, fmt, ap);
  va_end(ap);
}

const char *oftawq__cl_error_name(cl_int err)
{
  switch (err) {
#define OFTAWQ__CL(code) \
  case code: return #code;
    OFTAWQ__CL(CL_SUCCESS)
    OFTAWQ__CL(CL_DEVICE_NOT_FOUND)
    OFTAWQ__CL(CL_DEVICE_NOT_AVAILABLE)
    OFTAWQ__CL(CL_COMPILER_NOT_AVAILABLE)
    OFTAWQ__CL(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    OFTAWQ__CL(CL_OUT_OF_RESOURCES)
    OFTAWQ__CL(CL_OUT_OF_HOST_MEMORY)
    OFTAWQ__CL(CL_PROFILING_INFO_NOT_AVAILABLE)
    OFTAWQ__CL(CL_MEM_COPY_OVERLAP)
    OFTAWQ__CL(CL_BUILD_PROGRAM_FAILURE)
    OFTAWQ__CL(CL_MAP_FAILURE)
    OFTAWQ__CL(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    OFTAWQ__CL(CL_COMPILE_PROGRAM_FAILURE)
    OFTAWQ__CL(CL_LINK_PROGRAM_FAILURE)
    OFTAWQ__CL(CL_INVALID_VALUE)
    OFTAWQ__CL(CL_INVALID_DEVICE_TYPE)
    OFTAWQ__CL(CL_INVALID_PLATFORM)
    OFTAWQ__CL(CL_INVALID_DEVICE)
    OFTAWQ__CL(CL_INVALID_CONTEXT)
    OFTAWQ__CL(CL_INVALID_QUEUE_PROPERTIES)
    OFTAWQ__CL(CL_INVALID_COMMAND_QUEUE)
    OFTAWQ__CL(CL_INVALID_HOST_PTR)
    OFTAWQ__CL(CL_INVALID_MEM_OBJECT)
    OFTAWQ__CL(CL_INVALID_BINARY)
    OFTAWQ__CL(CL_INVALID_BUILD_OPTIONS)
    OFTAWQ__CL(CL_INVALID_PROGRAM)
    OFTAWQ__CL(CL_INVALID_PROGRAM_EXECUTABLE)
    OFTAWQ__CL(CL_INVALID_KERNEL_NAME)
    OFTAWQ__CL(CL_INVALID_KERNEL)
    OFTAWQ__CL(CL_INVALID_ARG_INDEX)
    OFTAWQ__CL(CL_INVALID_ARG_VALUE)
    OFTAWQ__CL(CL_INVALID_ARG_SIZE)
    OFTAWQ__CL(CL_INVALID_KERNEL_ARGS)
    OFTAWQ__CL(CL_INVALID_WORK_DIMENSION)
    OFTAWQ__CL(CL_INVALID_WORK_GROUP_SIZE)
    OFTAWQ__CL(CL_INVALID_WORK_ITEM_SIZE)
    OFTAWQ__CL(CL_INVALID_GLOBAL_OFFSET)
    OFTAWQ__CL(CL_INVALID_EVENT_WAIT_LIST)
    OFTAWQ__CL(CL_INVALID_EVENT)
    OFTAWQ__CL(CL_INVALID_OPERATION)
    OFTAWQ__CL(CL_INVALID_BUFFER_SIZE)
    OFTAWQ__CL(CL_INVALID_GLOBAL_WORK_SIZE)
#undef OFTAWQ__CL
  case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
  }
  return "unknown OpenCL error";
}

