/* cli.c: what the oftawq commands share - the output contract (errors, warnings, --quiet, --verbose), escaped
 * text, JSON strings, list parsing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* The global options; one process runs one command. */
static int quiet, verbose;
/* Error lines printed so far. */
static unsigned errors_printed;
/* Messages printed once already (warnings and errors), so that none repeats. */
static char **printed;
static size_t n_printed;

int cli_global_options(int argc, char **argv)
{
  int i, kept = 1;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) { /* the rest is not ours to look at */
      while (i < argc) argv[kept++] = argv[i++];
      break;
    }
    if (!strcmp(argv[i], "--quiet"))
      quiet = 1;
    else if (!strcmp(argv[i], "--verbose"))
      verbose = 1;
    else
      argv[kept++] = argv[i];
  }
  argv[kept] = NULL;
  return kept;
}

int cli_output_writable(const char *path, int folder)
{
  const char *what = folder ? "cannot create the folder" : "cannot write", *slash = strrchr(path, '/');
  size_t dir_len = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1, n;
  char *trial;
  struct stat st;
  int exists = stat(path, &st) == 0, err = 0, fd;
  if (exists && !folder && S_ISDIR(st.st_mode)) err = EISDIR;
  else if (exists && folder && !S_ISDIR(st.st_mode)) err = ENOTDIR;
  if (err) return cli_fail("%s '%s': %s", what, cli_esc(path), strerror(err)), 0;
  if (exists && folder) dir_len = strlen(path); /* the trial file goes inside the folder, else beside the path */
  n = dir_len + 64;
  if (!(trial = malloc(n))) return cli_fail("%s", "out of memory"), 0;
  snprintf(trial, n, "%.*s/.oftawq-write-test-%ld", (int)dir_len, slash || (exists && folder) ? path : ".",
           (long)getpid());
  if ((fd = open(trial, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0) {
    close(fd);
    remove(trial);
  } else {
    err = errno;
  }
  free(trial);
  if (err) return cli_fail("%s '%s': %s", what, cli_esc(path), strerror(err)), 0;
  return 1;
}

/* Escaped copies live in a small ring: enough for the arguments of one message. */
#define ESC_RING 8

const char *cli_esc(const char *s)
{
  static char *ring[ESC_RING];
  static unsigned next;
  size_t n = 0;
  char **slot = &ring[next++ % ESC_RING];
  if (!s) return "(null)";
  oftawq_escape(s, NULL, 0, &n);
  free(*slot);
  if (!(*slot = malloc(n + 1))) return "(out of memory)";
  oftawq_escape(s, *slot, n + 1, NULL);
  return *slot;
}

/* 1 if `text` was printed before (and remembers it otherwise). */
static int seen_before(const char *text)
{
  size_t i;
  char **grown, *copy;
  for (i = 0; i < n_printed; i++)
    if (!strcmp(printed[i], text)) return 1;
  if ((grown = realloc(printed, (n_printed + 1) * sizeof *grown)) == NULL) return 0;
  printed = grown;
  if ((copy = malloc(strlen(text) + 1)) == NULL) return 0;
  strcpy(copy, text);
  printed[n_printed++] = copy;
  return 0;
}

/* "oftawq: " + kind + the first line of `text`, escaped; the lines after it (a compiler log the library appends
 * to a message, say) only with --verbose, each escaped and indented. Text of the CLI's own (`whole`) is escaped
 * whole instead. A progress line on a terminal is cleared first. */
static void print_message(const char *kind, const char *text, int whole)
{
  const char *nl = whole ? NULL : strchr(text, '\n');
  size_t first = nl ? (size_t)(nl - text) : strlen(text);
  char *line = malloc(first + 1);
  if (!line) {
    fputs("oftawq: out of memory\n", stderr);
    return;
  }
  memcpy(line, text, first);
  line[first] = '\0';
  if (isatty(fileno(stderr))) fputs("\r\033[K", stderr);
  fprintf(stderr, "oftawq: %s%s\n", kind, cli_esc(line));
  free(line);
  while (verbose && nl) {
    const char *start = nl + 1;
    nl = strchr(start, '\n');
    first = nl ? (size_t)(nl - start) : strlen(start);
    if (!nl && first == 0) break; /* a final newline ends the text, it starts no line */
    if ((line = malloc(first + 1)) == NULL) return;
    memcpy(line, start, first);
    line[first] = '\0';
    fprintf(stderr, "oftawq:   %s\n", cli_esc(line));
    free(line);
  }
}

static char *vformat(const char *fmt, va_list ap)
{
  va_list copy;
  int n;
  char *s;
  va_copy(copy, ap);
  n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0 || (s = malloc((size_t)n + 1)) == NULL) return NULL;
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

int cli_fail(const char *fmt, ...)
{
  va_list ap;
  char *text;
  va_start(ap, fmt);
  text = vformat(fmt, ap);
  va_end(ap);
  if (!text || !seen_before(text)) print_message("", text ? text : "out of memory", 0);
  free(text);
  errors_printed++;
  return EXIT_FAILURE;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
  static const char lead[] = "usage: oftawq ";
  va_list ap;
  char *text, *line;
  size_t n = 0, len;
  va_start(ap, fmt);
  text = vformat(fmt, ap);
  va_end(ap);
  /* one line, pointing at the help of the command the usage text is for */
  if (!strncmp(usage, lead, sizeof lead - 1) && usage[sizeof lead - 1] != '[')
    n = strcspn(usage + sizeof lead - 1, " \n");
  len = (text ? strlen(text) : 0) + n + 64;
  if (text && (line = malloc(len)) != NULL) {
    snprintf(line, len, "%s (see 'oftawq %.*s%s--help')", text, (int)n, usage + sizeof lead - 1, n ? " " : "");
    print_message("", line, 1);
    free(line);
  } else {
    print_message("", "out of memory", 1);
  }
  free(text);
  return EXIT_USAGE;
}

void cli_warn(const char *fmt, ...)
{
  va_list ap;
  char *text;
  if (quiet) return;
  va_start(ap, fmt);
  text = vformat(fmt, ap);
  va_end(ap);
  if (text && !seen_before(text)) print_message("warning: ", text, 0);
  free(text);
}

void cli_log_to_stderr(void *user, oftawq_log_level level, const char *message)
{
  (void)user;
  if (level == OFTAWQ_LOG_ERROR)
    cli_fail("%s", message);
  else if (level == OFTAWQ_LOG_WARNING)
    cli_warn("%s", message);
  else if (verbose)
    print_message(level == OFTAWQ_LOG_INFO ? "info: " : "debug: ", message, 0);
}

oftawq_status cli_context_create(oftawq_context_options *options, oftawq_context **ctx)
{
  unsigned before = errors_printed;
  oftawq_status status;
  options->log = cli_log_to_stderr;
  status = oftawq_context_create(options, ctx);
  /* the library logs why it found no device; other failures have only their status */
  if (status != OFTAWQ_OK && errors_printed == before)
    cli_fail("cannot start on an OpenCL device: %s", oftawq_status_message(status));
  return status;
}

void cli_json_string(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
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
