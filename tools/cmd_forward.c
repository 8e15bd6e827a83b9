/* cmd_forward.c: oftawq forward - a module of an AWQ model folder with OFT adapters, on a tensor file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage_forward[] =
  "usage: oftawq forward --model DIR --module NAME --input X.safetensors --output Y.safetensors\n"
  "                      [--adapter DIR[:NAME]]... [--active NAME[,NAME...]] [--disable-adapters]\n"
  "                      [--device SPEC] [--cache-dir DIR]\n"
  "\n"
  "Computes PEFT's AwqOFTLinear: tensor 'x' (F32 or F16, shape [..., K]) of the input\n"
  "file through the OFT adapters and the AWQ module NAME of the model folder DIR\n"
  "(config.json + *.safetensors) into tensor 'y' (same dtype, [..., N]) of the output\n"
  "file. The output appears only when everything succeeded.\n"
  "\n"
  "  --adapter DIR[:NAME]  a PEFT OFT adapter folder; the first is named 'default'\n"
  "                        unless NAME is given, the others take their folder's name\n"
  "  --active LIST         the adapters to apply, in order (default: the first)\n"
  "  --disable-adapters    the base layer alone\n"
  "  --device SPEC         cpu, gpu, P:D or a device-name substring (default: $OFTAWQ_DEVICE)\n"
  "  --cache-dir DIR       compiled-kernel cache (default: $OFTAWQ_CACHE_DIR, $XDG_CACHE_HOME/oftawq\n"
  "                        or ~/.cache/oftawq)\n"
  "exit status: 0 success, 1 error, 2 usage error\n";

#define MAX_ADAPTERS 16

/* Splits "DIR:NAME" (NAME without '/') into its parts; dir is a copy the caller frees. */
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

int cmd_forward(int argc, char **argv)
{
  const char *model = NULL, *module = NULL, *input = NULL, *output = NULL, *active = NULL, *device = NULL;
  const char *cache_dir = NULL, *names[MAX_ADAPTERS];
  char *dirs[MAX_ADAPTERS], default_cache[4096], why[1024], *active_copy = NULL;
  const char *active_list[MAX_ADAPTERS];
  int n_adapters = 0, disable = 0, i, step, rc = EXIT_FAILURE, tty = isatty(fileno(stderr));
  size_t n_active = 0, rows = 1, in_bytes, k;
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  oftawq_layer *layer = NULL;
  oftawq_safetensors *in = NULL;
  oftawq_tensor x, y;
  oftawq_status st;
  void *out = NULL;
  oftawq_dtype dtype;
  int K, N;

  for (i = 1; i < argc; i += step) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    step = 2; /* an option and its value */
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_forward, stdout);
      rc = EXIT_SUCCESS;
      goto done;
    }
    if (!strcmp(a, "--disable-adapters")) {
      disable = 1;
      step = 1;
      continue;
    }
    if (!v) {
      rc = cli_usage_error(usage_forward, "forward: '%s' needs a value (or is unknown)", a);
      goto done;
    }
    if (!strcmp(a, "--model")) model = v;
    else if (!strcmp(a, "--module")) module = v;
    else if (!strcmp(a, "--input")) input = v;
    else if (!strcmp(a, "--output")) output = v;
    else if (!strcmp(a, "--active")) active = v;
    else if (!strcmp(a, "--device")) device = v;
    else if (!strcmp(a, "--cache-dir")) cache_dir = v;
    else if (!strcmp(a, "--adapter")) {
      if (n_adapters == MAX_ADAPTERS) {
        rc = cli_usage_error(usage_forward, "forward: at most %s adapters", "16");
        goto done;
      }
      if (!(dirs[n_adapters] = split_adapter(v, &names[n_adapters]))) {
        cli_fail("%s", "out of memory");
        goto done;
      }
      n_adapters++;
    } else {
      rc = cli_usage_error(usage_forward, "forward: unknown option '%s'", a);
      goto done;
    }
  }
  if (!model || !module || !input || !output) {
    rc = cli_usage_error(usage_forward, "forward: --model, --module, --input and --output are required%s", "");
    goto done;
  }

  /* the input first: a bad file should not cost a device start */
  oftawq_tensor_init(&x);
  if ((st = oftawq_safetensors_open(input, &in, why, sizeof why)) < 0) {
    cli_fail("%s", why);
    goto done;
  }
  if (oftawq_safetensors_find(in, "x", &x) < 0) {
    cli_fail("%s has no tensor 'x'", cli_esc(input));
    goto done;
  }
  if (x.dtype != OFTAWQ_T_F32 && x.dtype != OFTAWQ_T_F16) {
    cli_fail("tensor 'x' of %s is %s; forward takes F32 or F16", cli_esc(input), oftawq_tensor_dtype_name(x.dtype));
    goto done;
  }
  if (x.ndim < 1) {
    cli_fail("tensor 'x' of %s is a scalar; it needs a last dimension K", cli_esc(input));
    goto done;
  }
  dtype = x.dtype == OFTAWQ_T_F16 ? OFTAWQ_F16 : OFTAWQ_F32;
  for (k = 0; k + 1 < (size_t)x.ndim; k++) rows *= (size_t)x.shape[k];

  if (!cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK) cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = device;
  opt.cache_dir = cache_dir;
  if (cli_context_create(&opt, &ctx) != OFTAWQ_OK) goto done;
  if (tty) fprintf(stderr, "oftawq: loading %s from %s ...", cli_esc(module), cli_esc(model));
  st = oftawq_layer_load(ctx, model, module, (const char *const *)dirs, names, (size_t)n_adapters, &layer);
  if (tty) fprintf(stderr, "\r\033[K");
  if (st < 0) {
    cli_fail("%s", oftawq_context_last_error(ctx));
    goto done;
  }
  if (active) {
    char *tok, *save = NULL;
    if (!(active_copy = malloc(strlen(active) + 1))) {
      cli_fail("%s", "out of memory");
      goto done;
    }
    strcpy(active_copy, active);
    for (tok = strtok_r(active_copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      if (!oftawq_layer_adapter(layer, tok)) {
        cli_fail("--active names '%s', which is not one of the --adapter names", cli_esc(tok));
        goto done;
      }
      if (n_active == MAX_ADAPTERS) {
        cli_fail("%s", "--active lists too many names");
        goto done;
      }
      active_list[n_active++] = tok;
    }
    oftawq_layer_set_active(layer, active_list, n_active);
  }
  if (disable) oftawq_layer_enable_adapters(layer, 0);

  oftawq_awq_get_shape(oftawq_layer_base(layer), &K, &N, NULL, NULL);
  if (x.shape[x.ndim - 1] != K) {
    cli_fail("tensor 'x' of %s has last dimension %lld; module %s has in_features %d", cli_esc(input),
             (long long)x.shape[x.ndim - 1], cli_esc(module), K);
    goto done;
  }
  in_bytes = rows * (size_t)K * (dtype == OFTAWQ_F16 ? 2 : 4);
  if (in_bytes != x.nbytes || !(out = malloc(rows * (size_t)N * (dtype == OFTAWQ_F16 ? 2 : 4) + 1))) {
    cli_fail("%s", in_bytes != x.nbytes ? "tensor 'x' holds fewer bytes than its shape" : "out of memory");
    goto done;
  }
  if ((st = oftawq_layer_forward(layer, dtype, x.data, out, rows)) < 0) {
    cli_fail("%s", oftawq_context_last_error(ctx));
    goto done;
  }
  oftawq_tensor_init(&y);
  y.name = "y";
  y.dtype = x.dtype;
  y.ndim = x.ndim;
  memcpy(y.shape, x.shape, sizeof y.shape);
  y.shape[y.ndim - 1] = N;
  y.data = out;
  y.nbytes = rows * (size_t)N * (dtype == OFTAWQ_F16 ? 2 : 4);
  if (oftawq_safetensors_write(output, &y, 1, why, sizeof why) < 0) {
    cli_fail("%s", why);
    goto done;
  }
  rc = EXIT_SUCCESS;
done:
  for (i = 0; i < n_adapters; i++) free(dirs[i]);
  free(active_copy);
  free(out);
  oftawq_layer_destroy(layer);
  oftawq_safetensors_close(in);
  oftawq_context_destroy(ctx);
  return rc;
}
