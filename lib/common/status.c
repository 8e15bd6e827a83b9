/* status.c: status names and messages, the version functions, and reporting: every message escaped to one inert line. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"

const char *oftawq_status_name(oftawq_status status)
{
  switch (status) {
#define OFTAWQ__NAME(name, value, message) \
  case OFTAWQ_##name: return #name;
    OFTAWQ_STATUS_LIST(OFTAWQ__NAME)
#undef OFTAWQ__NAME
  }
  return "UNKNOWN";
}

const char *oftawq_status_message(oftawq_status status)
{
  switch (status) {
#define OFTAWQ__MESSAGE(name, value, message) \
  case OFTAWQ_##name: return message;
    OFTAWQ_STATUS_LIST(OFTAWQ__MESSAGE)
#undef OFTAWQ__MESSAGE
  }
  return "unknown status";
}

unsigned oftawq_version(void) { return OFTAWQ_VERSION_HEX; }

const char *oftawq_version_string(void) { return OFTAWQ_VERSION_STRING; }

/* Characters that reorder or split what a terminal shows: C1 controls, line and paragraph separators,
 * bidirectional embeddings, overrides and isolates. */
static int invisible(uint32_t c)
{
  return (c >= 0x80 && c < 0xa0) || c == 0x2028 || c == 0x2029 || (c >= 0x202a && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

size_t oftawq__escape(const char *text, char *buf, size_t cap)
{
  const unsigned char *p = (const unsigned char *)text;
  size_t left = strlen(text), out = 0, written = 0, step;
  int full = 0;
  for (; left; p += step, left -= step) {
    char piece[8];
    size_t n;
    uint32_t c = 0;
    step = oftawq__utf8_decode(p, left, &c);
    if (step == 1 && c >= 0x20 && c != 0x7f) {
      piece[0] = (char)c;
      n = 1;
    } else if (step == 1 && (c == '\n' || c == '\r' || c == '\t')) {
      n = (size_t)snprintf(piece, sizeof piece, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
    } else if (step == 0 || step == 1) { /* invalid UTF-8, or another control byte */
      n = (size_t)snprintf(piece, sizeof piece, "\\x%02x", p[0]);
      step = 1;
    } else if (invisible(c)) {
      n = (size_t)snprintf(piece, sizeof piece, "\\u%04x", (unsigned)c);
    } else {
      memcpy(piece, p, step);
      n = step;
    }
    if (buf && !full && out + n < cap) { /* no room: end before it, never inside an escape */
      memcpy(buf + out, piece, n);
      written = out + n;
    } else {
      full = 1;
    }
    out += n;
  }
  if (buf && cap) buf[written] = '\0';
  return out;
}

char *oftawq__vformat_escaped(const char *fmt, va_list ap)
{
  char *raw = oftawq__vformat(fmt, ap), *escaped;
  size_t n;
  if (!raw) return NULL;
  n = oftawq__escape(raw, NULL, 0);
  if ((escaped = malloc(n + 1)) != NULL) oftawq__escape(raw, escaped, n + 1);
  free(raw);
  return escaped;
}

oftawq_status oftawq_escape(const char *text, char *buf, size_t capacity, size_t *needed)
{
  size_t n;
  if (needed) *needed = 0;
  if (buf && capacity) buf[0] = '\0';
  if (!text || (!buf && capacity)) return OFTAWQ_E_INVALID_ARGUMENT;
  n = oftawq__escape(text, buf, capacity);
  if (needed) *needed = n;
  return OFTAWQ_OK;
}

void oftawq__vlog(oftawq_log_fn fn, void *user, oftawq_log_level level, const char *fmt, va_list ap)
{
  char *msg;
  if (!fn) return;
  msg = oftawq__vformat_escaped(fmt, ap);
  fn(user, level, msg ? msg : "(out of memory formatting a message)");
  free(msg);
}

void oftawq__log_to(oftawq_log_fn fn, void *user, oftawq_log_level level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  oftawq__vlog(fn, user, level, fmt, ap);
  va_end(ap);
}

oftawq_status oftawq__why(char *why, size_t cap, oftawq_status status, const char *fmt, ...)
{
  va_list ap;
  char *raw;
  if (why && cap) {
    va_start(ap, fmt);
    raw = oftawq__vformat(fmt, ap);
    va_end(ap);
    oftawq__escape(raw ? raw : "(out of memory formatting a message)", why, cap);
    free(raw);
  }
  return status;
}
