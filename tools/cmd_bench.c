/* cmd_bench.c: oftawq bench - every implementation checked, then timed alike, on synthetic layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define BENCH_IMPLS 24 /* at least the number of implementations oftawq_bench_shape can time */

static const char usage_bench[] =
  "usage: oftawq bench [--shapes KxN[,KxN...]] [--tokens M[,M...]] [--group G] [--block B]\n"
  "                    [--runs N] [--paths] [--json FILE] [--device SPEC] [--cache-dir DIR]\n"
  "\n"
  "Builds synthetic AWQ layers (group G) with one OFT adapter (block size B) and\n"
  "times, for each shape and token count M: copy (device copy of the packed\n"
  "weight: the bandwidth reference), awq (base layer), oft_awq (layer, cached R),\n"
  "oft_awq_recompute (R rebuilt per call, as PEFT does), rotate, cayley_neumann,\n"
  "cayley_exact, clblast_f32 (CLBlast on the dequantised fp32 weight: SGEMV for\n"
  "M = 1, SGEMM above), clblast_f16 (with cl_khr_fp16), cpu_int4 (native C on\n"
  "the host CPU over the same AWQ tensors, as many threads as the OpenCL CPU\n"
  "device uses) and fma (chains of fp32 fma on every lane of the device, the\n"
  "kernels' own operation: the compute reference, its fastest call the peak).\n"
  "Each output is checked against the reference first (fma's chains count: each\n"
  "lane must end at its start plus the steps); a wrong one fails the run. Times\n"
  "are medians of N runs after warm-up, host clock from the first enqueue (or\n"
  "call) to its end, round-robin over the implementations. w/min is the weight\n"
  "bytes a call reads over the AWQ tensors' size.\n"
  "\n"
  "  --shapes LIST   K x N pairs (default 1024x1024,2048x2048)\n"
  "  --tokens LIST   M values (default 1,16,256)\n"
  "  --group G       AWQ group size (default 128)\n"
  "  --block B       OFT block size (default 32)\n"
  "  --runs N        timed runs per point (default 5)\n"
  "  --paths         also time each AWQ path forced (awq_gemv, awq_gemm, awq_dense), the\n"
  "                  layer with the rotation fused into the GEMV or separate, the layer with\n"
  "                  three active adapters (oft_awq_3), and the exact R built on the host or\n"
  "                  the device\n"
  "  --train         time training instead (see oftawq train): train_forward, train_backward,\n"
  "                  train_step (AdamW), train_iteration, the inference forward oft_awq beside\n"
  "                  them, and the backward with three adapters keeping or recomputing their\n"
  "                  inputs (default tokens 1,16,256 on 2048x2048)\n"
  "  --json FILE     also write the results as JSON\n"
  "  --device SPEC   cpu, gpu, P:D or a device-name substring (default: $OFTAWQ_DEVICE)\n";

typedef struct bench_progress {
  int tty;
  int K, N, M;
} bench_progress;

static void bench_tick(void *user, const char *impl)
{
  bench_progress *p = user;
  if (p->tty) fprintf(stderr, "\r\033[K  %dx%d M=%d: %s ...", p->K, p->N, p->M, impl);
}

static const oftawq_bench_result *find_result(const oftawq_bench_result *r, size_t n, const char *impl)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (!strcmp(r[i].impl, impl)) return &r[i];
  return NULL;
}

/* The ratios the benchmark's goals are stated in (docs/PERFORMANCE.md). */
static void print_ratios(const oftawq_bench_result *r, size_t n)
{
  const oftawq_bench_result *awq = find_result(r, n, "awq"), *oft = find_result(r, n, "oft_awq"),
                            *rec = find_result(r, n, "oft_awq_recompute"), *copy = find_result(r, n, "copy"),
                            *cb = find_result(r, n, "clblast_f32"), *cpu = find_result(r, n, "cpu_int4"),
                            *fma = find_result(r, n, "fma");
  printf("    ");
  if (cpu) printf("awq / cpu_int4 = %.2f   ", awq->median_s / cpu->median_s);
  printf("oft_awq / awq = %.2f   recompute / oft_awq = %.2f", oft->median_s / awq->median_s,
         rec->median_s / oft->median_s);
  if (cb) printf("   clblast_f32 / awq = %.2f", cb->median_s / awq->median_s);
  printf("   awq at %.0f%% of copy bandwidth", 100.0 * awq->gbps / copy->gbps);
  if (fma) /* a ceiling is the best the device did: fma's fastest call */
    printf(", %.0f%% of the fma peak", 100.0 * awq->gflops / (fma->flops / fma->min_s * 1e-9));
  putchar('\n');
}

static void json_result(FILE *f, const oftawq_bench_result *r, int tuned)
{
  fprintf(f,
          "    {\"impl\": \"%s\", \"K\": %d, \"N\": %d, \"M\": %d, \"G\": %d, \"b\": %d, \"median_s\": %.9g, "
          "\"min_s\": %.9g, \"runs\": %d, \"bytes\": %.0f, \"flops\": %.0f, \"gbps\": %.6g, \"gflops\": %.6g, "
          "\"weight_bytes\": %.0f, \"weight_ratio\": %.4g, \"checked\": %s, \"tuned\": %s}",
          r->impl, r->K, r->N, r->M, r->G, r->block_size, r->median_s, r->min_s, r->runs, r->bytes, r->flops, r->gbps,
          r->gflops, r->weight_bytes, r->weight_minimum > 0 ? r->weight_bytes / r->weight_minimum : 0.0,
          r->checked ? "true" : "false", tuned ? "true" : "false");
}

/* Writes the JSON report to a temporary name and renames it on success. */
static int write_bench_json(const char *path, const oftawq_device_info *d, const oftawq_bench_result *r,
                            const int *tuned, size_t n, int runs)
{
  size_t len = strlen(path) + 16, i;
  char *tmp = malloc(len);
  FILE *f;
  int ok;
  if (!tmp) return 0;
  snprintf(tmp, len, "%s.tmp", path);
  if (!(f = fopen(tmp, "w"))) {
    free(tmp);
    return 0;
  }
  fprintf(f, "{\n  \"library_version\": \"%s\",\n  \"device\": {\"name\": ", oftawq_version_string());
  cli_json_string(f, d->name);
  fprintf(f, ", \"vendor\": ");
  cli_json_string(f, d->vendor);
  fprintf(f, ", \"driver_version\": ");
  cli_json_string(f, d->driver_version);
  fprintf(f, ", \"platform\": ");
  cli_json_string(f, d->platform_name);
  fprintf(f, ", \"opencl_c_version\": ");
  cli_json_string(f, d->opencl_c_version);
  fprintf(f, ", \"fp16\": %s},\n", d->has_fp16 ? "true" : "false");
  {
    int any = 0;
    for (i = 0; i < n; i++) any |= tuned[i];
    fprintf(f, "  \"tuned\": %s,\n  \"runs\": %d,\n", any ? "true" : "false", runs);
  }
  fprintf(f, "  \"timing\": \"median of runs after warm-up; host clock from the first enqueue to clFinish\",\n");
  fprintf(f, "  \"weight_ratio\": \"weight bytes read per call over the AWQ tensors' bytes\",\n");
  fprintf(f, "  \"results\": [\n");
  for (i = 0; i < n; i++) {
    json_result(f, &r[i], tuned[i]);
    fprintf(f, "%s\n", i + 1 < n ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  ok = fclose(f) == 0;
  ok = ok && rename(tmp, path) == 0;
  if (!ok) remove(tmp);
  free(tmp);
  return ok;
}

int cmd_bench(int argc, char **argv)
{
  int K[CLI_MAX_POINTS], N[CLI_MAX_POINTS], M[CLI_MAX_POINTS], nshapes = 2, ntokens = 3, group = 128, block = 32, runs = 5;
  int i, step, s, t, rc = EXIT_SUCCESS, paths = 0, *tuned = NULL, shapes_given = 0;
  oftawq_status (*measure)(oftawq_context *, const oftawq_bench_options *, oftawq_bench_result *, size_t, size_t *,
                           void (*)(void *, const char *), void *) = oftawq_bench_shape;
  const char *json = NULL, *device = NULL, *cache_dir = NULL;
  char default_cache[4096];
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  oftawq_device_info info;
  oftawq_bench_result *all = NULL;
  size_t n_all = 0;
  bench_progress prog;

  K[0] = N[0] = 1024;
  K[1] = N[1] = 2048;
  M[0] = 1;
  M[1] = 16;
  M[2] = 256;
  for (i = 1; i < argc; i += step) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    step = 2; /* an option and its value */
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_bench, stdout);
      return EXIT_SUCCESS;
    }
    if (!strcmp(a, "--paths")) {
      paths = 1;
      step = 1;
      continue;
    }
    if (!strcmp(a, "--train")) {
      measure = oftawq_bench_train;
      nshapes = shapes_given ? nshapes : 1;
      K[0] = N[0] = shapes_given ? K[0] : 2048;
      step = 1;
      continue;
    }
    if (!v) return cli_usage_error(usage_bench, "bench: '%s' needs a value (or is unknown)", a);
    if (!strcmp(a, "--shapes")) {
      if ((nshapes = cli_parse_list(v, K, N, CLI_MAX_POINTS, 1)) < 1)
        return cli_usage_error(usage_bench, "bench: --shapes wants KxN[,KxN...], got '%s'", v);
      shapes_given = 1;
    } else if (!strcmp(a, "--tokens")) {
      if ((ntokens = cli_parse_list(v, M, NULL, CLI_MAX_POINTS, 0)) < 1)
        return cli_usage_error(usage_bench, "bench: --tokens wants M[,M...], got '%s'", v);
    } else if (!strcmp(a, "--group")) {
      if (!cli_parse_int(v, &group)) return cli_usage_error(usage_bench, "bench: --group wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--block")) {
      if (!cli_parse_int(v, &block)) return cli_usage_error(usage_bench, "bench: --block wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--runs")) {
      if (!cli_parse_int(v, &runs)) return cli_usage_error(usage_bench, "bench: --runs wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--json")) {
      json = v;
    } else if (!strcmp(a, "--device")) {
      device = v;
    } else if (!strcmp(a, "--cache-dir")) {
      cache_dir = v;
    } else {
      return cli_usage_error(usage_bench, "bench: unknown option '%s'", a);
    }
  }
  for (s = 0; s < nshapes; s++)
    if (N[s] % 8 || K[s] % group)
      return cli_usage_error(usage_bench, "bench: each K must be a multiple of --group and each N of 8 (%s)", argv[0]);

  if (json && !cli_output_writable(json, 0)) return EXIT_FAILURE; /* now, not after the measurements */
  if (!cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK) cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = device;
  opt.cache_dir = cache_dir;
  if (cli_context_create(&opt, &ctx) != OFTAWQ_OK) return EXIT_FAILURE;
  oftawq_device_info_init(&info);
  oftawq_context_device_info(ctx, &info);
  all = calloc((size_t)nshapes * ntokens * BENCH_IMPLS, sizeof *all);
  tuned = calloc((size_t)nshapes * ntokens * BENCH_IMPLS, sizeof *tuned);
  if (!all || !tuned) {
    free(all);
    free(tuned);
    oftawq_context_destroy(ctx);
    return cli_fail("%s", "out of memory");
  }
  printf("oftawq %s bench on %s (%s, driver %s)\n", oftawq_version_string(), info.name, info.platform_name,
         info.driver_version);
  printf("median of %d runs, host clock enqueue -> clFinish; G=%d, OFT block %d, F32 activations; %s\n\n", runs, group,
         block, oftawq_tune_count(ctx) ? "tuning database loaded" : "untuned defaults");
  printf("  %-11s %5s  %-18s %11s %11s %9s %10s %6s\n", "K x N", "M", "impl", "median ms", "min ms", "GB/s", "GFLOP/s",
         "w/min");
  prog.tty = isatty(fileno(stderr));
  for (s = 0; s < nshapes && rc == EXIT_SUCCESS; s++)
    for (t = 0; t < ntokens && rc == EXIT_SUCCESS; t++) {
      oftawq_bench_options bo;
      size_t n = 0, k;
      oftawq_status st;
      char shape[32];
      oftawq_bench_options_init(&bo);
      bo.K = K[s];
      bo.N = N[s];
      bo.M = M[t];
      bo.G = group;
      bo.block_size = block;
      bo.runs = runs;
      bo.paths = paths;
      prog.K = K[s];
      prog.N = N[s];
      prog.M = M[t];
      st = measure(ctx, &bo, all + n_all, BENCH_IMPLS, &n, bench_tick, &prog);
      if (prog.tty) fprintf(stderr, "\r\033[K");
      if (st != OFTAWQ_OK) {
        cli_fail("bench %dx%d M=%d: %s: %s", K[s], N[s], M[t], oftawq_status_message(st),
                 oftawq_context_last_error(ctx));
        rc = EXIT_FAILURE;
        break;
      }
      snprintf(shape, sizeof shape, "%dx%d", K[s], N[s]);
      {
        oftawq_kernel_params kp;
        oftawq_kernel_params_init(&kp);
        oftawq_query_params(ctx, "awq", K[s], N[s], group, block, (size_t)M[t], &kp);
        for (k = 0; k < n; k++) tuned[n_all + k] = kp.tuned;
      }
      for (k = 0; k < n; k++) {
        const oftawq_bench_result *r = &all[n_all + k];
        char ratio[16] = "-";
        if (r->weight_bytes > 0 && r->weight_minimum > 0) snprintf(ratio, sizeof ratio, "%.2f", r->weight_bytes / r->weight_minimum);
        printf("  %-11s %5d  %-18s %11.3f %11.3f %9.2f %10.2f %6s\n", shape, r->M, r->impl, r->median_s * 1e3,
               r->min_s * 1e3, r->gbps, r->gflops, ratio);
      }
      if (measure == oftawq_bench_train)
        cli_print_train_ratios(all + n_all, n);
      else
        print_ratios(all + n_all, n);
      n_all += n;
      fflush(stdout);
    }
  if (rc == EXIT_SUCCESS && json && !write_bench_json(json, &info, all, tuned, n_all, runs)) {
    cli_fail("cannot write '%s'", cli_esc(json));
    rc = EXIT_FAILURE;
  }
  free(all);
  free(tuned);
  oftawq_context_destroy(ctx);
  return rc;
}
