/* status.c: status names and messages, the version functions, and reporting without a context. */
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

void oftawq__vlog(oftawq_log_fn fn, void *user, oftawq_log_level level, const char *fmt, va_list ap)
{
  char *msg;
  if (!fn) return;
  msg = oftawq__vformat(fmt, ap);
  fn(user, level, msg ? msg : fmt); /* out of memory: the unformatted text beats nothing */
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
  if (why && cap) {
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
  }
  return status;
}
