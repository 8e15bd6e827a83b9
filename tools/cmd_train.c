/* cmd_train.c: oftawq train - fits one OFT adapter on one module of an AWQ model to (x, y_target) pairs and saves it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "model_args.h"

static const char usage_train[] =
  "usage: oftawq train --model DIR --module NAME --input X.safetensors --target T.safetensors\n"
  "                    (--adapter DIR[:NAME] | --block-size B | --r R [--coft [--eps E]] [--exact] [--terms N])\n"
  "                    [--steps N] [--lr LR] [--batch ROWS] [--optimizer adamw|sgd] [--json FILE]\n"
  "                    [--device SPEC] [--cache-dir DIR] --save OUT_DIR\n"
  "\n"
  "Trains one OFT adapter in front of the AWQ module NAME of the model folder DIR so\n"
  "that the layer maps tensor 'x' of the input file (F32 or F16, [..., K]) to tensor\n"
  "'y' of the target file ([..., N]). The loss is the mean over all output elements of\n"
  "(y - y_target)^2 in fp32. Each step takes the next --batch rows, in order, through\n"
  "the training forward, the backward and the optimizer. The adapter is saved as a PEFT\n"
  "folder (adapter_config.json + adapter_model.safetensors) that PEFT's\n"
  "PeftModel.from_pretrained loads; nothing is written unless training succeeded.\n"
  "\n"
  "  --adapter DIR[:NAME]  start from a PEFT OFT adapter (its config: formula, COFT,\n"
  "                        block sharing); otherwise a fresh adapter, initialised as\n"
  "                        PEFT does (zeros: R = I), with:\n"
  "  --block-size B        block size (or --r R, the number of blocks)\n"
  "  --coft, --eps E       constrained OFT with radius E (default 6e-5)\n"
  "  --exact               exact Cayley instead of the Cayley-Neumann series\n"
  "  --terms N             Cayley-Neumann terms (default 5)\n"
  "  --steps N             optimizer steps (default 100)\n"
  "  --lr LR               learning rate (default 1e-3)\n"
  "  --batch ROWS          rows per step (default: all)\n"
  "  --optimizer KIND      adamw (torch.optim.AdamW defaults, the default) or sgd\n"
  "                        (w -= lr * g: no momentum, no weight decay)\n"
  "  --json FILE           write {\"loss\": [one value per step], ...}\n"
  "  --device SPEC         cpu, gpu, P:D or a device-name substring (default: $OFTAWQ_DEVICE)\n"
  "  --cache-dir DIR       compiled-kernel cache (default: $OFTAWQ_CACHE_DIR, $XDG_CACHE_HOME/oftawq\n"
  "                        or ~/.cache/oftawq)\n"
  "  --save OUT_DIR        the adapter folder to write (its parent must exist)\n"
  "exit status: 0 success, 1 error, 2 usage error\n";

#define PROGRESS_WIDTH 30

typedef struct train_args {
  model_args m;              /* --model, --adapter, --device, --cache-dir (shared with forward and inspect) */
  const char *module, *input, *target, *json, *save, *optimizer;
  int block_size, r, coft, exact, terms, steps, batch;
  double eps, lr;
  int have_eps, have_lr;
} train_args;

/* A positive finite number; 0 if `text` is not one. */
static int parse_positive(const char *text, double *out)
{
  char *end;
  double v = strtod(text, &end);
  if (end == text || *end || !isfinite(v) || v <= 0) return 0;
  *out = v;
  return 1;
}

static int parse_args(int argc, char **argv, train_args *a)
{
  int i, step, took;
  memset(a, 0, sizeof *a);
  a->terms = 5;
  a->steps = 100;
  a->lr = 1e-3;
  a->eps = 6e-5;
  for (i = 1; i < argc; i += step) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = 1;
    step = 2; /* an option and its value */
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(usage_train, stdout);
      return -1;
    }
    if (!strcmp(o, "--coft")) {
      a->coft = 1;
      step = 1;
      continue;
    }
    if (!strcmp(o, "--exact")) {
      a->exact = 1;
      step = 1;
      continue;
    }
    if ((took = model_args_option(&a->m, argc, argv, i, usage_train, "train")) != 0) {
      if (took < 0) return EXIT_USAGE;
      step = took;
      continue;
    }
    if (!v) return cli_usage_error(usage_train, "train: '%s' needs a value (or is unknown)", cli_esc(o));
    if (!strcmp(o, "--module")) a->module = v;
    else if (!strcmp(o, "--input")) a->input = v;
    else if (!strcmp(o, "--target")) a->target = v;
    else if (!strcmp(o, "--json")) a->json = v;
    else if (!strcmp(o, "--save")) a->save = v;
    else if (!strcmp(o, "--optimizer")) a->optimizer = v;
    else if (!strcmp(o, "--block-size")) ok = cli_parse_int(v, &a->block_size);
    else if (!strcmp(o, "--r")) ok = cli_parse_int(v, &a->r);
    else if (!strcmp(o, "--terms")) ok = cli_parse_int(v, &a->terms);
    else if (!strcmp(o, "--steps")) ok = cli_parse_int(v, &a->steps);
    else if (!strcmp(o, "--batch")) ok = cli_parse_int(v, &a->batch);
    else if (!strcmp(o, "--eps")) ok = a->have_eps = parse_positive(v, &a->eps);
    else if (!strcmp(o, "--lr")) ok = a->have_lr = parse_positive(v, &a->lr);
    else return cli_usage_error(usage_train, "train: unknown option '%s'", cli_esc(o));
    if (!ok) return cli_usage_error(usage_train, "train: bad value '%s' for %s", cli_esc(v), o);
  }
  if (!a->m.model || !a->module || !a->input || !a->target || !a->save)
    return cli_usage_error(usage_train, "train: --model, --module, --input, --target and --save are required");
  if (a->m.n_adapters > 1 || a->m.active || a->m.disable || a->m.producer)
    return cli_usage_error(usage_train, "train: one --adapter at most; --active, --disable-adapters and --producer "
                                        "do not apply");
  if ((a->m.n_adapters == 1) + !!a->block_size + !!a->r != 1)
    return cli_usage_error(usage_train, "train: give exactly one of --adapter, --block-size and --r");
  if (a->m.n_adapters && (a->coft || a->exact || a->have_eps || a->terms != 5))
    return cli_usage_error(usage_train, "train: --adapter keeps its own config; drop --coft, --eps, --exact, --terms");
  if (a->have_eps && !a->coft) return cli_usage_error(usage_train, "train: --eps needs --coft");
  if (a->optimizer && strcmp(a->optimizer, "adamw") && strcmp(a->optimizer, "sgd"))
    return cli_usage_error(usage_train, "train: --optimizer is adamw or sgd, not '%s'", cli_esc(a->optimizer));
  return 0;
}

/* A tensor of a file, F32 or F16, with a last dimension `last` (0: any); rows = product of the others. */
static int open_tensor(const char *path, const char *name, int last, oftawq_safetensors **file, oftawq_tensor *t,
                       size_t *rows)
{
  char why[1024];
  int k;
  oftawq_tensor_init(t);
  if (oftawq_safetensors_open(path, file, why, sizeof why) < 0) return cli_fail("%s", why);
  if (oftawq_safetensors_find(*file, name, t) < 0) return cli_fail("%s has no tensor '%s'", cli_esc(path), name);
  if ((t->dtype != OFTAWQ_T_F32 && t->dtype != OFTAWQ_T_F16) || t->ndim < 1)
    return cli_fail("tensor '%s' of %s must be F32 or F16 with a last dimension (train takes no %s)", name,
                    cli_esc(path), oftawq_tensor_dtype_name(t->dtype));
  if (last && t->shape[t->ndim - 1] != last)
    return cli_fail("tensor '%s' of %s has last dimension %lld, the module needs %d", name, cli_esc(path),
                    (long long)t->shape[t->ndim - 1], last);
  for (*rows = 1, k = 0; k + 1 < t->ndim; k++) *rows *= (size_t)t->shape[k];
  return 0;
}

/* The target as floats (the loss is computed in fp32). */
static float *target_floats(const oftawq_tensor *t, size_t n)
{
  float *out = malloc((n ? n : 1) * sizeof *out);
  const unsigned char *p = t->data;
  size_t i;
  if (!out) return NULL;
  for (i = 0; i < n; i++) {
    if (t->dtype == OFTAWQ_T_F32) {
      memcpy(&out[i], p + 4 * i, 4);
    } else { /* IEEE half, by hand: the CLI uses the public API only */
      unsigned h = (unsigned)p[2 * i] | (unsigned)p[2 * i + 1] << 8, e = (h >> 10) & 31u, m = h & 1023u;
      float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024u), (int)e - 25);
      out[i] = (h & 0x8000u) ? -v : v;
    }
  }
  return out;
}

static void progress(int tty, int step, int steps, double loss)
{
  int filled = steps ? (int)((long)PROGRESS_WIDTH * step / steps) : PROGRESS_WIDTH, i;
  if (!tty) return;
  fputs("\r\033[K[", stderr);
  for (i = 0; i < PROGRESS_WIDTH; i++) fputc(i < filled ? '#' : '.', stderr);
  fprintf(stderr, "] step %d/%d loss %.6g", step, steps, loss);
}

/* Writes the report to `tmp` (renamed once the adapter is saved). */
static int write_json(const char *tmp, const train_args *a, const double *loss, int steps, size_t rows, size_t batch)
{
  FILE *f;
  int i, ok;
  if (!(f = fopen(tmp, "w"))) return 0;
  fputs("{\n  \"module\": ", f);
  cli_json_string(f, a->module);
  fprintf(f, ",\n  \"optimizer\": \"%s\",\n  \"lr\": %.9g,\n  \"steps\": %d,\n  \"rows\": %zu,\n  \"batch\": %zu,\n",
          a->optimizer ? a->optimizer : "adamw", a->lr, steps, rows, batch);
  fputs("  \"loss\": [", f);
  for (i = 0; i < steps; i++) fprintf(f, "%s%.9g", i ? ", " : "", loss[i]);
  fputs("]\n}\n", f);
  ok = fclose(f) == 0;
  if (!ok) remove(tmp);
  return ok;
}

static double median_of(const oftawq_bench_result *r, size_t n, const char *impl)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (!strcmp(r[i].impl, impl)) return r[i].median_s;
  return NAN;
}

void cli_print_train_ratios(const oftawq_bench_result *r, size_t n)
{
  double fwd = median_of(r, n, "train_forward"), bwd = median_of(r, n, "train_backward");
  double step = median_of(r, n, "train_step"), it = median_of(r, n, "train_iteration");
  double keep = median_of(r, n, "train_backward_3"), rec = median_of(r, n, "train_backward_3_recompute");
  printf("    backward / forward = %.2f   step / iteration = %.1f%%   train_forward / oft_awq = %.2f   "
         "3 adapters: recompute / keep = %.2f\n",
         bwd / fwd, 100.0 * step / it, fwd / median_of(r, n, "oft_awq"), rec / keep);
}

int cmd_train(int argc, char **argv)
{
  train_args a;
  char default_cache[4096], *json_tmp = NULL;
  const char *name = "default";
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  oftawq_layer *layer = NULL;
  oftawq_optimizer *optim = NULL;
  oftawq_optimizer_options oo;
  oftawq_safetensors *xf = NULL, *tf = NULL;
  oftawq_tensor x, t;
  oftawq_dtype dtype;
  size_t rows = 0, trows = 0, batch, es, b0;
  float *target = NULL;
  double *loss = NULL;
  void *y = NULL, *dy = NULL;
  int rc, K, N, step, tty = isatty(fileno(stderr));

  if ((rc = parse_args(argc, argv, &a)) != 0) {
    model_args_free(&a.m);
    return rc < 0 ? EXIT_SUCCESS : rc;
  }
  rc = EXIT_FAILURE;
  /* the files first: a bad one, or an output that cannot be written, should not cost a device start or a training */
  if (open_tensor(a.input, "x", 0, &xf, &x, &rows) || open_tensor(a.target, "y", 0, &tf, &t, &trows) ||
      (a.json && !cli_output_writable(a.json, 0)) || !cli_output_writable(a.save, 1))
    goto done;
  if (rows != trows || rows == 0) {
    cli_fail("%s has %zu rows of x but %s has %zu rows of y", cli_esc(a.input), rows, cli_esc(a.target), trows);
    goto done;
  }
  dtype = x.dtype == OFTAWQ_T_F16 ? OFTAWQ_F16 : OFTAWQ_F32;
  es = dtype == OFTAWQ_F16 ? 2 : 4;
  batch = a.batch && (size_t)a.batch < rows ? (size_t)a.batch : rows;

  if (!a.m.cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK)
    a.m.cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = a.m.device;
  opt.cache_dir = a.m.cache_dir;
  if (cli_context_create(&opt, &ctx) != OFTAWQ_OK) goto done; /* it said why */
  if (a.m.n_adapters) {
    if (a.m.names[0]) name = a.m.names[0];
    if (oftawq_layer_load(ctx, a.m.model, a.module, (const char *const *)a.m.dirs, &name, 1, &layer) < 0) {
      cli_fail("%s", oftawq_context_last_error(ctx));
      goto done;
    }
  } else {
    oftawq_oft_config c;
    oftawq_oft_config_init(&c);
    c.r = a.r;
    c.oft_block_size = a.block_size;
    c.coft = a.coft;
    c.eps = a.eps;
    c.use_cayley_neumann = !a.exact;
    c.num_cayley_neumann_terms = a.terms;
    if (oftawq_layer_load(ctx, a.m.model, a.module, NULL, NULL, 0, &layer) < 0 ||
        oftawq_layer_add_adapter(layer, name, &c, NULL, 0) < 0) {
      cli_fail("%s", oftawq_context_last_error(ctx));
      goto done;
    }
  }
  oftawq_awq_get_shape(oftawq_layer_base(layer), &K, &N, NULL, NULL);
  if (x.shape[x.ndim - 1] != K || t.shape[t.ndim - 1] != N || x.nbytes != rows * (size_t)K * es) {
    cli_fail("module %s maps %d to %d features; x has %lld and y %lld", cli_esc(a.module), K, N,
             (long long)x.shape[x.ndim - 1], (long long)t.shape[t.ndim - 1]);
    goto done;
  }
  oftawq_optimizer_options_init(&oo);
  oo.kind = a.optimizer && !strcmp(a.optimizer, "sgd") ? OFTAWQ_OPTIMIZER_SGD : OFTAWQ_OPTIMIZER_ADAMW;
  oo.lr = a.lr;
  target = target_floats(&t, rows * (size_t)N);
  loss = malloc((size_t)a.steps * sizeof *loss);
  y = malloc(batch * (size_t)N * es);
  dy = malloc(batch * (size_t)N * es);
  if (!target || !loss || !y || !dy) {
    cli_fail("%s", "out of memory");
    goto done;
  }
  if (oftawq_layer_set_trainable(layer, name, 1) < 0 || oftawq_optimizer_create(ctx, &oo, &optim) < 0 ||
      oftawq_optimizer_add(optim, layer, name) < 0) {
    cli_fail("%s", oftawq_context_last_error(ctx));
    goto done;
  }
  for (step = 0, b0 = 0; step < a.steps; step++) {
    size_t n = rows - b0 < batch ? rows - b0 : batch;
    const unsigned char *xb = (const unsigned char *)x.data + b0 * (size_t)K * es;
    if (oftawq_layer_forward_train(layer, dtype, xb, y, n) < 0 ||
        oftawq_mse_loss(dtype, y, target + b0 * (size_t)N, n * (size_t)N, dy, &loss[step]) < 0 ||
        oftawq_layer_backward(layer, dtype, dy, NULL, n) < 0 || oftawq_optimizer_step(optim, NULL) < 0 ||
        oftawq_optimizer_zero_grad(optim) < 0) {
      if (tty) fputs("\r\033[K", stderr);
      cli_fail("%s", oftawq_context_last_error(ctx));
      goto done;
    }
    progress(tty, step + 1, a.steps, loss[step]);
    b0 = b0 + n >= rows ? 0 : b0 + n;
  }
  if (tty) fputs("\r\033[K", stderr);
  if (a.json) {
    if (!(json_tmp = malloc(strlen(a.json) + 8))) {
      cli_fail("%s", "out of memory");
      goto done;
    }
    sprintf(json_tmp, "%s.tmp", a.json);
    if (!write_json(json_tmp, &a, loss, a.steps, rows, batch)) {
      cli_fail("cannot write %s", cli_esc(a.json));
      goto done;
    }
  }
  if (oftawq_adapter_save(a.save, name, &a.module, &layer, 1, NULL) < 0) {
    cli_fail("%s", oftawq_context_last_error(ctx));
    goto done;
  }
  if (json_tmp && rename(json_tmp, a.json) != 0) {
    cli_fail("cannot write %s", cli_esc(a.json));
    goto done;
  }
  free(json_tmp);
  json_tmp = NULL;
  printf("trained %s on %s: %d steps of %zu rows (%s, lr %g)\n", cli_esc(name), cli_esc(a.module), a.steps, batch,
         oo.kind == OFTAWQ_OPTIMIZER_SGD ? "sgd" : "adamw", a.lr);
  printf("loss: first %.6g, last %.6g\n", loss[0], loss[a.steps - 1]);
  printf("saved %s\n", cli_esc(a.save));
  rc = EXIT_SUCCESS;
done:
  if (json_tmp) remove(json_tmp);
  free(json_tmp);
  oftawq_optimizer_destroy(optim);
  oftawq_layer_destroy(layer);
  oftawq_context_destroy(ctx);
  oftawq_safetensors_close(xf);
  oftawq_safetensors_close(tf);
  model_args_free(&a.m);
  free(target);
  free(loss);
  free(y);
  free(dy);
  return rc;
}
