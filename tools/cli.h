/* cli.h: what the oftawq commands share - the output contract, escaped text, JSON strings, list parsing. */
#ifndef OFTAWQ_CLI_H
#define OFTAWQ_CLI_H

#include <stdio.h>

#include "oftawq.h"

#if defined(__GNUC__)
#  define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define CLI_PRINTF(f, a)
#endif

#define EXIT_USAGE 2
/* Shapes or token counts one command line may list. */
#define CLI_MAX_POINTS 64

/* The output contract (SPEC 11), for every command: an error is exactly one stderr line "oftawq: <message>";
 * a warning is "oftawq: warning: <message>", each at most once per process, none with --quiet; what follows the
 * first line of a library message (a compiler log) is printed only with --verbose. Untrusted text is escaped. */

/* Takes the global options --quiet and --verbose out of argv, wherever they stand; returns the new argc. */
int cli_global_options(int argc, char **argv);
/* Prints an error line; returns EXIT_FAILURE. A message printed already is not repeated. */
int cli_fail(const char *fmt, ...) CLI_PRINTF(1, 2);
/* A usage error: one line that points at the --help of the command `usage` is for; returns EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Prints a warning line, once per process, unless --quiet. */
void cli_warn(const char *fmt, ...) CLI_PRINTF(1, 2);
/* The library's log callback: errors as cli_fail, warnings as cli_warn, the rest only with --verbose. */
void cli_log_to_stderr(void *user, oftawq_log_level level, const char *message);
/* oftawq_context_create with the CLI's log callback; on failure exactly one error line has been printed. */
oftawq_status cli_context_create(oftawq_context_options *options, oftawq_context **ctx);
/* `s` escaped for a terminal (oftawq_escape), for echoing untrusted text (paths, names); valid for the next
 * few calls. */
const char *cli_esc(const char *s);
/* Outputs written at the end of a command, checked before its work so that a path that cannot take them fails
 * at once (one error line, 0 returned): a file (`folder` 0) or a folder created if missing (`folder` 1; its
 * parent must exist). A trial file is created and removed beside the output (or inside the folder). */
int cli_output_writable(const char *path, int folder);
/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);
/* Parses "a,b,c" of positive ints (pairs "KxN" when `pairs`); returns the count or -1. */
int cli_parse_list(const char *text, int *a, int *b, int cap, int pairs);
/* A positive int up to 2^20; 0 if `text` is not one. */
int cli_parse_int(const char *text, int *out);

/* bench --train: the ratios its goals are stated in (cmd_train.c). */
void cli_print_train_ratios(const oftawq_bench_result *results, size_t n);

/* The commands: argv[0] is the command name. */
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_train(int argc, char **argv);

#endif /* OFTAWQ_CLI_H */
