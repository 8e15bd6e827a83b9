/* cmd_inspect.c: oftawq inspect - which modules each adapter wraps, with what, and the device memory it takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model_args.h"

static const char usage_inspect[] =
  "usage: oftawq inspect --model DIR [--adapter DIR[:NAME]]... [--active NAME[,NAME...]] [--disable-adapters]\n"
  "                      [--json] [--producer NAME:VERSION] [--device SPEC] [--cache-dir DIR]\n"
  "\n"
  "Loads the adapters onto the model as PEFT does, without running anything, and prints\n"
  "per module: its shape (in x out features), group size, bias, the device memory its\n"
  "layer takes (4-bit weights, zeros, scales, bias and one rotation per adapter), what\n"
  "each adapter does there (rN bB: wrapped with N blocks of size B, then the Cayley\n"
  "formula - nT: Neumann with T terms (* the pre-0.18 formula), exact - and coft; I: the\n"
  "file has no weights there, so R = I; -: not targeted; excl: excluded; n/a: not an AWQ\n"
  "GEMM layer; REFUSED: see the notes below the table), and which active adapters apply,\n"
  "in order; then the totals (like PEFT's print_trainable_parameters: the adapter\n"
  "parameters each adapter holds on this model, and the device memory). Refusals are\n"
  "listed instead of failing the command.\n"
  "\n"
  "  --json                the same as a JSON document on stdout\n"
  MODEL_ARGS_HELP
  "exit status: 0 success, 1 error, 2 usage error\n";

static const char *const outcome_names[] = {"not_targeted", "excluded", "wrapped", "not_applicable", "refused"};

static const char *kind_name(oftawq_target_kind k)
{
  switch (k) {
  case OFTAWQ_TARGET_AWQ_GEMM: return "awq_gemm";
  case OFTAWQ_TARGET_LINEAR_F16: return "linear_f16";
  case OFTAWQ_TARGET_LINEAR_F32: return "linear_f32";
  case OFTAWQ_TARGET_LINEAR_BF16: return "linear_bf16";
  default: return "other";
  }
}

/* "12.5 KiB" */
static const char *human_bytes(unsigned long long b, char *buf, size_t cap)
{
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

/* What one adapter does to one module, in a few characters. */
static const char *cell(const oftawq_model_outcome *o, const oftawq_oft_config *c, char *buf, size_t cap)
{
  switch (o->outcome) {
  case OFTAWQ_OUTCOME_WRAPPED:
    if (c->use_cayley_neumann)
      snprintf(buf, cap, "r%d b%d n%d%s%s%s", o->shape.r, o->shape.block_size, c->num_cayley_neumann_terms,
               o->shape.legacy_neumann ? "*" : "", c->coft ? " coft" : "", o->has_weights ? "" : " I");
    else
      snprintf(buf, cap, "r%d b%d exact%s%s", o->shape.r, o->shape.block_size, c->coft ? " coft" : "",
               o->has_weights ? "" : " I");
    return buf;
  case OFTAWQ_OUTCOME_EXCLUDED: return "excl";
  case OFTAWQ_OUTCOME_NOT_APPLICABLE: return "n/a";
  case OFTAWQ_OUTCOME_REFUSED: return "REFUSED";
  default: return "-";
  }
}

typedef struct view {
  oftawq_model *model;
  char *const *dirs;          /* the adapter folders, in load order */
  size_t n_adapters;
  oftawq_oft_config configs[MODEL_ARGS_MAX_ADAPTERS];
  const char *active[MODEL_ARGS_MAX_ADAPTERS];
  size_t n_active;
} view;

static oftawq_model_outcome outcome(const view *v, size_t module, size_t adapter)
{
  oftawq_model_outcome o;
  oftawq_model_outcome_init(&o);
  oftawq_model_outcome_get(v->model, module, adapter, &o);
  return o;
}

static size_t adapter_index(const view *v, const char *name)
{
  size_t a;
  for (a = 0; a < v->n_adapters && strcmp(oftawq_model_adapter_name(v->model, a), name); a++) continue;
  return a;
}

/* Shown: every AWQ module, and the others some adapter targets. */
static int shown(const view *v, size_t i, const oftawq_model_module *m)
{
  size_t a;
  if (m->kind == OFTAWQ_TARGET_AWQ_GEMM) return 1;
  for (a = 0; a < v->n_adapters; a++)
    if (outcome(v, i, a).outcome != OFTAWQ_OUTCOME_NOT_TARGETED) return 1;
  return 0;
}

/* 1 if the k-th active adapter applies to module i (wraps it). */
static int active_applies(const view *v, size_t i, size_t k)
{
  return outcome(v, i, adapter_index(v, v->active[k])).outcome == OFTAWQ_OUTCOME_WRAPPED;
}

/* The active adapters that apply to module i, in order, escaped ("base" when none does). */
static void applies(const view *v, size_t i, char *buf, size_t cap)
{
  size_t k, len = 0;
  buf[0] = '\0';
  for (k = 0; k < v->n_active && len < cap; k++)
    if (active_applies(v, i, k))
      len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "," : "", cli_esc(v->active[k]));
  if (!len) snprintf(buf, cap, "base");
}

static void print_text(const view *v, const char *dir)
{
  size_t i, a, width = 6, awq = 0, other = 0, wrapped[MODEL_ARGS_MAX_ADAPTERS] = {0}, notes = 0;
  unsigned long long params[MODEL_ARGS_MAX_ADAPTERS] = {0};
  unsigned long long total = 0, base = 0;
  char buf[128], sizes[32], ap[256];
  for (i = 0; i < oftawq_model_module_count(v->model); i++) {
    oftawq_model_module m;
    oftawq_model_module_init(&m);
    oftawq_model_module_get(v->model, i, &m);
    if (m.kind == OFTAWQ_TARGET_AWQ_GEMM) awq++;
    else other++;
    if (shown(v, i, &m) && strlen(cli_esc(m.name)) > width) width = strlen(cli_esc(m.name));
  }
  printf("model %s: %zu AWQ modules, %zu other modules with weights\n", cli_esc(dir), awq, other);
  for (a = 0; a < v->n_adapters; a++) {
    const oftawq_oft_config *c = &v->configs[a];
    printf("adapter %s (%s): %s %d, ", cli_esc(oftawq_model_adapter_name(v->model, a)), cli_esc(v->dirs[a]),
           c->r ? "r" : "oft_block_size", c->r ? c->r : c->oft_block_size);
    if (c->use_cayley_neumann) printf("Cayley-Neumann (%d terms)", c->num_cayley_neumann_terms);
    else printf("exact Cayley");
    printf("%s%s, peft %s\n", c->coft ? ", COFT" : "", c->block_share ? ", block_share" : "",
           c->peft_version ? cli_esc(c->peft_version) : "?");
  }
  printf("\n%-*s %9s %5s %4s %10s", (int)width, "module", "KxN", "G", "bias", "device");
  for (a = 0; a < v->n_adapters; a++) printf("  %-16s", cli_esc(oftawq_model_adapter_name(v->model, a)));
  printf("  applies\n");
  for (i = 0; i < oftawq_model_module_count(v->model); i++) {
    oftawq_model_module m;
    oftawq_model_module_init(&m);
    oftawq_model_module_get(v->model, i, &m);
    if (!shown(v, i, &m)) continue;
    snprintf(sizes, sizeof sizes, "%dx%d", m.K, m.N);
    if (m.kind == OFTAWQ_TARGET_AWQ_GEMM) {
      printf("%-*s %9s %5d %4s %10s", (int)width, cli_esc(m.name), sizes, m.G, m.has_bias ? "yes" : "no",
             human_bytes(m.device_bytes, buf, sizeof buf));
      total += m.device_bytes;
    } else {
      printf("%-*s %9s %5s %4s %10s", (int)width, cli_esc(m.name), sizes, "-", "-", kind_name(m.kind));
    }
    for (a = 0; a < v->n_adapters; a++) {
      oftawq_model_outcome o = outcome(v, i, a);
      if (o.outcome == OFTAWQ_OUTCOME_WRAPPED) {
        wrapped[a]++;
        params[a] += (unsigned long long)o.shape.weight_rows * (unsigned long long)o.shape.n_elements;
      }
      if (o.outcome == OFTAWQ_OUTCOME_REFUSED || o.outcome == OFTAWQ_OUTCOME_NOT_APPLICABLE) notes++;
      printf("  %-16s", cell(&o, &v->configs[a], buf, sizeof buf));
    }
    applies(v, i, ap, sizeof ap);
    printf("  %s\n", m.kind == OFTAWQ_TARGET_AWQ_GEMM ? ap : "-");
  }
  for (i = 0; i < oftawq_model_module_count(v->model); i++) {
    oftawq_model_module m;
    oftawq_model_module_init(&m);
    oftawq_model_module_get(v->model, i, &m);
    if (m.kind != OFTAWQ_TARGET_AWQ_GEMM) continue;
    base += m.device_bytes;
    for (a = 0; a < v->n_adapters; a++) {
      oftawq_model_outcome o = outcome(v, i, a);
      if (o.outcome == OFTAWQ_OUTCOME_WRAPPED)
        base -= (unsigned long long)o.shape.weight_rows * (unsigned long long)o.shape.block_size *
                (unsigned long long)o.shape.block_size * 4;
    }
  }
  printf("\ntotal: %zu AWQ modules,", awq);
  for (a = 0; a < v->n_adapters; a++)
    printf(" %s wraps %zu (%llu parameters)%s", cli_esc(oftawq_model_adapter_name(v->model, a)), wrapped[a], params[a],
           a + 1 < v->n_adapters ? "," : "");
  printf("%s device %s", v->n_adapters ? ";" : "", human_bytes(total, buf, sizeof buf));
  printf(" (base layers %s, ", human_bytes(base, buf, sizeof buf));
  printf("rotations %s)\n", human_bytes(total - base, buf, sizeof buf));
  if (!notes) return;
  printf("\nnotes:\n");
  for (i = 0; i < oftawq_model_module_count(v->model); i++) {
    oftawq_model_module m;
    oftawq_model_module_init(&m);
    oftawq_model_module_get(v->model, i, &m);
    for (a = 0; a < v->n_adapters; a++) {
      oftawq_model_outcome o = outcome(v, i, a);
      if (o.outcome != OFTAWQ_OUTCOME_REFUSED && o.outcome != OFTAWQ_OUTCOME_NOT_APPLICABLE) continue;
      printf("  %s / %s: %s: ", cli_esc(m.name), cli_esc(oftawq_model_adapter_name(v->model, a)),
             o.outcome == OFTAWQ_OUTCOME_REFUSED ? "refused" : "not applicable");
      printf("%s\n", cli_esc(o.reason));
    }
  }
}

static void print_json(const view *v, const char *dir)
{
  size_t i, a, k;
  unsigned long long total = 0, rotations = 0;
  size_t awq = 0, wrapped[MODEL_ARGS_MAX_ADAPTERS] = {0};
  unsigned long long params[MODEL_ARGS_MAX_ADAPTERS] = {0};
  printf("{\"model\": ");
  cli_json_string(stdout, dir);
  printf(", \"adapters\": [");
  for (a = 0; a < v->n_adapters; a++) {
    const oftawq_oft_config *c = &v->configs[a];
    int active = 0;
    for (k = 0; k < v->n_active; k++) active |= !strcmp(v->active[k], oftawq_model_adapter_name(v->model, a));
    printf("%s{\"name\": ", a ? ", " : "");
    cli_json_string(stdout, oftawq_model_adapter_name(v->model, a));
    printf(", \"active\": %s, \"r\": %d, \"oft_block_size\": %d, \"use_cayley_neumann\": %s, "
           "\"num_cayley_neumann_terms\": %d, \"coft\": %s, \"eps\": %.17g, \"block_share\": %s, "
           "\"module_dropout\": %.17g, \"peft_version\": ",
           active ? "true" : "false", c->r, c->oft_block_size, c->use_cayley_neumann ? "true" : "false",
           c->num_cayley_neumann_terms, c->coft ? "true" : "false", c->eps, c->block_share ? "true" : "false",
           c->module_dropout);
    cli_json_string(stdout, c->peft_version ? c->peft_version : "");
    printf("}");
  }
  printf("], \"modules\": [");
  for (i = 0, k = 0; i < oftawq_model_module_count(v->model); i++) {
    oftawq_model_module m;
    size_t j;
    int first = 1;
    oftawq_model_module_init(&m);
    oftawq_model_module_get(v->model, i, &m);
    if (!shown(v, i, &m)) continue;
    printf("%s{\"name\": ", k++ ? ", " : "");
    cli_json_string(stdout, m.name);
    printf(", \"kind\": \"%s\", \"in_features\": %d, \"out_features\": %d", kind_name(m.kind), m.K, m.N);
    if (m.kind == OFTAWQ_TARGET_AWQ_GEMM) {
      awq++;
      total += m.device_bytes;
      printf(", \"group_size\": %d, \"bias\": %s, \"device_bytes\": %llu, \"applies\": [", m.G,
             m.has_bias ? "true" : "false", (unsigned long long)m.device_bytes);
      for (j = 0; j < v->n_active; j++)
        if (active_applies(v, i, j)) {
          printf("%s", first ? "" : ", ");
          cli_json_string(stdout, v->active[j]);
          first = 0;
        }
      printf("]");
    }
    printf(", \"adapters\": {");
    for (a = 0; a < v->n_adapters; a++) {
      oftawq_model_outcome o = outcome(v, i, a);
      printf("%s", a ? ", " : "");
      cli_json_string(stdout, oftawq_model_adapter_name(v->model, a));
      printf(": {\"outcome\": \"%s\"", outcome_names[o.outcome]);
      if (o.outcome == OFTAWQ_OUTCOME_WRAPPED) {
        const oftawq_oft_config *c = &v->configs[a];
        wrapped[a]++;
        params[a] += (unsigned long long)o.shape.weight_rows * (unsigned long long)o.shape.n_elements;
        rotations += (unsigned long long)o.shape.weight_rows * (unsigned long long)o.shape.block_size *
                     (unsigned long long)o.shape.block_size * 4;
        printf(", \"r\": %d, \"block_size\": %d, \"formula\": \"%s\", \"terms\": %d, \"legacy_formula\": %s, "
               "\"coft\": %s, \"block_share\": %s, \"has_weights\": %s",
               o.shape.r, o.shape.block_size, c->use_cayley_neumann ? "neumann" : "exact",
               c->use_cayley_neumann ? c->num_cayley_neumann_terms : 0, o.shape.legacy_neumann ? "true" : "false",
               c->coft ? "true" : "false", c->block_share ? "true" : "false", o.has_weights ? "true" : "false");
      }
      if (o.reason[0]) {
        printf(", \"reason\": ");
        cli_json_string(stdout, o.reason);
      }
      printf("}");
    }
    printf("}}");
  }
  printf("], \"totals\": {\"awq_modules\": %zu, \"device_bytes\": %llu, \"rotation_bytes\": %llu, \"wrapped\": {", awq,
         total, rotations);
  for (a = 0; a < v->n_adapters; a++) {
    printf("%s", a ? ", " : "");
    cli_json_string(stdout, oftawq_model_adapter_name(v->model, a));
    printf(": %zu", wrapped[a]);
  }
  printf("}, \"parameters\": {");
  for (a = 0; a < v->n_adapters; a++) {
    printf("%s", a ? ", " : "");
    cli_json_string(stdout, oftawq_model_adapter_name(v->model, a));
    printf(": %llu", params[a]);
  }
  printf("}}}\n");
}

int cmd_inspect(int argc, char **argv)
{
  model_args args;
  int i, rc = EXIT_FAILURE, json = 0, step;
  oftawq_context *ctx = NULL;
  view v;
  char *active = NULL, *tok, *save = NULL;
  memset(&args, 0, sizeof args);
  memset(&v, 0, sizeof v);
  for (i = 1; i < argc; i += step) {
    step = 1;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage_inspect, stdout);
      rc = EXIT_SUCCESS;
      goto done;
    }
    if (!strcmp(argv[i], "--json")) {
      json = 1;
      continue;
    }
    if ((step = model_args_option(&args, argc, argv, i, usage_inspect, "inspect")) < 0) {
      rc = EXIT_USAGE;
      goto done;
    }
    if (!step) {
      rc = cli_usage_error(usage_inspect, "inspect: unknown option '%s'", argv[i]);
      goto done;
    }
  }
  if (!args.model) {
    rc = cli_usage_error(usage_inspect, "inspect: --model is required");
    goto done;
  }
  if (model_args_open(&args, 1, &ctx, &v.model) != OFTAWQ_OK) goto done;
  v.n_adapters = oftawq_model_adapter_count(v.model);
  v.dirs = args.dirs;
  for (i = 0; (size_t)i < v.n_adapters; i++) {
    oftawq_oft_config_init(&v.configs[i]);
    oftawq_model_adapter_config(v.model, (size_t)i, &v.configs[i]);
  }
  /* the active list as model_args_open set it: --active, else the first adapter; none when disabled */
  if (!args.disable && args.active && (active = malloc(strlen(args.active) + 1))) {
    strcpy(active, args.active);
    for (tok = strtok_r(active, ",", &save); tok && v.n_active < MODEL_ARGS_MAX_ADAPTERS; tok = strtok_r(NULL, ",", &save))
      v.active[v.n_active++] = tok;
  } else if (!args.disable && v.n_adapters) {
    v.active[v.n_active++] = oftawq_model_adapter_name(v.model, 0);
  }
  if (json) print_json(&v, args.model);
  else print_text(&v, args.model);
  rc = fflush(stdout) == 0 ? EXIT_SUCCESS : cli_fail("cannot write the report");
done:
  free(active);
  model_args_free(&args);
  oftawq_model_destroy(v.model);
  oftawq_context_destroy(ctx);
  return rc;
}
