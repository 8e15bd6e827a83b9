/* internal.h: the error/log helpers and small utilities shared by every library file (no OpenCL types). */
#ifndef OFTAWQ_INTERNAL_H
#define OFTAWQ_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "oftawq.h"

#if defined(__GNUC__)
#  define OFTAWQ__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define OFTAWQ__PRINTF(f, a)
#endif

/* Records `status` with a printf-style detail on ctx (if any) and returns it. */
oftawq_status oftawq__fail(oftawq_context *ctx, oftawq_status status, const char *fmt, ...) OFTAWQ__PRINTF(3, 4);
/* Writes a printf-style detail into a caller buffer (may be NULL) and returns `status`. */
oftawq_status oftawq__why(char *why, size_t cap, oftawq_status status, const char *fmt, ...) OFTAWQ__PRINTF(4, 5);
/* Appends text to the last error detail (e.g. a build log). */
void oftawq__append_error(oftawq_context *ctx, const char *text);
void oftawq__clear_error(oftawq_context *ctx);
void oftawq__log(const oftawq_context *ctx, oftawq_log_level level, const char *fmt, ...) OFTAWQ__PRINTF(3, 4);
/* Same, for code that has a callback but no context yet. */
void oftawq__vlog(oftawq_log_fn fn, void *user, oftawq_log_level level, const char *fmt, va_list ap);
void oftawq__log_to(oftawq_log_fn fn, void *user, oftawq_log_level level, const char *fmt, ...) OFTAWQ__PRINTF(4, 5);

/* Checked size arithmetic: return 0 on overflow. */
int oftawq__mul_size(size_t a, size_t b, size_t *out);
char *oftawq__strdup(const char *s);
/* vsnprintf into a fresh heap string; NULL when out of memory. */
char *oftawq__vformat(const char *fmt, va_list ap);

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
