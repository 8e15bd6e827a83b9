/* cmd_forward.c: oftawq forward - modules of an AWQ model folder with OFT adapters, on a tensor file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model_args.h"

static const char usage_forward[] =
  "usage: oftawq forward --model DIR --module NAME[,NAME...]|all --input X.safetensors --output Y.safetensors\n"
  "                      [--adapter DIR[:NAME]]... [--active NAME[,NAME...]] [--disable-adapters]\n"
  "                      [--producer NAME:VERSION] [--device SPEC] [--cache-dir DIR]\n"
  "\n"
  "Computes PEFT's AwqOFTLinear for AWQ modules of the model folder DIR, with the OFT\n"
  "adapters applied as PEFT applies them (each module carries the adapters whose\n"
  "target_modules select it; an active adapter a module does not carry is skipped there).\n"
  "One module reads tensor 'x' (or '<module>.x') of the input file (F32, F16 or BF16,\n"
  "shape [..., K]) and writes 'y' (or '<module>.y'; same dtype, [..., N]); several modules,\n"
  "or 'all' the AWQ modules of the model, read '<module>.x' and write '<module>.y' each.\n"
  "The output appears only when everything succeeded.\n"
  "\n"
  "  --module LIST         module names, comma-separated, or all\n"
  "  --input, --output     safetensors files\n"
  MODEL_ARGS_HELP
  "exit status: 0 success, 1 error, 2 usage error\n";

/* One module's input tensor (`x` or `<module>.x`) and its output. */
typedef struct job {
  char *module;
  char *in_name, *out_name;
  oftawq_tensor x;
  void *y;
  size_t y_bytes;
  int N;
} job;

static oftawq_dtype dtype_of(oftawq_tensor_dtype t)
{
  return t == OFTAWQ_T_F16 ? OFTAWQ_F16 : t == OFTAWQ_T_BF16 ? OFTAWQ_BF16 : OFTAWQ_F32;
}

static size_t element_bytes(oftawq_tensor_dtype t) { return t == OFTAWQ_T_F32 ? 4 : 2; }

static char *joined(const char *a, const char *b)
{
  char *s = malloc(strlen(a) + strlen(b) + 1);
  if (s) sprintf(s, "%s%s", a, b);
  return s;
}

/* The modules to run: the comma list, or every AWQ module for "all". */
static int list_modules(const char *arg, oftawq_model *model, job **jobs, size_t *n)
{
  size_t cap = 0, i;
  char *copy = NULL, *tok, *save = NULL;
  *jobs = NULL;
  *n = 0;
  if (!strcmp(arg, "all")) {
    for (i = 0; i < oftawq_model_module_count(model); i++) {
      oftawq_model_module m;
      oftawq_model_module_init(&m);
      oftawq_model_module_get(model, i, &m);
      if (m.kind == OFTAWQ_TARGET_AWQ_GEMM) cap++;
    }
  } else {
    for (cap = 1, i = 0; arg[i]; i++) cap += arg[i] == ',';
  }
  if (!(*jobs = calloc(cap + 1, sizeof **jobs))) return 0;
  if (!strcmp(arg, "all")) {
    for (i = 0; i < oftawq_model_module_count(model); i++) {
      oftawq_model_module m;
      oftawq_model_module_init(&m);
      oftawq_model_module_get(model, i, &m);
      if (m.kind == OFTAWQ_TARGET_AWQ_GEMM && !((*jobs)[(*n)++].module = joined(m.name, ""))) return 0;
    }
    return 1;
  }
  if (!(copy = joined(arg, ""))) return 0;
  for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    if (!((*jobs)[(*n)++].module = joined(tok, ""))) break;
  free(copy);
  return 1;
}

/* Finds the input of each job; for a single module `x` comes first (the one-layer form). */
static int find_inputs(oftawq_safetensors *in, const char *input, job *jobs, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) {
    job *j = &jobs[i];
    if (!(j->in_name = joined(j->module, ".x")) || !(j->out_name = joined(j->module, ".y"))) return cli_fail("out of memory"), 0;
    oftawq_tensor_init(&j->x);
    if (n == 1 && oftawq_safetensors_find(in, "x", &j->x) == OFTAWQ_OK) {
      strcpy(j->in_name, "x");
      strcpy(j->out_name, "y");
    } else if (oftawq_safetensors_find(in, j->in_name, &j->x) < 0) {
      if (n == 1) cli_fail("%s has no tensor 'x' (nor '%s')", cli_esc(input), cli_esc(j->in_name));
      else cli_fail("%s has no tensor '%s'", cli_esc(input), cli_esc(j->in_name));
      return 0;
    }
    if (j->x.dtype != OFTAWQ_T_F32 && j->x.dtype != OFTAWQ_T_F16 && j->x.dtype != OFTAWQ_T_BF16) {
      cli_fail("tensor '%s' of %s is %s; forward takes F32, F16 or BF16", cli_esc(j->in_name), cli_esc(input),
               oftawq_tensor_dtype_name(j->x.dtype));
      return 0;
    }
    if (j->x.ndim < 1) {
      cli_fail("tensor '%s' of %s is a scalar; it needs a last dimension K", cli_esc(j->in_name), cli_esc(input));
      return 0;
    }
  }
  return 1;
}

/* Runs one job through its module's layer. */
static int run(oftawq_context *ctx, oftawq_model *model, const char *input, job *j)
{
  oftawq_layer *layer;
  size_t rows = 1, k;
  int K, N;
  if (oftawq_model_layer(model, j->module, &layer) < 0) return cli_fail("%s", oftawq_context_last_error(ctx)), 0;
  oftawq_awq_get_shape(oftawq_layer_base(layer), &K, &N, NULL, NULL);
  if (j->x.shape[j->x.ndim - 1] != K) {
    cli_fail("tensor '%s' of %s has last dimension %lld; module %s has in_features %d", cli_esc(j->in_name),
             cli_esc(input), (long long)j->x.shape[j->x.ndim - 1], cli_esc(j->module), K);
    return 0;
  }
  for (k = 0; k + 1 < (size_t)j->x.ndim; k++) rows *= (size_t)j->x.shape[k];
  if (rows * (size_t)K * element_bytes(j->x.dtype) != j->x.nbytes)
    return cli_fail("tensor '%s' holds fewer bytes than its shape", cli_esc(j->in_name)), 0;
  j->N = N;
  j->y_bytes = rows * (size_t)N * element_bytes(j->x.dtype);
  if (!(j->y = malloc(j->y_bytes + 1))) return cli_fail("out of memory"), 0;
  if (oftawq_layer_forward(layer, dtype_of(j->x.dtype), j->x.data, j->y, rows) < 0)
    return cli_fail("%s", oftawq_context_last_error(ctx)), 0;
  return 1;
}

int cmd_forward(int argc, char **argv)
{
  const char *module = NULL, *input = NULL, *output = NULL;
  char why[1024];
  model_args args;
  int i, rc = EXIT_FAILURE, step;
  size_t n_jobs = 0, k;
  job *jobs = NULL;
  oftawq_tensor *outs = NULL;
  oftawq_context *ctx = NULL;
  oftawq_model *model = NULL;
  oftawq_safetensors *in = NULL;

  memset(&args, 0, sizeof args);
  for (i = 1; i < argc; i += step) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_forward, stdout);
      rc = EXIT_SUCCESS;
      goto done;
    }
    if ((step = model_args_option(&args, argc, argv, i, usage_forward, "forward")) < 0) {
      rc = EXIT_USAGE;
      goto done;
    }
    if (step) continue;
    if (!v) {
      rc = cli_usage_error(usage_forward, "forward: '%s' needs a value (or is unknown)", a);
      goto done;
    }
    step = 2; /* an option and its value */
    if (!strcmp(a, "--module")) module = v;
    else if (!strcmp(a, "--input")) input = v;
    else if (!strcmp(a, "--output")) output = v;
    else {
      rc = cli_usage_error(usage_forward, "forward: unknown option '%s'", a);
      goto done;
    }
  }
  if (!args.model || !module || !input || !output || !*module) {
    rc = cli_usage_error(usage_forward, "forward: --model, --module, --input and --output are required");
    goto done;
  }

  /* the input first: a bad file should not cost a device start */
  if (oftawq_safetensors_open(input, &in, why, sizeof why) < 0) {
    cli_fail("%s", why);
    goto done;
  }
  if (!cli_output_writable(output, 0)) goto done;
  if (model_args_open(&args, 0, &ctx, &model) != OFTAWQ_OK) goto done;
  if (!list_modules(module, model, &jobs, &n_jobs)) {
    cli_fail("out of memory");
    goto done;
  }
  if (!find_inputs(in, input, jobs, n_jobs)) goto done;
  for (k = 0; k < n_jobs; k++)
    if (!run(ctx, model, input, &jobs[k])) goto done;
  if (!(outs = calloc(n_jobs + 1, sizeof *outs))) {
    cli_fail("out of memory");
    goto done;
  }
  for (k = 0; k < n_jobs; k++) {
    oftawq_tensor *y = &outs[k];
    oftawq_tensor_init(y);
    y->name = jobs[k].out_name;
    y->dtype = jobs[k].x.dtype;
    y->ndim = jobs[k].x.ndim;
    memcpy(y->shape, jobs[k].x.shape, sizeof y->shape);
    y->shape[y->ndim - 1] = jobs[k].N;
    y->data = jobs[k].y;
    y->nbytes = jobs[k].y_bytes;
  }
  if (oftawq_safetensors_write(output, outs, n_jobs, why, sizeof why) < 0) {
    cli_fail("%s", why);
    goto done;
  }
  rc = EXIT_SUCCESS;
done:
  for (k = 0; k < n_jobs; k++) {
    free(jobs[k].module);
    free(jobs[k].in_name);
    free(jobs[k].out_name);
    free(jobs[k].y);
  }
  free(jobs);
  free(outs);
  model_args_free(&args);
  oftawq_model_destroy(model);
  oftawq_safetensors_close(in);
  oftawq_context_destroy(ctx);
  return rc;
}
