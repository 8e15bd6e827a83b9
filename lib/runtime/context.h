/* context.h: the context structure (device, queue, caches, error detail) and the OpenCL error helpers. */
#ifndef OFTAWQ_CONTEXT_H
#define OFTAWQ_CONTEXT_H

#include "common/internal.h"
#include "runtime/clapi.h"
#include "oftawq_cl.h"

/* A program built in this context, found again by its key (family + options + source hash). */
typedef struct oftawq__program_entry {
  struct oftawq__program_entry *next;
  char *key;
  cl_program program;
  size_t cached_bytes;              /* the size of its binary in the binary cache (0: not cached) */
  int compiled_here;                /* compiled from source in this context */
} oftawq__program_entry;

struct oftawq__tuning; /* runtime/tuning.c */

/* A device buffer the context's layers share (runtime/buffer.c), and what it holds. */
#define OFTAWQ__SCRATCH_SLOTS 3
typedef struct oftawq__scratch_slot {
  cl_mem buf;
  size_t bytes;
  uint64_t tag;                     /* who filled it last (0: nobody); see oftawq__scratch_shared */
} oftawq__scratch_slot;

struct oftawq_context {
  cl_platform_id platform;
  cl_device_id device;
  cl_context cl_ctx;
  cl_command_queue queue;
  int profiling;
  int in_order;                     /* the queue runs commands in order: no events needed between them */
  oftawq_device_info info;
  char *cache_dir;                  /* NULL: memory only */
  oftawq_log_fn log;
  void *log_user;
  char *last_error;                 /* heap; NULL means "" */
  cl_int last_cl_error;
  oftawq__program_entry *programs;
  oftawq_context_stats stats;
  struct oftawq__tuning *tuning;    /* tuned parameters of this device (NULL if out of memory) */
  oftawq__scratch_slot scratch[OFTAWQ__SCRATCH_SLOTS];
  uint64_t next_id;                 /* ids for objects that tag scratch contents */
  unsigned awq_wg_multiple;         /* the AWQ kernels' preferred work-group multiple (0: not asked yet) */
  unsigned float_width;             /* floats per SIMD register (oftawq__device_float_width), 0: unknown */
};

/* Like oftawq__fail for an OpenCL error: maps the code to a status and appends its name. */
oftawq_status oftawq__cl_fail(oftawq_context *ctx, cl_int err, const char *fmt, ...) OFTAWQ__PRINTF(3, 4);
const char *oftawq__cl_error_name(cl_int err);

#endif /* OFTAWQ_CONTEXT_H */
