/* cmd_info.c: oftawq info - OpenCL platforms, devices and capabilities, and the cache folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_DEVICES 64

static const char usage_info[] =
  "usage: oftawq info [--json] [--cache-dir DIR]\n"
  "\n"
  "Lists every OpenCL platform and device with the capabilities oftawq uses,\n"
  "and the cache folder with what it holds.\n"
  "\n"
  "  --json           machine-readable output on stdout\n"
  "  --cache-dir DIR  the cache folder to report (default: $OFTAWQ_CACHE_DIR,\n"
  "                   $XDG_CACHE_HOME/oftawq or ~/.cache/oftawq)\n"
  "\n"
  "Exits with status 1, after the report, when no OpenCL device is found (the\n"
  "error line says why: no OpenCL library, which file it tried, no platform).\n";

static const char *device_type(const oftawq_device_info *d)
{
  return d->is_gpu ? "gpu" : d->is_cpu ? "cpu" : "other";
}

static void print_device_text(const oftawq_device_info *d)
{
  printf("device %u:%u  %s\n", d->platform_index, d->device_index, cli_esc(d->name));
  printf("  platform          %s (%s)\n", cli_esc(d->platform_name), cli_esc(d->platform_version));
  printf("  type, vendor      %s, %s\n", device_type(d), cli_esc(d->vendor));
  printf("  version, driver   %s, %s\n", cli_esc(d->version), cli_esc(d->driver_version));
  printf("  OpenCL C          %s\n", cli_esc(d->opencl_c_version));
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
  cli_json_string(stdout, d->platform_name);
  printf(", \"platform_version\": ");
  cli_json_string(stdout, d->platform_version);
  printf(", \"name\": ");
  cli_json_string(stdout, d->name);
  printf(", \"type\": \"%s\", \"vendor\": ", device_type(d));
  cli_json_string(stdout, d->vendor);
  printf(", \"version\": ");
  cli_json_string(stdout, d->version);
  printf(", \"driver_version\": ");
  cli_json_string(stdout, d->driver_version);
  printf(", \"opencl_c_version\": ");
  cli_json_string(stdout, d->opencl_c_version);
  printf(", \"fp16\": %s, \"subgroups\": %s, \"compute_units\": %u, \"max_work_group_size\": %zu, "
         "\"local_mem_size\": %llu, \"local_mem_dedicated\": %s, \"global_mem_size\": %llu, "
         "\"max_alloc_size\": %llu, \"unified_memory\": %s}",
         d->has_fp16 ? "true" : "false", d->has_subgroups ? "true" : "false", d->compute_units,
         d->max_work_group_size, (unsigned long long)d->local_mem_size, d->local_mem_is_local ? "true" : "false",
         (unsigned long long)d->global_mem_size, (unsigned long long)d->max_alloc_size,
         d->unified_memory ? "true" : "false");
}

/* Log callback that keeps the last error message (user: char[NO_DEVICE_WHY]). */
#define NO_DEVICE_WHY 512
static void keep_error(void *user, oftawq_log_level level, const char *message)
{
  if (level == OFTAWQ_LOG_ERROR) snprintf(user, NO_DEVICE_WHY, "%s", message);
}

/* Why there is no device: a context creation says it to its log callback. */
static void no_device_reason(char *why)
{
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  why[0] = '\0';
  oftawq_context_options_init(&opt);
  opt.log = keep_error;
  opt.log_user = why;
  if (oftawq_context_create(&opt, &ctx) == OFTAWQ_OK) oftawq_context_destroy(ctx);
}

static void print_tuned(void *user, const char *device, const char *entry)
{
  (void)user;
  printf("  tuned  %s  [%s]\n", cli_esc(entry), cli_esc(device));
}

static void print_tuned_json(void *user, const char *device, const char *entry)
{
  int *first = user;
  printf("%s{\"device\": ", *first ? "" : ", ");
  cli_json_string(stdout, device);
  printf(", \"entry\": ");
  cli_json_string(stdout, entry);
  printf("}");
  *first = 0;
}

int cmd_info(int argc, char **argv)
{
  int json = 0, i, first = 1;
  const char *cache_dir = NULL;
  char default_dir[4096], why[NO_DEVICE_WHY];
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
      if (++i >= argc) return cli_usage_error(usage_info, "%s", "--cache-dir needs a folder");
      cache_dir = argv[i];
    } else {
      return cli_usage_error(usage_info, "info: unknown option '%s'", argv[i]);
    }
  }
  if (!cache_dir && oftawq_cache_dir_default(default_dir, sizeof default_dir) == OFTAWQ_OK) cache_dir = default_dir;

  for (k = 0; k < MAX_DEVICES; k++) oftawq_device_info_init(&devices[k]);
  status = oftawq_device_list(NULL, devices, MAX_DEVICES, &count);
  if (status < 0 && status != OFTAWQ_E_NO_DEVICE) return cli_fail("listing OpenCL devices: %s", oftawq_status_message(status));
  if (count > MAX_DEVICES) count = MAX_DEVICES;
  if (count == 0) no_device_reason(why);
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
      cli_json_string(stdout, cache_dir);
    else
      printf("null");
    printf(", \"program_binaries\": %llu, \"program_bytes\": %llu, \"tuned\": [",
           (unsigned long long)summary.program_entries, (unsigned long long)summary.program_bytes);
    if (cache_dir) oftawq_cache_tuning(cache_dir, print_tuned_json, &first);
    printf("]}\n}\n");
  } else {
    printf("oftawq %s\n", oftawq_version_string());
    for (k = 0; k < count; k++) print_device_text(&devices[k]);
    printf("cache folder %s: %llu program binaries, %llu bytes, %llu tuned entries\n",
           cache_dir ? cli_esc(cache_dir) : "(none)", (unsigned long long)summary.program_entries,
           (unsigned long long)summary.program_bytes, (unsigned long long)summary.tuning_entries);
    if (cache_dir) oftawq_cache_tuning(cache_dir, print_tuned, NULL);
  }
  if (count == 0) {
    fflush(stdout);
    return cli_fail("no OpenCL device found: %s", why[0] ? why : oftawq_status_message(OFTAWQ_E_NO_DEVICE));
  }
  return EXIT_SUCCESS;
}
