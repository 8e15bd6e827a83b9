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
/* Frees n heap strings and the array holding them (NULL is a no-op). */
void oftawq__strings_free(char **strings, size_t n);
/* vsnprintf into a fresh heap string; NULL when out of memory. */
char *oftawq__vformat(const char *fmt, va_list ap);
/* The same, escaped with oftawq__escape (a message: one line, inert on a terminal). */
char *oftawq__vformat_escaped(const char *fmt, va_list ap);

/* Sorts the indices idx[0..n) by cmp (stable merge sort: at most n * ceil(log2 n) comparisons whatever the
 * input, so no crafted file makes it quadratic); tmp has room for n. Returns the comparisons made. */
size_t oftawq__sort_indices(size_t *idx, size_t *tmp, size_t n, int (*cmp)(const void *user, size_t a, size_t b),
                            const void *user);

/* The UTF-8 sequence at p (at most `left` bytes): its length, and its code point in *code_point; 0 when it is not
 * valid UTF-8 (overlong forms, surrogates and code points past U+10FFFF included). */
size_t oftawq__utf8_decode(const unsigned char *p, size_t left, uint32_t *code_point);

/* `text` with every byte that could act on a terminal or start a new line escaped (\n, \t, \xHH for other
 * control bytes and invalid UTF-8, \uHHHH for C1, line-separator and bidirectional-override characters),
 * into buf (truncated at an escape's boundary, NUL-terminated when cap > 0). Returns the full length
 * without the NUL. Escaped text escapes to itself. Every message the library makes goes through it. */
size_t oftawq__escape(const char *text, char *buf, size_t cap);

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
