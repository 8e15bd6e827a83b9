/* check_runtime.c: devices, contexts, program builds and the binary cache on the OpenCL test device (PoCL in CI).
 * OpenCL is touched only inside tests, which Check runs in forked children (SPEC 2). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cache.h"
#include "runtime/kernels.h"
#include "runtime/program.h"
#include "testutil.h"

#define TEST_FAMILY "oft_rotate"
#define TEST_OPTIONS "-DOFT_BLOCK=4 -DOFT_VEC=4"

static oftawq_context_stats stats_of(const oftawq_context *ctx)
{
  oftawq_context_stats s;
  oftawq_context_stats_init(&s);
  ck_assert_int_eq(oftawq_context_get_stats(ctx, &s), OFTAWQ_OK);
  return s;
}

static cl_program build(oftawq_context *ctx, const char *options)
{
  cl_program p = NULL;
  oftawq_status st = oftawq__program_get(ctx, TEST_FAMILY, options, &p);
  ck_assert_msg(st == OFTAWQ_OK, "build: %s: %s", oftawq_status_name(st), oftawq_context_last_error(ctx));
  ck_assert_ptr_nonnull(p);
  return p;
}

/* The one entry file in a cache folder. */
static char *only_entry(const char *dir)
{
  char cmd[4200], *path = malloc(4096);
  FILE *p;
  snprintf(cmd, sizeof cmd, "ls %s/prog-*.bin", dir);
  p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_nonnull(fgets(path, 4096, p));
  pclose(p);
  path[strcspn(path, "\n")] = '\0';
  return path;
}

START_TEST(embedded_sources_equal_files)
{
  const oftawq__kernel_source *k;
  int n = 0;
  for (k = oftawq__kernel_sources; k->name; k++, n++) {
    char rel[256];
    size_t len = 0;
    char *path, *text;
    snprintf(rel, sizeof rel, "cl/%s.cl", k->name);
    path = tu_srcpath(rel);
    text = tu_read_file(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    ck_assert_uint_eq(len, k->length);
    ck_assert_int_eq(memcmp(text, k->source, len), 0);
    ck_assert_int_eq(k->source[len], '\0');
    ck_assert_ptr_eq(oftawq__kernel_source_find(k->name), k);
    free(text);
    free(path);
  }
  ck_assert_int_gt(n, 0);
  ck_assert_ptr_null(oftawq__kernel_source_find("no_such_kernel"));
}
END_TEST

START_TEST(device_selection_forms)
{
  oftawq_device_info devs[8], info;
  size_t n = 0;
  oftawq_context_options o;
  oftawq_context *ctx = NULL;
  tu_log log;
  char sel[64], sub[32];

  memset(&log, 0, sizeof log);
  for (n = 0; n < 8; n++) oftawq_device_info_init(&devs[n]);
  ck_assert_int_eq(oftawq_device_list(NULL, devs, 8, &n), OFTAWQ_OK);
  ck_assert_uint_ge(n, 1);
  oftawq_context_options_init(&o);
  o.log = tu_log_fn;
  o.log_user = &log;
  oftawq_device_info_init(&info);

  /* P:D of the first listed device */
  snprintf(sel, sizeof sel, "%u:%u", devs[0].platform_index, devs[0].device_index);
  o.device = sel;
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_context_device_info(ctx, &info), OFTAWQ_OK);
  ck_assert_str_eq(info.name, devs[0].name);
  ck_assert_int_ge(info.opencl_c_major * 10 + info.opencl_c_minor, 12);
  oftawq_context_destroy(ctx);

  /* a case-changed substring of its name */
  snprintf(sub, sizeof sub, "%.6s", devs[0].name + (strlen(devs[0].name) > 8 ? 2 : 0));
  for (char *c = sub; *c; c++) *c = (char)((*c >= 'a' && *c <= 'z') ? *c - 32 : *c);
  o.device = sub;
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  oftawq_context_destroy(ctx);

  /* its type */
  o.device = devs[0].is_gpu ? "gpu" : "cpu";
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  oftawq_context_destroy(ctx);

  /* nothing matches: no device, a message through the log, no context */
  o.device = "no-such-device-xyz";
  ctx = (oftawq_context *)&o;
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_E_NO_DEVICE);
  ck_assert_ptr_null(ctx);
  ck_assert_int_eq(log.errors, 1);
  ck_assert_ptr_nonnull(strstr(log.last, "no-such-device-xyz"));
  o.device = "7:7";
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_E_NO_DEVICE);

  /* OFTAWQ_DEVICE applies when no selector is given */
  o.device = NULL;
  setenv("OFTAWQ_DEVICE", "no-such-device-xyz", 1);
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_E_NO_DEVICE);
  setenv("OFTAWQ_DEVICE", sel, 1);
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  oftawq_context_destroy(ctx);
  unsetenv("OFTAWQ_DEVICE");
}
END_TEST

START_TEST(no_platform_gives_no_device)
{
  char *empty = tu_tempdir("icd");
  oftawq_context *ctx = NULL;
  oftawq_device_info d;
  size_t n = 5;
  setenv("OCL_ICD_VENDORS", empty, 1);
  unsetenv("OCL_ICD_FILENAMES");
  oftawq_device_info_init(&d);
  ck_assert_int_eq(oftawq_device_list(NULL, &d, 1, &n), OFTAWQ_E_NO_DEVICE);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(oftawq_context_create(NULL, &ctx), OFTAWQ_E_NO_DEVICE);
  ck_assert_ptr_null(ctx);
  tu_rmdir(empty);
  free(empty);
}
END_TEST

START_TEST(broken_kernel_reports_build_log)
{
  static const char broken[] = "__kernel void k(__global float *x) { x[0] = undeclared_name_42; }\n";
  oftawq_context *ctx = tu_context(NULL);
  cl_program p = (cl_program)1;
  oftawq_status st = oftawq__program_from_source(ctx, "broken", broken, sizeof broken - 1, "", &p);
  ck_assert_int_eq(st, OFTAWQ_E_BUILD);
  ck_assert_ptr_null(p);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "broken"));
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "build log"));
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "undeclared_name_42"));
  ck_assert_int_eq(oftawq_context_last_cl_error(ctx), CL_BUILD_PROGRAM_FAILURE);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(source_override_folder_is_used)
{
  char *dir = tu_tempdir("cldir"), path[4200];
  FILE *f;
  oftawq_context *ctx = tu_context(NULL);
  cl_program p;
  snprintf(path, sizeof path, "%s/%s.cl", dir, TEST_FAMILY);
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("#error \"override_marker_17\"\n", f);
  fclose(f);
  setenv(OFTAWQ_CL_DIR_ENV, dir, 1);
  ck_assert_int_eq(oftawq__program_get(ctx, TEST_FAMILY, TEST_OPTIONS, &p), OFTAWQ_E_BUILD);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "override_marker_17"));
  unsetenv(OFTAWQ_CL_DIR_ENV);
  build(ctx, TEST_OPTIONS);
  ck_assert_int_eq(oftawq__program_get(ctx, "no_such_family", "", &p), OFTAWQ_E_INTERNAL);
  oftawq_context_destroy(ctx);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(memory_cache_hit_in_one_context)
{
  oftawq_context *ctx = tu_context(NULL);
  cl_program a = build(ctx, TEST_OPTIONS), b = build(ctx, TEST_OPTIONS), c;
  oftawq_context_stats s = stats_of(ctx);
  ck_assert_ptr_eq(a, b);
  ck_assert_uint_eq(s.programs_from_source, 1);
  ck_assert_uint_eq(s.programs_from_memory, 1);
  ck_assert_uint_eq(s.binaries_written, 0); /* memory only */
  c = build(ctx, "-DOFT_BLOCK=8 -DOFT_VEC=4");
  ck_assert_ptr_ne(a, c);
  ck_assert_uint_eq(stats_of(ctx).programs_from_source, 2);
  ck_assert_ptr_null(oftawq_context_cache_dir(ctx));
  oftawq_context_destroy(ctx);
}
END_TEST

/* Builds once into a fresh cache folder and returns that folder. */
static char *warm_cache(void)
{
  char *dir = tu_tempdir("bincache");
  oftawq_context *ctx = tu_context(dir);
  oftawq_context_stats s;
  build(ctx, TEST_OPTIONS);
  s = stats_of(ctx);
  ck_assert_uint_eq(s.programs_from_source, 1);
  ck_assert_uint_eq(s.binaries_written, 1);
  ck_assert_str_eq(oftawq_context_cache_dir(ctx), dir);
  oftawq_context_destroy(ctx);
  return dir;
}

START_TEST(binary_cache_miss_then_hit)
{
  char *dir = warm_cache();
  oftawq_context *ctx = tu_context(dir);
  oftawq_cache_summary sum;
  oftawq_context_stats s;
  build(ctx, TEST_OPTIONS);
  s = stats_of(ctx);
  ck_assert_uint_eq(s.programs_from_binary, 1);
  ck_assert_uint_eq(s.programs_from_source, 0);
  ck_assert_uint_eq(s.binaries_rejected, 0);
  oftawq_context_destroy(ctx);
  oftawq_cache_summary_init(&sum);
  ck_assert_int_eq(oftawq_cache_summarize(dir, &sum), OFTAWQ_OK);
  ck_assert_uint_eq(sum.program_entries, 1);
  ck_assert_uint_gt(sum.program_bytes, 100);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

/* Damages the single cache entry with `damage`, then checks a new context
 * rejects it, rebuilds from source and rewrites a good entry. */
static void check_damaged_entry_is_rebuilt(void (*damage)(const char *path))
{
  char *dir = warm_cache(), *entry = only_entry(dir);
  oftawq_context *ctx;
  oftawq_context_stats s;
  damage(entry);
  ctx = tu_context(dir);
  build(ctx, TEST_OPTIONS);
  s = stats_of(ctx);
  ck_assert_uint_eq(s.binaries_rejected, 1);
  ck_assert_uint_eq(s.programs_from_source, 1);
  ck_assert_uint_eq(s.binaries_written, 1);
  oftawq_context_destroy(ctx);
  ctx = tu_context(dir); /* the rewritten entry is good again */
  build(ctx, TEST_OPTIONS);
  ck_assert_uint_eq(stats_of(ctx).programs_from_binary, 1);
  oftawq_context_destroy(ctx);
  tu_rmdir(dir);
  free(dir);
  free(entry);
}

static void flip_a_byte(const char *path)
{
  size_t len = 0;
  char *data = tu_read_file(path, &len);
  FILE *f;
  ck_assert_ptr_nonnull(data);
  data[len - len / 3] ^= 0x5a; /* inside the binary payload */
  f = fopen(path, "wb");
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  fclose(f);
  free(data);
}

static void truncate_entry(const char *path)
{
  size_t len = 0;
  char *data = tu_read_file(path, &len);
  FILE *f;
  ck_assert_ptr_nonnull(data);
  f = fopen(path, "wb");
  ck_assert_uint_eq(fwrite(data, 1, len / 2, f), len / 2);
  fclose(f);
  free(data);
}

static void replace_with_foreign_entry(const char *path)
{
  /* A valid entry written for another key, put under this key's file name. */
  static const unsigned char payload[] = "not a program";
  char *dir = strdup(path), *slash = strrchr(dir, '/');
  oftawq_context fake;
  char *other;
  *slash = '\0';
  memset(&fake, 0, sizeof fake);
  fake.cache_dir = dir;
  oftawq__bincache_store(&fake, "another key", payload, sizeof payload);
  other = only_entry(dir); /* ls sorts; pick whichever is not ours */
  if (!strcmp(other, path)) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "for f in %s/prog-*.bin; do [ \"$f\" != '%s' ] && mv \"$f\" '%s'; done", dir, path,
             path);
    ck_assert_int_eq(system(cmd), 0);
  } else {
    ck_assert_int_eq(rename(other, path), 0);
  }
  free(other);
  free(dir);
}

START_TEST(flipped_byte_is_rebuilt) { check_damaged_entry_is_rebuilt(flip_a_byte); }
END_TEST

START_TEST(truncated_entry_is_rebuilt) { check_damaged_entry_is_rebuilt(truncate_entry); }
END_TEST

START_TEST(foreign_entry_is_rebuilt) { check_damaged_entry_is_rebuilt(replace_with_foreign_entry); }
END_TEST

START_TEST(unwritable_cache_falls_back_to_memory)
{
  char *dir = tu_tempdir("blocked"), blocked[4200];
  FILE *f;
  tu_log log;
  oftawq_context_options o;
  oftawq_context *ctx = NULL;
  /* A cache folder below a regular file can never be created, even by root. */
  snprintf(blocked, sizeof blocked, "%s/file", dir);
  f = fopen(blocked, "w");
  fclose(f);
  strcat(blocked, "/cache");
  memset(&log, 0, sizeof log);
  oftawq_context_options_init(&o);
  o.cache_dir = blocked;
  o.log = tu_log_fn;
  o.log_user = &log;
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  ck_assert_ptr_null(oftawq_context_cache_dir(ctx));
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_ptr_nonnull(strstr(log.last, "memory"));
  build(ctx, TEST_OPTIONS);
  ck_assert_uint_eq(stats_of(ctx).programs_from_source, 1);
  oftawq_context_destroy(ctx);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(wrapping_caller_objects)
{
  oftawq_context *own = tu_context(NULL), *wrapped = NULL;
  cl_context c;
  cl_command_queue q;
  cl_device_id d;
  oftawq_device_info a, b;
  ck_assert_int_eq(oftawq_context_get_cl(own, &c, &q, &d), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_context_create_from_cl(NULL, NULL, q, &wrapped), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(wrapped);
  ck_assert_int_eq(oftawq_context_create_from_cl(NULL, c, q, &wrapped), OFTAWQ_OK);
  oftawq_device_info_init(&a);
  oftawq_device_info_init(&b);
  oftawq_context_device_info(own, &a);
  oftawq_context_device_info(wrapped, &b);
  ck_assert_str_eq(a.name, b.name);
  oftawq_context_destroy(own); /* the wrapper retained the objects */
  build(wrapped, TEST_OPTIONS);
  oftawq_context_destroy(wrapped);
}
END_TEST

START_TEST(profiling_queue_on_request)
{
  oftawq_context_options o;
  oftawq_context *ctx = NULL;
  cl_command_queue q;
  cl_command_queue_properties props = 0;
  oftawq_context_options_init(&o);
  o.profiling = 1;
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_OK);
  oftawq_context_get_cl(ctx, NULL, &q, NULL);
  clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
  ck_assert(props & CL_QUEUE_PROFILING_ENABLE);
  oftawq_context_destroy(ctx);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("runtime");
  TCase *tc = tcase_create("opencl");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, embedded_sources_equal_files);
  tcase_add_test(tc, device_selection_forms);
  tcase_add_test(tc, no_platform_gives_no_device);
  tcase_add_test(tc, broken_kernel_reports_build_log);
  tcase_add_test(tc, source_override_folder_is_used);
  tcase_add_test(tc, memory_cache_hit_in_one_context);
  tcase_add_test(tc, binary_cache_miss_then_hit);
  tcase_add_test(tc, flipped_byte_is_rebuilt);
  tcase_add_test(tc, truncated_entry_is_rebuilt);
  tcase_add_test(tc, foreign_entry_is_rebuilt);
  tcase_add_test(tc, unwritable_cache_falls_back_to_memory);
  tcase_add_test(tc, wrapping_caller_objects);
  tcase_add_test(tc, profiling_queue_on_request);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
