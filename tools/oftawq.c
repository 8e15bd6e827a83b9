/* oftawq.c: the oftawq command-line tool; parses arguments and calls the public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oftawq.h"

#define EXIT_USAGE 2
#define MAX_DEVICES 64

static const char usage_main[] =
  "usage: oftawq [--help] [--version] COMMAND [ARGS]\n"
  "\n"
  "Runs OFT adapters on AWQ 4-bit quantized linear layers on OpenCL devices.\n"
  "\n"
  "commands:\n"
  "  info [--json]      OpenCL platforms, devices and capabilities; the cache folder\n"
  "  forward            run a module of an AWQ model folder, with OFT adapters, on a tensor file\n"
  "  bench              time the layer and its parts against peers on this device\n"
  "  tune               tune kernel parameters and paths for this device, within a time budget\n"
  "\n"
  "Run 'oftawq COMMAND --help' for the options of a command.\n"
  "environment: OFTAWQ_DEVICE (device selector), OFTAWQ_CACHE_DIR (cache folder),\n"
  "             OFTAWQ_CL_DIR (folder of .cl files replacing the built-in kernels)\n";

static const char usage_info[] =
  "usage: oftawq info [--json] [--cache-dir DIR]\n"
  "\n"
  "Lists every OpenCL platform and device with the capabilities oftawq uses,\n"
  "and the cache folder with what it holds.\n"
  "\n"
  "  --json           machine-readable output on stdout\n"
  "  --cache-dir DIR  the cache folder to report (default: $OFTAWQ_CACHE_DIR,\n"
  "                   $XDG_CACHE_HOME/oftawq or ~/.cache/oftawq)\n";

static const char usage_bench[] =
  "usage: oftawq bench [--shapes KxN[,KxN...]] [--tokens M[,M...]] [--group G] [--block B]\n"
  "                    [--runs N] [--paths] [--json FILE] [--device SPEC] [--cache-dir DIR]\n"
  "\n"
  "Builds synthetic AWQ layers (group G) with one OFT adapter (block size B) and\n"
  "times, for each shape and token count M: copy (device copy of the packed\n"
  "weight: the bandwidth reference), awq (base layer), oft_awq (layer, cached R),\n"
  "oft_awq_recompute (R rebuilt per call, as PEFT does), rotate, cayley_neumann,\n"
  "cayley_exact, clblast_f32 (CLBlast SGEMM on the dequantised weight) and\n"
  "clblast_f16 (with cl_khr_fp16). Each output is checked against the reference\n"
  "first; a wrong one fails the run. Times are medians of N runs after warm-up,\n"
  "host clock from the first enqueue to clFinish, for every implementation alike.\n"
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
  "  --json FILE     also write the results as JSON\n"
  "  --device SPEC   cpu, gpu, P:D or a device-name substring (default: $OFTAWQ_DEVICE)\n";

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

static const char usage_tune[] =
  "usage: oftawq tune [--shapes KxN[,KxN...]] [--group G] [--block B] [--budget SECONDS]\n"
  "                   [--device SPEC] [--cache-dir DIR]\n"
  "\n"
  "Searches, for each shape and each rows bucket (1, 2-8, 9-64, 65-256, >256), the\n"
  "fastest correct AWQ path and launch parameters and the OFT rotation's work-group\n"
  "size, on synthetic layers, and stores them in the cache folder's tuning database,\n"
  "which every later run on this device uses. Candidates whose output differs from\n"
  "the reference are rejected.\n"
  "\n"
  "  --shapes LIST     K x N pairs (default 2048x2048)\n"
  "  --group G         AWQ group size (default 128)\n"
  "  --block B         OFT block size (default 32)\n"
  "  --budget SECONDS  total time (default 60), shared by the shapes\n"
  "  --device SPEC     cpu, gpu, P:D or a device-name substring (default: $OFTAWQ_DEVICE)\n"
  "  --cache-dir DIR   where the database lives (default: $OFTAWQ_CACHE_DIR, $XDG_CACHE_HOME/oftawq\n"
  "                    or ~/.cache/oftawq)\n";

static int fail(const char *fmt, const char *arg)
{
  fputs("oftawq: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  return EXIT_FAILURE;
}

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
  fputs("oftawq: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  fputs(usage, stderr);
  return EXIT_USAGE;
}

static void json_string(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static const char *device_type(const oftawq_device_info *d)
{
  return d->is_gpu ? "gpu" : d->is_cpu ? "cpu" : "other";
}

static void print_device_text(const oftawq_device_info *d)
{
  printf("device %u:%u  %s\n", d->platform_index, d->device_index, d->name);
  printf("  platform          %s (%s)\n", d->platform_name, d->platform_version);
  printf("  type, vendor      %s, %s\n", device_type(d), d->vendor);
  printf("  version, driver   %s, %s\n", d->version, d->driver_version);
  printf("  OpenCL C          %s\n", d->opencl_c_version);
  printf("  fp16, subgroups   %s, %s\n", d->has_fp16 ? "yes" : "no", d->has_subgroups ? "yes" : "no");
  printf("  compute units     %u\n", d->compute_units);
  printf("  max work-group    %zu\n", d->max_work_group_size);
  printf("  local memory      %llu KiB (%s)\n", (unsigned long long)(d->local_mem_size >> 10),
         d->local_mem_is_local ? "dedicated" : "emulated in global");
  printf("  global memory     %llu MiB, max allocation %llu MiB\n", (unsigned long long)(d->global_mem_size >> 20),
         (unsigned long long)(d->max_alloc_size >> 20));
  printf("  unified memory    %s\n", d->unified_memory ? "yes" : "no");
}

static void print_device_json(const oftawq_device_info *d)
{
  printf("    {\"platform_index\": %u, \"device_index\": %u, \"platform\": ", d->platform_index, d->device_index);
  json_string(stdout, d->platform_name);
  printf(", \"platform_version\": ");
  json_string(stdout, d->platform_version);
  printf(", \"name\": ");
  json_string(stdout, d->name);
  printf(", \"type\": \"%s\", \"vendor\": ", device_type(d));
  json_string(stdout, d->vendor);
  printf(", \"version\": ");
  json_string(stdout, d->version);
  printf(", \"driver_version\": ");
  json_string(stdout, d->driver_version);
  printf(", \"opencl_c_version\": ");
  json_string(stdout, d->opencl_c_version);
  printf(", \"fp16\": %s, \"subgroups\": %s, \"compute_units\": %u, \"max_work_group_size\": %zu, "
         "\"local_mem_size\": %llu, \"local_mem_dedicated\": %s, \"global_mem_size\": %llu, "
         "\"max_alloc_size\": %llu, \"unified_memory\": %s}",
         d->has_fp16 ? "true" : "false", d->has_subgroups ? "true" : "false", d->compute_units,
         d->max_work_group_size, (unsigned long long)d->local_mem_size, d->local_mem_is_local ? "true" : "false",
         (unsigned long long)d->global_mem_size, (unsigned long long)d->max_alloc_size,
         d->unified_memory ? "true" : "false");
}

static void print_tuned(void *user, const char *device, const char *entry)
{
  (void)user;
  printf("  tuned  %s  [%s]\n", entry, device);
}

static void print_tuned_json(void *user, const char *device, const char *entry)
{
  int *first = user;
  printf("%s{\"device\": ", *first ? "" : ", ");
  json_string(stdout, device);
  printf(", \"entry\": ");
  json_string(stdout, entry);
  printf("}");
  *first = 0;
}

static int cmd_info(int argc, char **argv)
{
  int json = 0, i, first = 1;
  const char *cache_dir = NULL;
  char default_dir[4096];
  oftawq_device_info devices[MAX_DEVICES];
  size_t count = 0, k;
  oftawq_status status;
  oftawq_cache_summary summary;

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage_info, stdout);
      return EXIT_SUCCESS;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--cache-dir")) {
      if (++i >= argc) return usage_error(usage_info, "--cache-dir needs a folder", "");
      cache_dir = argv[i];
    } else {
      return usage_error(usage_info, "info: unknown option '%s'", argv[i]);
    }
  }
  if (!cache_dir && oftawq_cache_dir_default(default_dir, sizeof default_dir) == OFTAWQ_OK) cache_dir = default_dir;

  for (k = 0; k < MAX_DEVICES; k++) oftawq_device_info_init(&devices[k]);
  status = oftawq_device_list(NULL, devices, MAX_DEVICES, &count);
  if (status < 0 && status != OFTAWQ_E_NO_DEVICE) return fail("listing OpenCL devices: %s", oftawq_status_message(status));
  if (count > MAX_DEVICES) count = MAX_DEVICES;
  oftawq_cache_summary_init(&summary);
  if (cache_dir) oftawq_cache_summarize(cache_dir, &summary);

  if (json) {
    printf("{\n  \"version\": \"%s\",\n  \"devices\": [\n", oftawq_version_string());
    for (k = 0; k < count; k++) {
      print_device_json(&devices[k]);
      printf("%s\n", k + 1 < count ? "," : "");
    }
    printf("  ],\n  \"cache\": {\"dir\": ");
    if (cache_dir)
      json_string(stdout, cache_dir);
    else
      printf("null");
    printf(", \"program_binaries\": %llu, \"program_bytes\": %llu, \"tuned\": [",
           (unsigned long long)summary.program_entries, (unsigned long long)summary.program_bytes);
    if (cache_dir) oftawq_cache_tuning(cache_dir, print_tuned_json, &first);
    printf("]}\n}\n");
  } else {
    printf("oftawq %s\n", oftawq_version_string());
    if (count == 0) printf("no OpenCL device found (%s)\n", oftawq_status_message(status));
    for (k = 0; k < count; k++) print_device_text(&devices[k]);
    printf("cache folder %s: %llu program binaries, %llu bytes, %llu tuned entries\n",
           cache_dir ? cache_dir : "(none)", (unsigned long long)summary.program_entries,
           (unsigned long long)summary.program_bytes, (unsigned long long)summary.tuning_entries);
    if (cache_dir) oftawq_cache_tuning(cache_dir, print_tuned, NULL);
  }
  return EXIT_SUCCESS;
}

#define MAX_POINTS 64
#define BENCH_IMPLS 24 /* at least the number of implementations oftawq_bench_shape can time */

/* Parses "a,b,c" of positive ints (pairs "KxN" when `pairs`); returns the count or -1. */
static int parse_list(const char *text, int *a, int *b, int cap, int pairs)
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

static int parse_int(const char *text, int *out)
{
  char *end;
  long v = strtol(text, &end, 10);
  if (end == text || *end || v < 1 || v > 1 << 20) return 0;
  *out = (int)v;
  return 1;
}

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

static void print_ratios(const oftawq_bench_result *r, size_t n)
{
  const oftawq_bench_result *awq = find_result(r, n, "awq"), *oft = find_result(r, n, "oft_awq"),
                            *rec = find_result(r, n, "oft_awq_recompute"), *copy = find_result(r, n, "copy"),
                            *cb = find_result(r, n, "clblast_f32");
  printf("    oft_awq / awq = %.2f   recompute / oft_awq = %.2f", oft->median_s / awq->median_s,
         rec->median_s / oft->median_s);
  if (cb) printf("   clblast_f32 / oft_awq = %.2f", cb->median_s / oft->median_s);
  printf("   oft_awq at %.0f%% of copy bandwidth\n", 100.0 * oft->gbps / copy->gbps);
}

static void json_result(FILE *f, const oftawq_bench_result *r, int tuned)
{
  fprintf(f,
          "    {\"impl\": \"%s\", \"K\": %d, \"N\": %d, \"M\": %d, \"G\": %d, \"b\": %d, \"median_s\": %.9g, "
          "\"min_s\": %.9g, \"runs\": %d, \"bytes\": %.0f, \"flops\": %.0f, \"gbps\": %.6g, \"gflops\": %.6g, "
          "\"checked\": %s, \"tuned\": %s}",
          r->impl, r->K, r->N, r->M, r->G, r->block_size, r->median_s, r->min_s, r->runs, r->bytes, r->flops, r->gbps,
          r->gflops, r->checked ? "true" : "false", tuned ? "true" : "false");
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
  json_string(f, d->name);
  fprintf(f, ", \"vendor\": ");
  json_string(f, d->vendor);
  fprintf(f, ", \"driver_version\": ");
  json_string(f, d->driver_version);
  fprintf(f, ", \"platform\": ");
  json_string(f, d->platform_name);
  fprintf(f, ", \"opencl_c_version\": ");
  json_string(f, d->opencl_c_version);
  fprintf(f, ", \"fp16\": %s},\n", d->has_fp16 ? "true" : "false");
  {
    int any = 0;
    for (i = 0; i < n; i++) any |= tuned[i];
    fprintf(f, "  \"tuned\": %s,\n  \"runs\": %d,\n", any ? "true" : "false", runs);
  }
  fprintf(f, "  \"timing\": \"median of runs after warm-up; host clock from the first enqueue to clFinish\",\n");
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

static void log_to_stderr(void *user, oftawq_log_level level, const char *message)
{
  (void)user;
  if (level <= OFTAWQ_LOG_WARNING) fprintf(stderr, "oftawq: %s\n", message);
}

static int cmd_bench(int argc, char **argv)
{
  int K[MAX_POINTS], N[MAX_POINTS], M[MAX_POINTS], nshapes = 2, ntokens = 3, group = 128, block = 32, runs = 5;
  int i, s, t, rc = EXIT_SUCCESS, paths = 0, *tuned = NULL;
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
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_bench, stdout);
      return EXIT_SUCCESS;
    }
    if (!strcmp(a, "--paths")) {
      paths = 1;
      continue;
    }
    if (!v) return usage_error(usage_bench, "bench: '%s' needs a value (or is unknown)", a);
    if (!strcmp(a, "--shapes")) {
      if ((nshapes = parse_list(v, K, N, MAX_POINTS, 1)) < 1)
        return usage_error(usage_bench, "bench: --shapes wants KxN[,KxN...], got '%s'", v);
    } else if (!strcmp(a, "--tokens")) {
      if ((ntokens = parse_list(v, M, NULL, MAX_POINTS, 0)) < 1)
        return usage_error(usage_bench, "bench: --tokens wants M[,M...], got '%s'", v);
    } else if (!strcmp(a, "--group")) {
      if (!parse_int(v, &group)) return usage_error(usage_bench, "bench: --group wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--block")) {
      if (!parse_int(v, &block)) return usage_error(usage_bench, "bench: --block wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--runs")) {
      if (!parse_int(v, &runs)) return usage_error(usage_bench, "bench: --runs wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--json")) {
      json = v;
    } else if (!strcmp(a, "--device")) {
      device = v;
    } else if (!strcmp(a, "--cache-dir")) {
      cache_dir = v;
    } else {
      return usage_error(usage_bench, "bench: unknown option '%s'", a);
    }
    i++;
  }
  for (s = 0; s < nshapes; s++)
    if (N[s] % 8 || K[s] % group)
      return usage_error(usage_bench, "bench: each K must be a multiple of --group and each N of 8 (%s)", argv[0]);

  if (json) { /* a report that cannot be written should fail now, not after the measurements */
    size_t len = strlen(json) + 16;
    char *probe = malloc(len);
    FILE *f;
    if (!probe) return fail("%s", "out of memory");
    snprintf(probe, len, "%s.tmp", json);
    f = fopen(probe, "w");
    if (f) {
      fclose(f);
      remove(probe);
    }
    free(probe);
    if (!f) return fail("cannot write the JSON report '%s'", json);
  }
  if (!cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK) cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = device;
  opt.cache_dir = cache_dir;
  opt.log = log_to_stderr;
  if (oftawq_context_create(&opt, &ctx) != OFTAWQ_OK) return EXIT_FAILURE; /* the log said why */
  oftawq_device_info_init(&info);
  oftawq_context_device_info(ctx, &info);
  all = calloc((size_t)nshapes * ntokens * BENCH_IMPLS, sizeof *all);
  tuned = calloc((size_t)nshapes * ntokens * BENCH_IMPLS, sizeof *tuned);
  if (!all || !tuned) {
    free(all);
    free(tuned);
    oftawq_context_destroy(ctx);
    return fail("%s", "out of memory");
  }
  printf("oftawq %s bench on %s (%s, driver %s)\n", oftawq_version_string(), info.name, info.platform_name,
         info.driver_version);
  printf("median of %d runs, host clock enqueue -> clFinish; G=%d, OFT block %d, F32 activations; %s\n\n", runs, group,
         block, oftawq_tune_count(ctx) ? "tuning database loaded" : "untuned defaults");
  printf("  %-11s %5s  %-18s %11s %11s %9s %10s\n", "K x N", "M", "impl", "median ms", "min ms", "GB/s", "GFLOP/s");
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
      st = oftawq_bench_shape(ctx, &bo, all + n_all, BENCH_IMPLS, &n, bench_tick, &prog);
      if (prog.tty) fprintf(stderr, "\r\033[K");
      if (st != OFTAWQ_OK) {
        fprintf(stderr, "oftawq: bench %dx%d M=%d: %s: %s\n", K[s], N[s], M[t], oftawq_status_message(st),
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
        printf("  %-11s %5d  %-18s %11.3f %11.3f %9.2f %10.2f\n", shape, r->M, r->impl, r->median_s * 1e3,
               r->min_s * 1e3, r->gbps, r->gflops);
      }
      print_ratios(all + n_all, n);
      n_all += n;
      fflush(stdout);
    }
  if (rc == EXIT_SUCCESS && json && !write_bench_json(json, &info, all, tuned, n_all, runs)) {
    fprintf(stderr, "oftawq: cannot write '%s'\n", json);
    rc = EXIT_FAILURE;
  }
  free(all);
  free(tuned);
  oftawq_context_destroy(ctx);
  return rc;
}

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

static int cmd_tune(int argc, char **argv)
{
  int K[MAX_POINTS], N[MAX_POINTS], nshapes = 1, group = 128, block = 32, i, s, tty = isatty(fileno(stderr));
  double budget = 60;
  const char *device = NULL, *cache_dir = NULL;
  char default_cache[4096];
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  int rc = EXIT_SUCCESS;
  size_t k;

  K[0] = N[0] = 2048;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_tune, stdout);
      return EXIT_SUCCESS;
    }
    if (!v) return usage_error(usage_tune, "tune: '%s' needs a value (or is unknown)", a);
    if (!strcmp(a, "--shapes")) {
      if ((nshapes = parse_list(v, K, N, MAX_POINTS, 1)) < 1)
        return usage_error(usage_tune, "tune: --shapes wants KxN[,KxN...], got '%s'", v);
    } else if (!strcmp(a, "--group")) {
      if (!parse_int(v, &group)) return usage_error(usage_tune, "tune: --group wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--block")) {
      if (!parse_int(v, &block)) return usage_error(usage_tune, "tune: --block wants a positive integer, got '%s'", v);
    } else if (!strcmp(a, "--budget")) {
      budget = strtod(v, &end);
      if (end == v || *end || !(budget > 0) || budget > 1e6)
        return usage_error(usage_tune, "tune: --budget wants seconds > 0, got '%s'", v);
    } else if (!strcmp(a, "--device")) {
      device = v;
    } else if (!strcmp(a, "--cache-dir")) {
      cache_dir = v;
    } else {
      return usage_error(usage_tune, "tune: unknown option '%s'", a);
    }
    i++;
  }
  for (s = 0; s < nshapes; s++)
    if (N[s] % 8 || K[s] % group)
      return usage_error(usage_tune, "tune: each K must be a multiple of --group and each N of 8%s", "");
  if (!cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK) cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = device;
  opt.cache_dir = cache_dir;
  opt.log = log_to_stderr;
  if (oftawq_context_create(&opt, &ctx) != OFTAWQ_OK) return EXIT_FAILURE;
  for (s = 0; s < nshapes && rc == EXIT_SUCCESS; s++) {
    oftawq_tune_options to;
    oftawq_tune_report r;
    oftawq_tune_options_init(&to);
    to.budget_s = budget / nshapes;
    to.progress = tune_progress;
    to.user = &tty;
    oftawq_tune_report_init(&r);
    if (oftawq_tune_shape(ctx, K[s], N[s], group, block, &to, &r) != OFTAWQ_OK) {
      fail("tune: %s", oftawq_context_last_error(ctx));
      rc = EXIT_FAILURE;
      break;
    }
    printf("%dx%d: %u candidates timed, %u rejected, %u classes tuned in %.1f s\n", K[s], N[s], r.candidates_timed,
           r.candidates_rejected, r.classes_tuned, r.elapsed_s);
  }
  if (rc == EXIT_SUCCESS) {
    printf("tuning database (%s):\n", oftawq_context_cache_dir(ctx) ? oftawq_context_cache_dir(ctx) : "memory only");
    for (k = 0; k < oftawq_tune_count(ctx); k++) {
      char line[512];
      oftawq_tune_entry(ctx, k, line, sizeof line);
      printf("  %s\n", line);
    }
  }
  oftawq_context_destroy(ctx);
  return rc;
}

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

static int cmd_forward(int argc, char **argv)
{
  const char *model = NULL, *module = NULL, *input = NULL, *output = NULL, *active = NULL, *device = NULL;
  const char *cache_dir = NULL, *names[MAX_ADAPTERS];
  char *dirs[MAX_ADAPTERS], default_cache[4096], why[1024], *active_copy = NULL;
  const char *active_list[MAX_ADAPTERS];
  int n_adapters = 0, disable = 0, i, rc = EXIT_FAILURE, tty = isatty(fileno(stderr));
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

  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_forward, stdout);
      rc = EXIT_SUCCESS;
      goto done;
    }
    if (!strcmp(a, "--disable-adapters")) {
      disable = 1;
      continue;
    }
    if (!v) {
      rc = usage_error(usage_forward, "forward: '%s' needs a value (or is unknown)", a);
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
        rc = usage_error(usage_forward, "forward: at most %s adapters", "16");
        goto done;
      }
      if (!(dirs[n_adapters] = split_adapter(v, &names[n_adapters]))) goto done;
      n_adapters++;
    } else {
      rc = usage_error(usage_forward, "forward: unknown option '%s'", a);
      goto done;
    }
    i++;
  }
  if (!model || !module || !input || !output) {
    rc = usage_error(usage_forward, "forward: --model, --module, --input and --output are required%s", "");
    goto done;
  }

  /* the input first: a bad file should not cost a device start */
  oftawq_tensor_init(&x);
  if ((st = oftawq_safetensors_open(input, &in, why, sizeof why)) < 0) {
    fail("%s", why);
    goto done;
  }
  if (oftawq_safetensors_find(in, "x", &x) < 0) {
    fail("%s has no tensor 'x'", input);
    goto done;
  }
  if (x.dtype != OFTAWQ_T_F32 && x.dtype != OFTAWQ_T_F16) {
    fprintf(stderr, "oftawq: tensor 'x' of %s is %s; forward takes F32 or F16\n", input,
            oftawq_tensor_dtype_name(x.dtype));
    goto done;
  }
  if (x.ndim < 1) {
    fail("tensor 'x' of %s is a scalar; it needs a last dimension K", input);
    goto done;
  }
  dtype = x.dtype == OFTAWQ_T_F16 ? OFTAWQ_F16 : OFTAWQ_F32;
  for (k = 0; k + 1 < (size_t)x.ndim; k++) rows *= (size_t)x.shape[k];

  if (!cache_dir && oftawq_cache_dir_default(default_cache, sizeof default_cache) == OFTAWQ_OK) cache_dir = default_cache;
  oftawq_context_options_init(&opt);
  opt.device = device;
  opt.cache_dir = cache_dir;
  opt.log = log_to_stderr;
  if (oftawq_context_create(&opt, &ctx) != OFTAWQ_OK) goto done; /* the log said why */
  if (tty) fprintf(stderr, "oftawq: loading %s from %s ...", module, model);
  st = oftawq_layer_load(ctx, model, module, (const char *const *)dirs, names, (size_t)n_adapters, &layer);
  if (tty) fprintf(stderr, "\r\033[K");
  if (st < 0) {
    fail("%s", oftawq_context_last_error(ctx));
    goto done;
  }
  if (active) {
    char *tok, *save = NULL;
    if (!(active_copy = malloc(strlen(active) + 1))) goto done;
    strcpy(active_copy, active);
    for (tok = strtok_r(active_copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      if (!oftawq_layer_adapter(layer, tok)) {
        fail("--active names '%s', which is not one of the --adapter names", tok);
        goto done;
      }
      if (n_active == MAX_ADAPTERS) {
        fail("%s", "--active lists too many names");
        goto done;
      }
      active_list[n_active++] = tok;
    }
    oftawq_layer_set_active(layer, active_list, n_active);
  }
  if (disable) oftawq_layer_enable_adapters(layer, 0);

  oftawq_awq_get_shape(oftawq_layer_base(layer), &K, &N, NULL, NULL);
  if (x.shape[x.ndim - 1] != K) {
    fprintf(stderr, "oftawq: tensor 'x' of %s has last dimension %lld; module %s has in_features %d\n", input,
            (long long)x.shape[x.ndim - 1], module, K);
    goto done;
  }
  in_bytes = rows * (size_t)K * (dtype == OFTAWQ_F16 ? 2 : 4);
  if (in_bytes != x.nbytes || !(out = malloc(rows * (size_t)N * (dtype == OFTAWQ_F16 ? 2 : 4) + 1))) goto done;
  if ((st = oftawq_layer_forward(layer, dtype, x.data, out, rows)) < 0) {
    fail("%s", oftawq_context_last_error(ctx));
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
    fail("%s", why);
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

int main(int argc, char **argv)
{
  if (argc < 2) {
    fputs(usage_main, stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(usage_main, stdout);
    return EXIT_SUCCESS;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("oftawq %s\n", oftawq_version_string());
    return EXIT_SUCCESS;
  }
  if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 1, argv + 1);
  if (!strcmp(argv[1], "forward")) return cmd_forward(argc - 1, argv + 1);
  if (!strcmp(argv[1], "tune")) return cmd_tune(argc - 1, argv + 1);
  return usage_error(usage_main, "unknown command '%s'", argv[1]);
}
