/* program.h: internal interface of program.c - building OpenCL programs with the memory and binary caches. */
#ifndef OFTAWQ_PROGRAM_H
#define OFTAWQ_PROGRAM_H

#include "runtime/context.h"

/* Environment variable naming a folder of .cl files that replace the embedded ones. */
#define OFTAWQ_CL_DIR_ENV "OFTAWQ_CL_DIR"

/* The kernel family prepended to every other (cl/common.cl). */
#define OFTAWQ__CL_COMMON "common"

/* The program of kernel family `family` (a cl/<family>.cl file, after cl/common.cl) built with
 * `options` (-D parameters). Memory cache first, then the binary cache, then
 * the compiler. The context owns the program. On a build failure the status
 * is OFTAWQ_E_BUILD and the compiler log is in the last-error detail. */
oftawq_status oftawq__program_get(oftawq_context *ctx, const char *family, const char *options, cl_program *out);

/* The identity of a build (everything that may change the binary): the key of its cache entry. Caller frees. */
char *oftawq__program_key(const oftawq_context *ctx, const char *name, const char *source, size_t length,
                          const char *options);

/* Same for a source given by the caller (named `name` in messages). */
oftawq_status oftawq__program_from_source(oftawq_context *ctx, const char *name, const char *source, size_t length,
                                          const char *options, cl_program *out);

/* A new kernel object (caller owns: clReleaseKernel) from a family's program. */
oftawq_status oftawq__kernel_create(oftawq_context *ctx, const char *family, const char *options,
                                    const char *kernel_name, cl_kernel *out);

/* Kernels an object keeps for the options it has used (a layer's variants, say). */
typedef struct oftawq__kernel_list {
  struct oftawq__kernel_list *next;
  char *key;                 /* name + options */
  cl_kernel kernel;
} oftawq__kernel_list;

/* The kernel `kernel_name` of `family` built with `options`, created once per list (the list owns it). */
oftawq_status oftawq__kernel_cached(oftawq_context *ctx, oftawq__kernel_list **list, const char *family,
                                    const char *options, const char *kernel_name, cl_kernel *out);
void oftawq__kernel_list_free(oftawq__kernel_list *list);

/* Enqueues a kernel over `dims` dimensions; each global size is rounded up to
 * a multiple of its local size (local may be NULL). `what` names it in errors. */
oftawq_status oftawq__enqueue(oftawq_context *ctx, cl_kernel kernel, const char *what, cl_uint dims,
                              const size_t *global, const size_t *local, cl_uint n_wait, const cl_event *wait,
                              cl_event *done);

/* Sets kernel argument `index` from a value; returns the OpenCL error. */
#define OFTAWQ__ARG(kernel, index, value) clSetKernelArg((kernel), (index), sizeof(value), &(value))

/* Rewrites the cached binary of each program this context compiled from source, when a fresh build now
 * gives a larger binary. PoCL puts into a program's binary the work-group functions its own cache
 * holds when the program is built, and compiles them at a kernel's first launch: a binary saved
 * right after the build lacks them, and every warm start with an empty PoCL cache would compile them
 * again (0.2 to 0.6 s each). Waits for the queue. */
void oftawq__programs_refresh_binaries(oftawq_context *ctx);

/* Releases every program of the context. */
void oftawq__programs_release(oftawq_context *ctx);

#endif /* OFTAWQ_PROGRAM_H */
