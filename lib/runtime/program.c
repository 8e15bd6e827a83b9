/* program.c: OpenCL program builds, keyed and cached in memory per context and on disk through cache.c. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "runtime/cache.h"
#include "runtime/kernels.h"
#include "runtime/program.h"

const oftawq__kernel_source *oftawq__kernel_source_find(const char *name)
{
  const oftawq__kernel_source *k;
  for (k = oftawq__kernel_sources; k->name; k++)
    if (!strcmp(k->name, name)) return k;
  return NULL;
}

/* Reads $OFTAWQ_CL_DIR/<family>.cl into *text when the variable is set and the file exists (*text stays NULL
 * otherwise); a file that exists but cannot be read (a FIFO, a folder, a loop of links) is an error. */
static oftawq_status read_override(oftawq_context *ctx, const char *family, char **text, size_t *length)
{
  const char *dir = getenv(OFTAWQ_CL_DIR_ENV);
  char path[4096], why[512];
  oftawq_status status;
  *text = NULL;
  if (!dir || !*dir) return OFTAWQ_OK;
  if (snprintf(path, sizeof path, "%s/%s.cl", dir, family) >= (int)sizeof path)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "$" OFTAWQ_CL_DIR_ENV " is too long");
  status = oftawq__file_read(path, 0, OFTAWQ__MAX_TEXT_FILE, text, length, why, sizeof why);
  if (status == OFTAWQ_E_NOT_FOUND) return OFTAWQ_OK;
  if (status < 0) return oftawq__fail(ctx, status, "kernel source override: %s", why);
  return OFTAWQ_OK;
}

/* The identity of a build: everything that may change the binary ("+id": programs carry their identity kernel). */
char *oftawq__program_key(const oftawq_context *ctx, const char *name, const char *source, size_t length,
                          const char *options)
{
  const oftawq_device_info *i = &ctx->info;
  unsigned long long h = (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, source, length);
  size_t n = strlen(i->platform_name) + strlen(i->platform_version) + strlen(i->name) + strlen(i->version) +
             strlen(i->driver_version) + strlen(name) + strlen(options) + 128;
  char *key = malloc(n);
  if (key)
    snprintf(key, n, "oftawq %s+id|%s|%s|%s|%s|%s|%s|%016llx|%s", OFTAWQ_VERSION_STRING, i->platform_name,
             i->platform_version, i->name, i->version, i->driver_version, name, h, options);
  return key;
}

static oftawq_status build_failure(oftawq_context *ctx, cl_program prog, cl_int err, const char *name,
                                   const char *options)
{
  size_t n = 0;
  char *log = NULL;
  oftawq_status status = oftawq__cl_fail(ctx, err, "building OpenCL program '%s' with options '%s' failed", name,
                                         options);
  if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS && n > 1 &&
      (log = malloc(n + 1)) != NULL &&
      clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
    log[n] = '\0';
    oftawq__append_error(ctx, "\nbuild log:\n");
    oftawq__append_error(ctx, log);
  }
  free(log);
  return status;
}

/* Every program carries an empty kernel whose name holds the hash of its key: a cached binary proves with it
 * that it is the build it is filed under (an entry can hold another program's binary with a valid checksum). */
static void identity_kernel(const char *key, char *name, size_t cap)
{
  snprintf(name, cap, "oftawq_identity_%016llx", (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, key, strlen(key)));
}

/* Tries the persistent cache; any failure on the way is a miss, never an error. */
static cl_program load_binary(oftawq_context *ctx, const char *key, const char *options, size_t *cached_bytes)
{
  unsigned char *bin = NULL;
  size_t len = 0;
  cl_int err = CL_SUCCESS, bin_status = CL_SUCCESS;
  const unsigned char *cbin;
  cl_program prog;
  cl_kernel identity = NULL;
  char identity_name[64];
  if (!oftawq__bincache_load(ctx, key, &bin, &len)) return NULL;
  cbin = bin;
  *cached_bytes = len;
  prog = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->device, &len, &cbin, &bin_status, &err);
  free(bin);
  if (!prog || err != CL_SUCCESS || bin_status != CL_SUCCESS ||
      clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
    if (prog) clReleaseProgram(prog);
    oftawq__bincache_reject(ctx, "the driver refused the binary");
    return NULL;
  }
  identity_kernel(key, identity_name, sizeof identity_name);
  if (!(identity = clCreateKernel(prog, identity_name, &err))) {
    clReleaseProgram(prog);
    oftawq__bincache_reject(ctx, "it holds another program's binary");
    return NULL;
  }
  clReleaseKernel(identity);
  return prog;
}

/* The source to compile: the caller's, then the identity kernel. Caller frees. */
static char *source_with_identity(const char *key, const char *source, size_t length, size_t *total)
{
  char name[64], *full;
  size_t n;
  identity_kernel(key, name, sizeof name);
  n = length + strlen(name) + 32;
  if (!(full = malloc(n))) return NULL;
  memcpy(full, source, length);
  *total = length + (size_t)snprintf(full + length, n - length, "\n__kernel void %s(void) {}\n", name);
  return full;
}

/* Saves the binary of a freshly compiled program and returns its size (0: not saved). Creating the
 * kernels first matters on drivers that compile lazily (Mali), or the binary is incomplete. */
static size_t save_binary(oftawq_context *ctx, cl_program prog, const char *key)
{
  cl_uint nk = 0, i;
  cl_kernel *kernels = NULL;
  size_t len = 0;
  unsigned char *bin = NULL;
  if (!ctx->cache_dir) return 0;
  if (clCreateKernelsInProgram(prog, 0, NULL, &nk) == CL_SUCCESS && nk > 0 &&
      (kernels = calloc(nk, sizeof *kernels)) != NULL &&
      clCreateKernelsInProgram(prog, nk, kernels, NULL) == CL_SUCCESS) {
    for (i = 0; i < nk; i++) clReleaseKernel(kernels[i]);
  }
  free(kernels);
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS || len == 0) return 0;
  if (!(bin = malloc(len))) return 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS)
    oftawq__bincache_store(ctx, key, bin, len);
  else
    len = 0;
  free(bin);
  return len;
}

void oftawq__programs_refresh_binaries(oftawq_context *ctx)
{
  oftawq__program_entry *e;
  if (!ctx->cache_dir || !ctx->queue || clFinish(ctx->queue) != CL_SUCCESS) return;
  for (e = ctx->programs; e; e = e->next) {
    size_t src_len = 0, opt_len = 0, len = 0;
    char *src = NULL, *opts = NULL;
    cl_program again = NULL;
    const char *csrc;
    if (!e->compiled_here || !e->cached_bytes) continue;
    /* a program built from the same source now finds the work-group functions in the driver's cache */
    if (clGetProgramInfo(e->program, CL_PROGRAM_SOURCE, 0, NULL, &src_len) == CL_SUCCESS && src_len > 1 &&
        clGetProgramBuildInfo(e->program, ctx->device, CL_PROGRAM_BUILD_OPTIONS, 0, NULL, &opt_len) == CL_SUCCESS &&
        (src = malloc(src_len)) != NULL && (opts = malloc(opt_len + 1)) != NULL &&
        clGetProgramInfo(e->program, CL_PROGRAM_SOURCE, src_len, src, NULL) == CL_SUCCESS &&
        clGetProgramBuildInfo(e->program, ctx->device, CL_PROGRAM_BUILD_OPTIONS, opt_len, opts, NULL) == CL_SUCCESS) {
      csrc = src;
      opts[opt_len] = '\0';
      again = clCreateProgramWithSource(ctx->cl_ctx, 1, &csrc, NULL, NULL);
      if (again && clBuildProgram(again, 1, &ctx->device, opts, NULL, NULL) == CL_SUCCESS &&
          clGetProgramInfo(again, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) == CL_SUCCESS &&
          len > e->cached_bytes)
        e->cached_bytes = save_binary(ctx, again, e->key);
    }
    e->compiled_here = 0;
    if (again) clReleaseProgram(again);
    free(src);
    free(opts);
  }
}

oftawq_status oftawq__program_from_source(oftawq_context *ctx, const char *name, const char *source, size_t length,
                                          const char *options, cl_program *out)
{
  oftawq__program_entry *e;
  oftawq_status status = OFTAWQ_OK;
  cl_program prog = NULL;
  cl_int err = CL_SUCCESS;
  char *key, *full = NULL;
  size_t full_length = 0;

  *out = NULL;
  if (!options) options = "";
  if (!(key = oftawq__program_key(ctx, name, source, length, options))) return OFTAWQ_E_OUT_OF_MEMORY;
  for (e = ctx->programs; e; e = e->next) {
    if (!strcmp(e->key, key)) {
      ctx->stats.programs_from_memory++;
      *out = e->program;
      free(key);
      return OFTAWQ_OK;
    }
  }
  e = calloc(1, sizeof *e);
  if (!e) {
    status = OFTAWQ_E_OUT_OF_MEMORY;
    goto fail;
  }
  if ((prog = load_binary(ctx, key, options, &e->cached_bytes)) != NULL) {
    ctx->stats.programs_from_binary++;
  } else {
    const char *text = full = source_with_identity(key, source, length, &full_length);
    if (!full) {
      status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      goto fail;
    }
    prog = clCreateProgramWithSource(ctx->cl_ctx, 1, &text, &full_length, &err);
    if (!prog) {
      status = oftawq__cl_fail(ctx, err, "creating OpenCL program '%s' failed", name);
      goto fail;
    }
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
      status = build_failure(ctx, prog, err, name, options);
      goto fail;
    }
    ctx->stats.programs_from_source++;
    e->cached_bytes = save_binary(ctx, prog, key);
    e->compiled_here = 1;
  }
  free(full);
  e->key = key;
  e->program = prog;
  e->next = ctx->programs;
  ctx->programs = e;
  *out = prog;
  return OFTAWQ_OK;
fail:
  if (prog) clReleaseProgram(prog);
  free(full);
  free(e);
  free(key);
  return status;
}

/* A family's source: the override file if there is one, else the embedded text. Sets *owned when malloc'd. */
static oftawq_status family_source(oftawq_context *ctx, const char *family, const char **text, size_t *length,
                                   char **owned)
{
  const oftawq__kernel_source *k;
  oftawq_status status = read_override(ctx, family, owned, length);
  *text = *owned;
  if (status < 0 || *owned) return status;
  if (!(k = oftawq__kernel_source_find(family)))
    return oftawq__fail(ctx, OFTAWQ_E_INTERNAL, "no embedded OpenCL source named '%s'", family);
  *text = k->source;
  *length = k->length;
  return OFTAWQ_OK;
}

oftawq_status oftawq__program_get(oftawq_context *ctx, const char *family, const char *options, cl_program *out)
{
  size_t common_len = 0, family_len = 0;
  char *common_owned = NULL, *family_owned = NULL, *source = NULL;
  const char *common = NULL, *text = NULL;
  oftawq_status status;
  *out = NULL;
  OFTAWQ__CHECK(family_source(ctx, OFTAWQ__CL_COMMON, &common, &common_len, &common_owned));
  OFTAWQ__CHECK(family_source(ctx, family, &text, &family_len, &family_owned));
  if (!(source = malloc(common_len + family_len + 2))) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  /* every family starts with the common definitions */
  memcpy(source, common, common_len);
  source[common_len] = '\n';
  memcpy(source + common_len + 1, text, family_len);
  source[common_len + 1 + family_len] = '\0';
  status = oftawq__program_from_source(ctx, family, source, common_len + 1 + family_len, options, out);
fail:
  free(source);
  free(common_owned);
  free(family_owned);
  return status;
}

oftawq_status oftawq__kernel_create(oftawq_context *ctx, const char *family, const char *options,
                                    const char *kernel_name, cl_kernel *out)
{
  cl_program prog;
  cl_int err = CL_SUCCESS;
  oftawq_status status = oftawq__program_get(ctx, family, options, &prog);
  *out = NULL;
  if (status < 0) return status;
  *out = clCreateKernel(prog, kernel_name, &err);
  if (!*out) return oftawq__cl_fail(ctx, err, "creating kernel '%s' of '%s' failed", kernel_name, family);
  return OFTAWQ_OK;
}

oftawq_status oftawq__kernel_cached(oftawq_context *ctx, oftawq__kernel_list **list, const char *family,
                                    const char *options, const char *kernel_name, cl_kernel *out)
{
  size_t n = strlen(kernel_name) + strlen(options) + 2;
  oftawq__kernel_list *e;
  char *key = malloc(n);
  oftawq_status status;
  *out = NULL;
  if (!key) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  snprintf(key, n, "%s %s", kernel_name, options);
  for (e = *list; e; e = e->next)
    if (!strcmp(e->key, key)) {
      free(key);
      *out = e->kernel;
      return OFTAWQ_OK;
    }
  if (!(e = calloc(1, sizeof *e))) {
    free(key);
    return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  if ((status = oftawq__kernel_create(ctx, family, options, kernel_name, &e->kernel)) < 0) {
    free(key);
    free(e);
    return status;
  }
  e->key = key;
  e->next = *list;
  *list = e;
  *out = e->kernel;
  return OFTAWQ_OK;
}

void oftawq__kernel_list_free(oftawq__kernel_list *list)
{
  oftawq__kernel_list *next;
  for (; list; list = next) {
    next = list->next;
    clReleaseKernel(list->kernel);
    free(list->key);
    free(list);
  }
}

oftawq_status oftawq__enqueue(oftawq_context *ctx, cl_kernel kernel, const char *what, cl_uint dims,
                              const size_t *global, const size_t *local, cl_uint n_wait, const cl_event *wait,
                              cl_event *done)
{
  size_t g[3];
  cl_uint i;
  cl_int err;
  for (i = 0; i < dims; i++) {
    g[i] = global[i];
    if (local && local[i] > 1 && g[i] % local[i]) g[i] += local[i] - g[i] % local[i];
    if (g[i] == 0) g[i] = local ? local[i] : 1;
  }
  err = clEnqueueNDRangeKernel(ctx->queue, kernel, dims, NULL, g, local, n_wait, n_wait ? wait : NULL, done);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "enqueueing kernel %s failed", what);
  return OFTAWQ_OK;
}

void oftawq__programs_release(oftawq_context *ctx)
{
  oftawq__program_entry *e = ctx->programs, *next;
  for (; e; e = next) {
    next = e->next;
    clReleaseProgram(e->program);
    free(e->key);
    free(e);
  }
  ctx->programs = NULL;
}
