/* internal.h: the context structure and the error/log helpers shared by every library file. */
#ifndef OFTAWQ_INTERNAL_H
#define OFTAWQ_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "clapi.h"
#include "oftawq.h"
#include "oftawq_cl.h"

#if defined(__GNUC__)
#  define OFTAWQ__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define OFTAWQ__PRINTF(f, a)
#endif

/* A program built in this context, found again by its key (family + options + source hash). */
typedef struct oftawq__program_entry {
  struct oftawq__program_entry *next;
  char *key;
  cl_program program;
} oftawq__program_entry;

struct oftawq__tuning; /* tune.c */

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
};

/* Records `status` with a printf-style detail on ctx (if any) and returns it. */
oftawq_status oftawq__fail(oftawq_context *ctx, oftawq_status status, const char *fmt, ...) OFTAWQ__PRINTF(3, 4);
/* Like oftawq__fail for an OpenCL error: maps the code to a status and appends its name. */
oftawq_status oftawq__cl_fail(oftawq_context *ctx, cl_int err, const char *fmt, ...) OFTAWQ__PRINTF(3, 4);
/* Writes a printf-style detail into a caller buffer (may be NULL) and returns `status`. */
oftawq_status oftawq__why(char *why, size_t cap, oftawq_status status, const char *fmt, ...) OFTAWQ__PRINTF(4, 5);
/* Appends text to the last error detail (e.g. a build log). */
void oftawq__append_error(oftawq_context *ctx, const char *text);
void oftawq__clear_error(oftawq_context *ctx);
void oftawq__log(const oftawq_context *ctx, oftawq_log_level level, const char *fmt, ...) OFTAWQ__PRINTF(3, 4);
/* Same, for code that has a callback but no context yet. */
void oftawq__log_to(oftawq_log_fn fn, void *user, oftawq_log_level level, const char *fmt, ...) OFTAWQ__PRINTF(4, 5);
const char *oftawq__cl_error_name(cl_int err);

/* Checked size arithmetic: return 0 on overflow. */
int oftawq__mul_size(size_t a, size_t b, size_t *out);
char *oftawq__strdup(const char *s);

/* 64-bit FNV-1a, incremental: start from OFTAWQ__FNV_OFFSET. */
#define OFTAWQ__FNV_OFFSET UINT64_C(0xcbf29ce484222325)
uint64_t oftawq__fnv1a(uint64_t h, const void *data, size_t len);

/* Early-exit helpers for functions with one `fail:` label and a `status` variable. */
#define OFTAWQ__CHECK(expr)            \
  do {                                 \
    status = (expr);                   \
    if (status < 0) goto fail;         \
  } while (0)

#endif /* OFTAWQ_INTERNAL_H */
