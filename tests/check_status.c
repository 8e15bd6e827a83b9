/* check_status.c: status list, versions, option defaults, cache folder rules and helpers (no OpenCL needed). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"
#include "common/internal.h"
#include "oftawq.h"
#include "testutil.h"

START_TEST(every_status_has_name_and_message)
{
  int v, known = 0;
  for (v = OFTAWQ_STATUS_LAST_ - 3; v <= 3; v++) {
    const char *name = oftawq_status_name((oftawq_status)v);
    const char *msg = oftawq_status_message((oftawq_status)v);
    ck_assert_ptr_nonnull(name);
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_gt(strlen(msg), 0);
    if (v >= OFTAWQ_STATUS_LAST_ && v <= 1) {
      ck_assert_str_ne(name, "UNKNOWN");
      ck_assert_str_ne(msg, "unknown status");
      known++;
    } else {
      ck_assert_str_eq(name, "UNKNOWN");
      ck_assert_str_eq(msg, "unknown status");
    }
  }
  ck_assert_int_eq(known, 2 - OFTAWQ_STATUS_LAST_);
  ck_assert_str_eq(oftawq_status_name(OFTAWQ_OK), "OK");
  ck_assert_str_eq(oftawq_status_name(OFTAWQ_E_BUILD), "E_BUILD");
  ck_assert_int_gt(OFTAWQ_NOT_APPLICABLE, 0);
}
END_TEST

START_TEST(version_macros_match_runtime)
{
  char buf[32];
  ck_assert_uint_eq(oftawq_version(), OFTAWQ_VERSION_HEX);
  ck_assert_str_eq(oftawq_version_string(), OFTAWQ_VERSION_STRING);
  snprintf(buf, sizeof buf, "%d.%d.%d", OFTAWQ_VERSION_MAJOR, OFTAWQ_VERSION_MINOR, OFTAWQ_VERSION_PATCH);
  ck_assert_str_eq(buf, OFTAWQ_VERSION_STRING);
}
END_TEST

START_TEST(inits_fill_size_and_defaults)
{
  oftawq_context_options o;
  oftawq_device_info d;
  oftawq_context_stats s;
  oftawq_cache_summary c;
  memset(&o, 0xff, sizeof o);
  oftawq_context_options_init(&o);
  ck_assert_uint_eq(o.size, sizeof o);
  ck_assert_ptr_null(o.device);
  ck_assert_ptr_null(o.cache_dir);
  ck_assert_int_eq(o.profiling, 0);
  oftawq_device_info_init(&d);
  ck_assert_uint_eq(d.size, sizeof d);
  oftawq_context_stats_init(&s);
  ck_assert_uint_eq(s.size, sizeof s);
  oftawq_cache_summary_init(&c);
  ck_assert_uint_eq(c.size, sizeof c);
  /* NULL is accepted everywhere a struct is initialised or a handle destroyed. */
  oftawq_context_options_init(NULL);
  oftawq_device_info_init(NULL);
  oftawq_context_destroy(NULL);
  ck_assert_str_eq(oftawq_context_last_error(NULL), "");
}
END_TEST

START_TEST(null_arguments_are_rejected)
{
  oftawq_device_info d;
  oftawq_context_stats s;
  ck_assert_int_eq(oftawq_context_create(NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_device_list(NULL, NULL, 1, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_device_info_init(&d);
  ck_assert_int_eq(oftawq_context_device_info(NULL, &d), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_context_stats_init(&s);
  ck_assert_int_eq(oftawq_context_get_stats(NULL, &s), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_cache_summarize(NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_cache_dir_default(NULL, 10), OFTAWQ_E_INVALID_ARGUMENT);
}
END_TEST

START_TEST(options_from_a_bad_size_are_refused)
{
  oftawq_context_options o;
  oftawq_context *ctx = (oftawq_context *)&o;
  oftawq_context_options_init(&o);
  o.size = 3;
  ck_assert_int_eq(oftawq_context_create(&o, &ctx), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(ctx);
}
END_TEST

START_TEST(cache_dir_default_order)
{
  char buf[256];
  setenv("OFTAWQ_CACHE_DIR", "/a/b", 1);
  setenv("XDG_CACHE_HOME", "/x", 1);
  setenv("HOME", "/h", 1);
  ck_assert_int_eq(oftawq_cache_dir_default(buf, sizeof buf), OFTAWQ_OK);
  ck_assert_str_eq(buf, "/a/b");
  unsetenv("OFTAWQ_CACHE_DIR");
  ck_assert_int_eq(oftawq_cache_dir_default(buf, sizeof buf), OFTAWQ_OK);
  ck_assert_str_eq(buf, "/x/oftawq");
  setenv("XDG_CACHE_HOME", "", 1);
  ck_assert_int_eq(oftawq_cache_dir_default(buf, sizeof buf), OFTAWQ_OK);
  ck_assert_str_eq(buf, "/h/.cache/oftawq");
  ck_assert_int_eq(oftawq_cache_dir_default(buf, 5), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_str_eq(buf, "");
  unsetenv("HOME");
  unsetenv("XDG_CACHE_HOME");
  ck_assert_int_eq(oftawq_cache_dir_default(buf, sizeof buf), OFTAWQ_E_NOT_FOUND);
}
END_TEST

START_TEST(cache_summary_of_missing_folder_is_empty)
{
  oftawq_cache_summary c;
  oftawq_cache_summary_init(&c);
  ck_assert_int_eq(oftawq_cache_summarize("/nonexistent/oftawq-test", &c), OFTAWQ_OK);
  ck_assert_uint_eq(c.program_entries, 0);
}
END_TEST

static oftawq_device_info fake_device(unsigned p, unsigned d, const char *name, int gpu)
{
  oftawq_device_info i;
  oftawq_device_info_init(&i);
  i.platform_index = p;
  i.device_index = d;
  snprintf(i.name, sizeof i.name, "%s", name);
  i.is_gpu = gpu;
  i.is_cpu = !gpu;
  return i;
}

START_TEST(selector_forms)
{
  oftawq__selector s;
  oftawq_device_info cpu = fake_device(0, 0, "pthread-haswell-AMD EPYC", 0);
  oftawq_device_info gpu = fake_device(1, 2, "QUALCOMM Adreno(TM) 740", 1);

  oftawq__selector_parse(NULL, &s);
  ck_assert_int_eq(s.kind, OFTAWQ__SELECT_DEFAULT);
  ck_assert(oftawq__selector_matches(&s, &cpu));
  oftawq__selector_parse("cpu", &s);
  ck_assert(oftawq__selector_matches(&s, &cpu));
  ck_assert(!oftawq__selector_matches(&s, &gpu));
  oftawq__selector_parse("GPU", &s);
  ck_assert(!oftawq__selector_matches(&s, &cpu));
  ck_assert(oftawq__selector_matches(&s, &gpu));
  oftawq__selector_parse("1:2", &s);
  ck_assert_int_eq(s.kind, OFTAWQ__SELECT_INDEX);
  ck_assert(oftawq__selector_matches(&s, &gpu));
  ck_assert(!oftawq__selector_matches(&s, &cpu));
  oftawq__selector_parse("1:2x", &s); /* not an index: a name that matches nothing */
  ck_assert_int_eq(s.kind, OFTAWQ__SELECT_NAME);
  ck_assert(!oftawq__selector_matches(&s, &gpu));
  oftawq__selector_parse("adreno", &s);
  ck_assert(oftawq__selector_matches(&s, &gpu));
  ck_assert(!oftawq__selector_matches(&s, &cpu));
  oftawq__selector_parse("Mali", &s);
  ck_assert(!oftawq__selector_matches(&s, &gpu));
}
END_TEST

START_TEST(size_products_detect_overflow)
{
  size_t out = 7;
  ck_assert(oftawq__mul_size(3, 5, &out));
  ck_assert_uint_eq(out, 15);
  ck_assert(!oftawq__mul_size(SIZE_MAX / 2, 3, &out));
  ck_assert(oftawq__mul_size(0, SIZE_MAX, &out));
  ck_assert_uint_eq(out, 0);
}
END_TEST

START_TEST(fnv_hash_known_values)
{
  /* Published FNV-1a 64 test vectors. */
  ck_assert_uint_eq(oftawq__fnv1a(OFTAWQ__FNV_OFFSET, "", 0), 0xcbf29ce484222325ull);
  ck_assert_uint_eq(oftawq__fnv1a(OFTAWQ__FNV_OFFSET, "a", 1), 0xaf63dc4c8601ec8cull);
  ck_assert_uint_eq(oftawq__fnv1a(OFTAWQ__FNV_OFFSET, "foobar", 6), 0x85944171f73967e8ull);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("status");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, every_status_has_name_and_message);
  tcase_add_test(tc, version_macros_match_runtime);
  tcase_add_test(tc, inits_fill_size_and_defaults);
  tcase_add_test(tc, null_arguments_are_rejected);
  tcase_add_test(tc, options_from_a_bad_size_are_refused);
  tcase_add_test(tc, cache_dir_default_order);
  tcase_add_test(tc, cache_summary_of_missing_folder_is_empty);
  tcase_add_test(tc, selector_forms);
  tcase_add_test(tc, size_products_detect_overflow);
  tcase_add_test(tc, fnv_hash_known_values);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
