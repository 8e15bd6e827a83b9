/* cli.c: helpers shared by the oftawq commands - error lines, JSON strings, list parsing, the log callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(const char *fmt, const char *arg)
{
  fputs("oftawq: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  return EXIT_FAILURE;
}

int cli_usage_error(const char *usage, const char *fmt, const char *arg)
{
  fputs("oftawq: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  fputs(usage, stderr);
  return EXIT_USAGE;
}

void cli_json_string(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

int cli_parse_list(const char *text, int *a, int *b, int cap, int pairs)
{
  int n = 0;
  const char *p = text;
  while (*p) {
    char *end;
    long v = strtol(p, &end, 10), w = 0;
    if (end == p || v < 1 || v > 1 << 20) return -1;
    p = end;
    if (pairs) {
      if (*p != 'x' && *p != 'X') return -1;
      w = strtol(p + 1, &end, 10);
      if (end == p + 1 || w < 1 || w > 1 << 20) return -1;
      p = end;
    }
    if (n == cap) return -1;
    a[n] = (int)v;
    if (pairs) b[n] = (int)w;
    n++;
    if (*p == ',') p++;
    else if (*p) return -1;
  }
  return n;
}

int cli_parse_int(const char *text, int *out)
{
  char *end;
  long v = strtol(text, &end, 10);
  if (end == text || *end || v < 1 || v > 1 << 20) return 0;
  *out = (int)v;
  return 1;
}

void cli_log_to_stderr(void *user, oftawq_log_level level, const char *message)
{
  (void)user;
  if (level <= OFTAWQ_LOG_WARNING) fprintf(stderr, "oftawq: %s\n", message);
}
