/* opencl_dlopen.c: loads libOpenCL at run time (Android) so a phone without OpenCL gets a status, not a failed load. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clapi.h"

#ifndef OFTAWQ_OPENCL_DLOPEN

oftawq_status oftawq__opencl_load(const char *path, char *why, size_t why_capacity)
{
  (void)path;
  if (why && why_capacity) why[0] = '\0';
  return OFTAWQ_OK;
}

#else /* OFTAWQ_OPENCL_DLOPEN */

#include <dlfcn.h>
#include <pthread.h>

/* Every OpenCL entry point the library calls: return type, name, parameters, arguments. */
#define OFTAWQ__CL_FUNCTIONS(X)                                                                                  \
  X(cl_int, clGetPlatformIDs, (cl_uint a, cl_platform_id *b, cl_uint *c), (a, b, c))                             \
  X(cl_int, clGetPlatformInfo, (cl_platform_id a, cl_platform_info b, size_t c, void *d, size_t *e), (a, b, c, d, e)) \
  X(cl_int, clGetDeviceIDs, (cl_platform_id a, cl_device_type b, cl_uint c, cl_device_id *d, cl_uint *e), (a, b, c, d, e)) \
  X(cl_int, clGetDeviceInfo, (cl_device_id a, cl_device_info b, size_t c, void *d, size_t *e), (a, b, c, d, e))  \
  X(cl_context, clCreateContext,                                                                                 \
    (const cl_context_properties *a, cl_uint b, const cl_device_id *c,                                           \
     void(CL_CALLBACK *d)(const char *, const void *, size_t, void *), void *e, cl_int *f), (a, b, c, d, e, f))  \
  X(cl_int, clRetainContext, (cl_context a), (a))                                                                \
  X(cl_int, clReleaseContext, (cl_context a), (a))                                                               \
  X(cl_int, clGetContextInfo, (cl_context a, cl_context_info b, size_t c, void *d, size_t *e), (a, b, c, d, e))  \
  X(cl_command_queue, clCreateCommandQueue, (cl_context a, cl_device_id b, cl_command_queue_properties c, cl_int *d), (a, b, c, d)) \
  X(cl_int, clRetainCommandQueue, (cl_command_queue a), (a))                                                     \
  X(cl_int, clReleaseCommandQueue, (cl_command_queue a), (a))                                                    \
  X(cl_int, clGetCommandQueueInfo, (cl_command_queue a, cl_command_queue_info b, size_t c, void *d, size_t *e), (a, b, c, d, e)) \
  X(cl_mem, clCreateBuffer, (cl_context a, cl_mem_flags b, size_t c, void *d, cl_int *e), (a, b, c, d, e))       \
  X(cl_int, clRetainMemObject, (cl_mem a), (a))                                                                  \
  X(cl_int, clReleaseMemObject, (cl_mem a), (a))                                                                 \
  X(cl_int, clGetMemObjectInfo, (cl_mem a, cl_mem_info b, size_t c, void *d, size_t *e), (a, b, c, d, e))        \
  X(cl_program, clCreateProgramWithSource, (cl_context a, cl_uint b, const char **c, const size_t *d, cl_int *e), (a, b, c, d, e)) \
  X(cl_program, clCreateProgramWithBinary,                                                                       \
    (cl_context a, cl_uint b, const cl_device_id *c, const size_t *d, const unsigned char **e, cl_int *f, cl_int *g), \
    (a, b, c, d, e, f, g))                                                                                       \
  X(cl_int, clBuildProgram,                                                                                      \
    (cl_program a, cl_uint b, const cl_device_id *c, const char *d, void(CL_CALLBACK *e)(cl_program, void *), void *f), \
    (a, b, c, d, e, f))                                                                                          \
  X(cl_int, clGetProgramInfo, (cl_program a, cl_program_info b, size_t c, void *d, size_t *e), (a, b, c, d, e))  \
  X(cl_int, clGetProgramBuildInfo, (cl_program a, cl_device_id b, cl_program_build_info c, size_t d, void *e, size_t *f), \
    (a, b, c, d, e, f))                                                                                          \
  X(cl_int, clReleaseProgram, (cl_program a), (a))                                                               \
  X(cl_kernel, clCreateKernel, (cl_program a, const char *b, cl_int *c), (a, b, c))                              \
  X(cl_int, clCreateKernelsInProgram, (cl_program a, cl_uint b, cl_kernel *c, cl_uint *d), (a, b, c, d))         \
  X(cl_int, clReleaseKernel, (cl_kernel a), (a))                                                                 \
  X(cl_int, clSetKernelArg, (cl_kernel a, cl_uint b, size_t c, const void *d), (a, b, c, d))                     \
  X(cl_int, clGetKernelWorkGroupInfo, (cl_kernel a, cl_device_id b, cl_kernel_work_group_info c, size_t d, void *e, size_t *f), \
    (a, b, c, d, e, f))                                                                                          \
  X(cl_int, clEnqueueNDRangeKernel,                                                                              \
    (cl_command_queue a, cl_kernel b, cl_uint c, const size_t *d, const size_t *e, const size_t *f, cl_uint g,   \
     const cl_event *h, cl_event *i), (a, b, c, d, e, f, g, h, i))                                               \
  X(cl_int, clEnqueueReadBuffer,                                                                                 \
    (cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e, void *f, cl_uint g, const cl_event *h, cl_event *i), \
    (a, b, c, d, e, f, g, h, i))                                                                                 \
  X(cl_int, clEnqueueWriteBuffer,                                                                                \
    (cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e, const void *f, cl_uint g, const cl_event *h, cl_event *i), \
    (a, b, c, d, e, f, g, h, i))                                                                                 \
  X(cl_int, clEnqueueCopyBuffer,                                                                                 \
    (cl_command_queue a, cl_mem b, cl_mem c, size_t d, size_t e, size_t f, cl_uint g, const cl_event *h, cl_event *i), \
    (a, b, c, d, e, f, g, h, i))                                                                                 \
  X(cl_int, clEnqueueFillBuffer,                                                                                 \
    (cl_command_queue a, cl_mem b, const void *c, size_t d, size_t e, size_t f, cl_uint g, const cl_event *h, cl_event *i), \
    (a, b, c, d, e, f, g, h, i))                                                                                 \
  X(cl_int, clEnqueueMarkerWithWaitList, (cl_command_queue a, cl_uint b, const cl_event *c, cl_event *d), (a, b, c, d)) \
  X(cl_int, clEnqueueBarrierWithWaitList, (cl_command_queue a, cl_uint b, const cl_event *c, cl_event *d), (a, b, c, d)) \
  X(cl_int, clFinish, (cl_command_queue a), (a))                                                                 \
  X(cl_int, clFlush, (cl_command_queue a), (a))                                                                  \
  X(cl_int, clWaitForEvents, (cl_uint a, const cl_event *b), (a, b))                                             \
  X(cl_int, clRetainEvent, (cl_event a), (a))                                                                    \
  X(cl_int, clReleaseEvent, (cl_event a), (a))                                                                   \
  X(cl_int, clGetEventProfilingInfo, (cl_event a, cl_profiling_info b, size_t c, void *d, size_t *e), (a, b, c, d, e))

#define OFTAWQ__CL_POINTER(ret, name, params, args) static ret(CL_API_CALL *p_##name) params;
OFTAWQ__CL_FUNCTIONS(OFTAWQ__CL_POINTER)
#undef OFTAWQ__CL_POINTER

/* The definitions below stand in for libOpenCL's; they are hidden (-fvisibility=hidden)
 * and only reached after oftawq__opencl_load() succeeded. */
#define OFTAWQ__CL_STUB(ret, name, params, args) \
  CL_API_ENTRY ret CL_API_CALL name params { return p_##name args; }
OFTAWQ__CL_FUNCTIONS(OFTAWQ__CL_STUB)
#undef OFTAWQ__CL_STUB

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static void *library;

/* Vendor libraries by soname first (Android's linker namespaces allow those
 * listed in public.libraries.txt), then absolute vendor paths. */
static const char *const candidates[] = {
  "libOpenCL.so", "libOpenCL.so.1", "libOpenCL-pixel.so", "libGLES_mali.so", "libmali.so",
  "/vendor/lib64/libOpenCL.so", "/system/vendor/lib64/libOpenCL.so", "/vendor/lib64/egl/libGLES_mali.so",
  "/vendor/lib/libOpenCL.so", "/system/vendor/lib/libOpenCL.so", "/vendor/lib/egl/libGLES_mali.so",
  NULL,
};

static int resolve(void *handle, const char *file, char *why, size_t cap)
{
#define OFTAWQ__CL_RESOLVE(ret, name, params, args)                                      \
  *(void **)&p_##name = dlsym(handle, #name);                                            \
  if (!p_##name) {                                                                       \
    if (why && cap) snprintf(why, cap, "the OpenCL library %s lacks %s", file, #name);  \
    return 0;                                                                            \
  }
  OFTAWQ__CL_FUNCTIONS(OFTAWQ__CL_RESOLVE)
#undef OFTAWQ__CL_RESOLVE
  return 1;
}

/* why = "no OpenCL library found (tried a, b, ...); ..." */
static void describe_not_found(char *why, size_t cap)
{
  size_t i, used;
  if (!why || !cap) return;
  snprintf(why, cap, "no OpenCL library found (tried");
  for (i = 0; candidates[i] && (used = strlen(why)) < cap; i++)
    snprintf(why + used, cap - used, "%s %s", i ? "," : "", candidates[i]);
  used = strlen(why);
  if (used < cap) snprintf(why + used, cap - used, "); set OFTAWQ_OPENCL_LIBRARY to its path");
}

oftawq_status oftawq__opencl_load(const char *path, char *why, size_t why_capacity)
{
  oftawq_status status = OFTAWQ_OK;
  if (why && why_capacity) why[0] = '\0';
  pthread_mutex_lock(&load_lock);
  if (!library) {
    const char *env = getenv("OFTAWQ_OPENCL_LIBRARY");
    const char *only = (path && *path) ? path : (env && *env) ? env : NULL;
    const char *origin = (path && *path) ? "the opencl_library option" : "OFTAWQ_OPENCL_LIBRARY";
    int found_one = 0;
    size_t i;
    status = OFTAWQ_E_NO_DEVICE;
    for (i = 0; only ? i == 0 : candidates[i] != NULL; i++) {
      const char *name = only ? only : candidates[i];
      void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        const char *detail = dlerror();
        if (only && why && why_capacity)
          snprintf(why, why_capacity, "cannot load the OpenCL library %s (from %s): %s", name, origin,
                   detail ? detail : "dlopen failed");
        continue;
      }
      found_one = 1;
      if (resolve(handle, name, why, why_capacity)) {
        library = handle;
        status = OFTAWQ_OK;
        if (why && why_capacity) why[0] = '\0';
        break;
      }
      dlclose(handle);
    }
    /* Nothing loaded from the vendor list: say what was tried (a library that loaded but
     * lacked an entry point has said so already). */
    if (status < 0 && !only && !found_one) describe_not_found(why, why_capacity);
  }
  pthread_mutex_unlock(&load_lock);
  return status;
}

#endif /* OFTAWQ_OPENCL_DLOPEN */
