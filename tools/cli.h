/* cli.h: what the oftawq commands share - exit codes, error lines, JSON strings, list parsing, the log callback. */
#ifndef OFTAWQ_CLI_H
#define OFTAWQ_CLI_H

#include <stdio.h>

#include "oftawq.h"

#define EXIT_USAGE 2
/* Shapes or token counts one command line may list. */
#define CLI_MAX_POINTS 64

/* Prints "oftawq: " + fmt (with one string argument) on stderr; returns EXIT_FAILURE. */
int cli_fail(const char *fmt, const char *arg);
/* The same, followed by the command's usage; returns EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, const char *arg);
/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);
/* Parses "a,b,c" of positive ints (pairs "KxN" when `pairs`); returns the count or -1. */
int cli_parse_list(const char *text, int *a, int *b, int cap, int pairs);
/* A positive int up to 2^20; 0 if `text` is not one. */
int cli_parse_int(const char *text, int *out);
/* The library's log callback: errors and warnings on stderr. */
void cli_log_to_stderr(void *user, oftawq_log_level level, const char *message);

/* The commands: argv[0] is the command name. */
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_forward(int argc, char **argv);

#endif /* OFTAWQ_CLI_H */
