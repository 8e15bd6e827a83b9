/* model_args.c: the model options forward and inspect share - parsing them, and the model they open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "model_args.h"

/* Splits "DIR:NAME" (NAME without '/') into its parts; dir is a copy the caller frees, *name NULL without NAME. */
static char *split_adapter(const char *arg, const char **name)
{
  char *dir = malloc(strlen(arg) + 1), *colon;
  if (!dir) return NULL;
  strcpy(dir, arg);
  colon = strrchr(dir, ':');
  *name = NULL;
  if (colon && colon[1] && !strchr(colon + 1, '/')) {
    *colon = '\0';
    *name = colon + 1;
  }
  return dir;
}

int model_args_option(model_args *a, int argc, char **argv, int i, const char *usage, const char *command)
{
  const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
  static const char *const valued[] = {"--model", "--adapter", "--active", "--producer", "--device", "--cache-dir"};
  size_t k;
  if (!strcmp(opt, "--disable-adapters")) {
    a->disable = 1;
    return 1;
  }
  for (k = 0; k < sizeof valued / sizeof valued[0] && strcmp(opt, valued[k]); k++) continue;
  if (k == sizeof valued / sizeof valued[0]) return 0;
  if (!v) {
    cli_usage_error(usage, "%s: '%s' needs a value", command, opt);
    return -1;
  }
  if (!strcmp(opt, "--model")) a->model = v;
  else if (!strcmp(opt, "--active")) a->active = v;
  else if (!strcmp(opt, "--producer")) a->producer = v;
  else if (!strcmp(opt, "--device")) a->device = v;
  else if (!strcmp(opt, "--cache-dir")) a->cache_dir = v;
  else {
    if (a->n_adapters == MODEL_ARGS_MAX_ADAPTERS) {
      cli_usage_error(usage, "%s: at most %d adapters", command, MODEL_ARGS_MAX_ADAPTERS);
      return -1;
    }
    if (!(a->dirs[a->n_adapters] = split_adapter(v, &a->names[a->n_adapters]))) {
      cli_fail("out of memory");
      return -1;
    }
    a->n_adapters++;
  }
  return 2;
}

void model_args_free(model_args *a)
{
  int i;
  for (i = 0; i < a->n_adapters; i++) free(a->dirs[i]);
  a->n_adapters = 0;
}

/* --producer NAME:VERSION into the options. */
static int parse_producer(const char *text, oftawq_model_options *o)
{
  const char *colon = strchr(text, ':');
  if (!colon || !colon[1]) return 0;
  if (!strncasecmp(text, "autoawq:", 8)) o->producer = OFTAWQ_PRODUCER_AUTOAWQ;
  else if (!strncasecmp(text, "gptqmodel:", 10)) o->producer = OFTAWQ_PRODUCER_GPTQMODEL;
  else return 0;
  o->producer_version = colon + 1;
  return 1;
}

oftawq_status model_args_open(const model_args *a, int record_refusals, oftawq_context **ctx, oftawq_model **model)
{
  oftawq_context_options opt;
  oftawq_model_options mopt;
  char default_cache[4096];
  const char *cache_dir = a->cache_dir, *list[MODEL_ARGS_MAX_ADAPTERS];
  char *active = NULL, *tok, *save = NULL;
  size_t n_active = 0;
  int i, tty = isatty(fileno(stderr));
  oftawq_status st;
  *ctx = NULL;
  *model = NULL;
  oftawq_model_options_init(&mopt);
  mopt.record_refusals = record_refusals;
  if (a->producer && !parse_producer(a->producer, &mopt)) {
    cli_fail("--producer '%s' is not autoawq:VERSION or gptqmodel:VERSION", cli_esc(a->producer));
    return OFTAWQ_E_INVALID_ARGUMENT;
  }
  if (!cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK) cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = a->device;
  opt.cache_dir = cache_dir;
  if ((st = cli_context_create(&opt, ctx)) != OFTAWQ_OK) return st;
  if (tty) fprintf(stderr, "oftawq: loading %s ...", cli_esc(a->model));
  st = oftawq_model_open(*ctx, a->model, &mopt, model);
  for (i = 0; i < a->n_adapters && st >= 0; i++) st = oftawq_model_load_adapter(*model, a->dirs[i], a->names[i]);
  if (tty) fprintf(stderr, "\r\033[K");
  if (st < 0) {
    cli_fail("%s", oftawq_context_last_error(*ctx));
    return st;
  }
  if (a->active) {
    if (!(active = malloc(strlen(a->active) + 1))) {
      cli_fail("out of memory");
      return OFTAWQ_E_OUT_OF_MEMORY;
    }
    strcpy(active, a->active);
    for (tok = strtok_r(active, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      size_t k;
      for (k = 0; k < oftawq_model_adapter_count(*model) && strcmp(tok, oftawq_model_adapter_name(*model, k)); k++)
        continue;
      if (k == oftawq_model_adapter_count(*model) || n_active == MODEL_ARGS_MAX_ADAPTERS) {
        if (n_active == MODEL_ARGS_MAX_ADAPTERS) cli_fail("--active lists too many names");
        else cli_fail("--active names '%s', which is not one of the --adapter names", cli_esc(tok));
        free(active);
        return OFTAWQ_E_INVALID_ARGUMENT;
      }
      list[n_active++] = tok;
    }
    st = oftawq_model_set_active(*model, list, n_active);
    free(active);
  }
  if (st >= 0 && a->disable) st = oftawq_model_enable_adapters(*model, 0);
  if (st < 0) cli_fail("%s", oftawq_context_last_error(*ctx));
  return st < 0 ? st : OFTAWQ_OK;
}
