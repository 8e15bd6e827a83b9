/* cmd_tune.c: oftawq tune - the time-boxed search of kernel parameters and paths for this device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage_tune[] =
  "usage: oftawq tune [--shapes KxN[,KxN...]] [--group G] [--block B] [--budget SECONDS]\n"
  "                   [--device SPEC] [--cache-dir DIR]\n"
  "\n"
  "Searches, for each shape: the device layout of the weights (AutoAWQ's, or the\n"
  "K4 or KC repack), then for each rows bucket (1, 2, 3-4, 5-8, 9-64, 65-256, >256)\n"
  "the fastest correct AWQ path and launch (split-K, work-group width, rows and\n"
  "packed words per work-item, vector lanes over words or over the words' columns,\n"
  "how many k rows ahead a work-item prefetches its weight), whether the OFT\n"
  "rotation is fused into it, the rotation's work-group size and the R build's\n"
  "parameters, on synthetic layers. Each candidate is handed to the engine as an\n"
  "explicit plan; one whose output differs from the reference is rejected. The\n"
  "fastest three are timed again in alternated rounds and chosen by their median.\n"
  "The winners go to the cache folder's tuning database, which every later run on\n"
  "this device uses; `oftawq info` lists them with the measurements behind the\n"
  "layout, plan and fusion choices.\n"
  "\n"
  "  --shapes LIST     K x N pairs (default 2048x2048)\n"
  "  --group G         AWQ group size (default 128)\n"
  "  --block B         OFT block size (default 32)\n"
  "  --budget SECONDS  total time (default 60), shared by the shapes\n"
  "  --device SPEC     cpu, gpu, P:D or a device-name substring (default: $OFTAWQ_DEVICE)\n"
  "  --cache-dir DIR   where the database lives (default: $OFTAWQ_CACHE_DIR, $XDG_CACHE_HOME/oftawq\n"
  "                    or ~/.cache/oftawq)\n";

static void tune_progress(void *user, double fraction, const char *what)
{
  int width = 30, done = (int)(fraction * width + 0.5), i;
  if (!*(int *)user) return;
  if (done > width) done = width;
  fputs("\r\033[K  [", stderr);
  for (i = 0; i < width; i++) fputc(i < done ? '#' : '.', stderr);
  fprintf(stderr, "] %3.0f%% %s", fraction > 1 ? 100.0 : 100.0 * fraction, what);
  if (fraction >= 1) fputs("\r\033[K", stderr);
}

int cmd_tune(int argc, char **argv)
{
  int K[CLI_MAX_POINTS], N[CLI_MAX_POINTS], nshapes = 1, group = 128, block = 32, i, step, s, tty = isatty(fileno(stderr));
  double budget = 60;
  const char *device = NULL, *cache_dir = NULL;
  char default_cache[4096];
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  int rc = EXIT_SUCCESS;
  size_t k;

  K[0] = N[0] = 2048;
  for (i = 1; i < argc; i += step) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end;
    step = 2; /* an option and its value */
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_tune, stdout);
      return EXIT_SUCCESS;
    }
    if (!v) return cli_usage_error(usage_tune, "tune: '%s' needs a value (or is unknown)", a);
    if (!strcmp(a, "--shapes")) {
      if ((nshapes = cli_parse_list(v, K, N, CLI_MAX_POINTS, 1)) < 1)
        return cli_usage_error(usage_tune, "tune: --shapes wants KxN[,KxN...], got '%s'", v);
    } else if (!strcmp(a, "--group")) {
      if (!cli_parse_int(v, &group)) return cli_usage_error(usage_tune, "tune: --group wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--block")) {
      if (!cli_parse_int(v, &block)) return cli_usage_error(usage_tune, "tune: --block wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--budget")) {
      budget = strtod(v, &end);
      if (end == v || *end || !(budget > 0) || budget > 1e6)
        return cli_usage_error(usage_tune, "tune: --budget wants seconds > 0, got '%s'", v);
    } else if (!strcmp(a, "--device")) {
      device = v;
    } else if (!strcmp(a, "--cache-dir")) {
      cache_dir = v;
    } else {
      return cli_usage_error(usage_tune, "tune: unknown option '%s'", a);
    }
  }
  for (s = 0; s < nshapes; s++)
    if (N[s] % 8 || K[s] % group)
      return cli_usage_error(usage_tune, "tune: each K must be a multiple of --group and each N of 8%s", "");
  if (!cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK) cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = device;
  opt.cache_dir = cache_dir;
  if (cli_context_create(&opt, &ctx) != OFTAWQ_OK) return EXIT_FAILURE;
  for (s = 0; s < nshapes && rc == EXIT_SUCCESS; s++) {
    oftawq_tune_options to;
    oftawq_tune_report r;
    oftawq_tune_options_init(&to);
    to.budget_s = budget / nshapes;
    to.progress = tune_progress;
    to.user = &tty;
    oftawq_tune_report_init(&r);
    if (oftawq_tune_shape(ctx, K[s], N[s], group, block, &to, &r) != OFTAWQ_OK) {
      cli_fail("tune: %s", oftawq_context_last_error(ctx));
      rc = EXIT_FAILURE;
      break;
    }
    printf("%dx%d: %u candidates timed, %u rejected, %u classes tuned in %.1f s (longest step %.1f s)\n", K[s], N[s],
           r.candidates_timed, r.candidates_rejected, r.classes_tuned, r.elapsed_s, r.longest_step_s);
  }
  if (rc == EXIT_SUCCESS) {
    const char *dir = oftawq_context_cache_dir(ctx);
    printf("tuning database (%s):\n", dir ? cli_esc(dir) : "memory only");
    for (k = 0; k < oftawq_tune_count(ctx); k++) {
      char line[512];
      oftawq_tune_entry(ctx, k, line, sizeof line);
      printf("  %s\n", line);
    }
  }
  oftawq_context_destroy(ctx);
  return rc;
}
