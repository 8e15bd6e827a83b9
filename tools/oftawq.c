/* oftawq.c: the oftawq command-line tool; parses arguments and calls the public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int cmd_info(int argc, char **argv)
{
  int json = 0, i;
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
    printf(", \"program_binaries\": %llu, \"program_bytes\": %llu}\n}\n",
           (unsigned long long)summary.program_entries, (unsigned long long)summary.program_bytes);
  } else {
    printf("oftawq %s\n", oftawq_version_string());
    if (count == 0) printf("no OpenCL device found (%s)\n", oftawq_status_message(status));
    for (k = 0; k < count; k++) print_device_text(&devices[k]);
    printf("cache folder %s: %llu program binaries, %llu bytes\n", cache_dir ? cache_dir : "(none)",
           (unsigned long long)summary.program_entries, (unsigned long long)summary.program_bytes);
  }
  return EXIT_SUCCESS;
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
  return usage_error(usage_main, "unknown command '%s'", argv[1]);
}
