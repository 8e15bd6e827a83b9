/* check_api.c: every public function of oftawq.h and oftawq_cl.h called wrongly - NULLs, older (smaller) struct
 * sizes, out-of-range values - answers with a status (or its documented value) and a defined output, and never
 * crashes, reads or writes out of bounds or leaks (this suite runs under ASan + UBSan in CI). Functions added by
 * other parts of the project carry such tests too; a function missing here is a gap. */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oftawq.h"
#include "oftawq_cl.h"
#include "testutil.h"

#define WHY 512
/* A status that is one of the list's errors (not OK, not a made-up value). */
#define ck_assert_error(expr)                                                      \
  do {                                                                             \
    oftawq_status st_ = (expr);                                                    \
    ck_assert_msg(st_ < 0 && strcmp(oftawq_status_name(st_), "UNKNOWN") != 0,      \
                  "%s gave %d (%s), expected an error", #expr, st_, oftawq_status_name(st_)); \
  } while (0)
#define ck_assert_invalid(expr) ck_assert_int_eq((expr), OFTAWQ_E_INVALID_ARGUMENT)

/* An older caller's struct: only the fields up to `field` (its size field says so). */
#define OLDER(type, field) offsetof(type, field)

enum { K = 64, N = 32, G = 32, B = 16, N_EL = B * (B - 1) / 2, ROWS_W = K / B };

/* A small valid AWQ layer (K x N, group G). */
typedef struct layer_data {
  int32_t qweight[K * N / 8], qzeros[K / G * N / 8];
  uint16_t scales[K / G * N], bias[N];
  float w[ROWS_W * N_EL];
} layer_data;

static void make_layer_data(layer_data *d, oftawq_awq_tensors *t)
{
  tu_rng r;
  size_t i;
  tu_rng_seed(&r, 14);
  for (i = 0; i < sizeof d->qweight / sizeof d->qweight[0]; i++) d->qweight[i] = (int32_t)tu_rng_u32(&r);
  for (i = 0; i < sizeof d->qzeros / sizeof d->qzeros[0]; i++) d->qzeros[i] = (int32_t)tu_rng_u32(&r);
  for (i = 0; i < sizeof d->scales / sizeof d->scales[0]; i++) d->scales[i] = 0x2000; /* 2^-7 */
  for (i = 0; i < N; i++) d->bias[i] = 0x3c00;
  tu_fill_random(d->w, sizeof d->w / sizeof d->w[0], 0.01f, 3);
  oftawq_awq_tensors_init(t);
  t->K = K;
  t->N = N;
  t->G = G;
  t->qweight = d->qweight;
  t->qzeros = d->qzeros;
  t->scales = d->scales;
  t->bias = d->bias;
}

static void oft_config(oftawq_oft_config *c)
{
  oftawq_oft_config_init(c);
  c->oft_block_size = B;
}

/* ------------------------------------------------------------------ no device */

START_TEST(status_version_and_escape)
{
  int result = 42;
  char buf[8];
  ck_assert_str_eq(oftawq_status_name((oftawq_status)12345), "UNKNOWN");
  ck_assert_str_eq(oftawq_status_name((oftawq_status)-12345), "UNKNOWN");
  ck_assert_str_eq(oftawq_status_message((oftawq_status)12345), "unknown status");
  ck_assert_str_eq(oftawq_status_name(OFTAWQ_E_INTERNAL), "E_INTERNAL");
  ck_assert_uint_eq(oftawq_version(), OFTAWQ_VERSION_HEX);
  ck_assert_str_eq(oftawq_version_string(), OFTAWQ_VERSION_STRING);
  ck_assert_invalid(oftawq_version_compare(NULL, "1.0", &result));
  ck_assert_invalid(oftawq_version_compare("1.0", NULL, &result));
  ck_assert_invalid(oftawq_version_compare("1.0", "1.0", NULL));
  ck_assert_invalid(oftawq_version_compare("1.0", "not a version", &result));
  ck_assert_invalid(oftawq_version_compare("", "1.0", &result));
  ck_assert_int_eq(result, 42); /* untouched on error */
  ck_assert_invalid(oftawq_escape(NULL, buf, sizeof buf, NULL));
  ck_assert_invalid(oftawq_escape("x", NULL, 1, NULL));
}
END_TEST

START_TEST(init_functions_accept_null)
{
  oftawq_device_info_init(NULL);
  oftawq_context_options_init(NULL);
  oftawq_context_stats_init(NULL);
  oftawq_cache_summary_init(NULL);
  oftawq_oft_config_init(NULL);
  oftawq_oft_shape_init(NULL);
  oftawq_awq_tensors_init(NULL);
  oftawq_target_init(NULL);
  oftawq_bench_options_init(NULL);
  oftawq_tensor_init(NULL);
  oftawq_tune_options_init(NULL);
  oftawq_tune_report_init(NULL);
  oftawq_kernel_params_init(NULL);
  oftawq_model_options_init(NULL);
  oftawq_model_module_init(NULL);
  oftawq_model_outcome_init(NULL);
  oftawq_model_stats_init(NULL);
  oftawq_optimizer_options_init(NULL);
  oftawq_adapter_module_init(NULL);
  oftawq_adapter_save_options_init(NULL);
  /* destroy / close functions too */
  oftawq_context_destroy(NULL);
  oftawq_oft_destroy(NULL);
  oftawq_awq_destroy(NULL);
  oftawq_layer_destroy(NULL);
  oftawq_safetensors_close(NULL);
  oftawq_model_file_close(NULL);
  oftawq_adapter_close(NULL);
  oftawq_model_destroy(NULL);
  oftawq_optimizer_destroy(NULL);
}
END_TEST

START_TEST(cache_folder_functions)
{
  char buf[4096], tiny[4] = "xyz";
  oftawq_cache_summary s;
  char *dir = tu_tempdir("api-cache");
  ck_assert_invalid(oftawq_cache_dir_default(NULL, 10));
  ck_assert_invalid(oftawq_cache_dir_default(buf, 0));
  setenv("OFTAWQ_CACHE_DIR", "/a/folder/longer/than/four", 1);
  ck_assert_invalid(oftawq_cache_dir_default(tiny, sizeof tiny));
  ck_assert_str_eq(tiny, "");
  unsetenv("OFTAWQ_CACHE_DIR");
  oftawq_cache_summary_init(&s);
  ck_assert_invalid(oftawq_cache_summarize(NULL, &s));
  ck_assert_invalid(oftawq_cache_summarize(dir, NULL));
  s.size = OLDER(oftawq_cache_summary, tuning_entries);
  ck_assert_invalid(oftawq_cache_summarize(dir, &s));
  oftawq_cache_summary_init(&s);
  ck_assert_int_eq(oftawq_cache_summarize("/no/such/folder", &s), OFTAWQ_OK);
  ck_assert_uint_eq(s.program_entries, 0);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

static void tuned_entry(void *user, const char *device, const char *entry)
{
  (void)user;
  (void)device;
  (void)entry;
}

START_TEST(oft_resolve_ranges)
{
  oftawq_oft_config c;
  oftawq_oft_shape s;
  char why[WHY];
  oft_config(&c);
  oftawq_oft_shape_init(&s);
  ck_assert_invalid(oftawq_oft_resolve(NULL, K, NULL, NULL, &s, why, sizeof why));
  ck_assert_invalid(oftawq_oft_resolve(&c, K, NULL, NULL, NULL, why, sizeof why));
  ck_assert_invalid(oftawq_oft_resolve(&c, 0, NULL, NULL, &s, why, sizeof why));
  ck_assert_invalid(oftawq_oft_resolve(&c, -64, NULL, NULL, &s, NULL, 0));
  c.size = OLDER(oftawq_oft_config, seed);
  ck_assert_invalid(oftawq_oft_resolve(&c, K, NULL, NULL, &s, why, sizeof why));
  oft_config(&c);
  s.size = OLDER(oftawq_oft_shape, legacy_neumann);
  ck_assert_invalid(oftawq_oft_resolve(&c, K, NULL, NULL, &s, why, sizeof why));
  oftawq_oft_shape_init(&s);
  c.oft_block_size = -1;
  ck_assert_invalid(oftawq_oft_resolve(&c, K, NULL, NULL, &s, why, sizeof why));
  c.oft_block_size = 0;
  c.r = -4;
  ck_assert_invalid(oftawq_oft_resolve(&c, K, NULL, NULL, &s, why, sizeof why));
  oft_config(&c);
  c.oft_block_size = 1000000000;
  ck_assert_error(oftawq_oft_resolve(&c, 1000000000, NULL, NULL, &s, why, sizeof why));
  oft_config(&c);
  c.num_cayley_neumann_terms = 2147483647;
  ck_assert_error(oftawq_oft_resolve(&c, K, NULL, NULL, &s, why, sizeof why));
  oft_config(&c);
  c.coft = 1;
  c.eps = NAN;
  ck_assert_error(oftawq_oft_resolve(&c, K, NULL, NULL, &s, why, sizeof why));
  oft_config(&c);
  c.peft_version = "not a version";
  ck_assert_invalid(oftawq_oft_resolve(&c, K, NULL, NULL, &s, why, sizeof why));
  oft_config(&c);
  ck_assert_int_eq(oftawq_oft_resolve(&c, K, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
}
END_TEST

/* The file functions need no device. */
START_TEST(safetensors_functions)
{
  char *good = tu_srcpath("tests/corpus/good/x.safetensors"), *dir = tu_tempdir("api-st"), path[4200], why[WHY];
  oftawq_safetensors *st = (oftawq_safetensors *)1;
  oftawq_tensor t;
  ck_assert_str_eq(oftawq_tensor_dtype_name((oftawq_tensor_dtype)99), "?");
  ck_assert_str_eq(oftawq_tensor_dtype_name((oftawq_tensor_dtype)-1), "?");
  ck_assert_invalid(oftawq_safetensors_open(NULL, &st, why, sizeof why));
  ck_assert_ptr_null(st);
  ck_assert_invalid(oftawq_safetensors_open(good, NULL, why, sizeof why));
  ck_assert_int_eq(oftawq_safetensors_open(good, &st, NULL, 0), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_safetensors_count(NULL), 0);
  oftawq_tensor_init(&t);
  ck_assert_invalid(oftawq_safetensors_get(NULL, 0, &t));
  ck_assert_invalid(oftawq_safetensors_get(st, 0, NULL));
  ck_assert_invalid(oftawq_safetensors_get(st, (size_t)-1, &t));
  ck_assert_invalid(oftawq_safetensors_get(st, oftawq_safetensors_count(st), &t));
  ck_assert_invalid(oftawq_safetensors_find(NULL, "x", &t));
  ck_assert_invalid(oftawq_safetensors_find(st, NULL, &t));
  ck_assert_invalid(oftawq_safetensors_find(st, "x", NULL));
  t.size = OLDER(oftawq_tensor, nbytes);
  ck_assert_invalid(oftawq_safetensors_get(st, 0, &t));
  ck_assert_invalid(oftawq_safetensors_find(st, "x", &t));
  ck_assert_ptr_null(oftawq_safetensors_metadata(NULL, "format"));
  ck_assert_ptr_null(oftawq_safetensors_metadata(st, NULL));
  oftawq_safetensors_close(st);
  snprintf(path, sizeof path, "%s/out.safetensors", dir);
  ck_assert_invalid(oftawq_safetensors_write(NULL, &t, 1, why, sizeof why));
  ck_assert_invalid(oftawq_safetensors_write(path, NULL, 1, why, sizeof why));
  oftawq_tensor_init(&t);
  t.name = "a";
  t.dtype = (oftawq_tensor_dtype)99;
  ck_assert_invalid(oftawq_safetensors_write(path, &t, 1, why, sizeof why));
  t.dtype = OFTAWQ_T_F32;
  t.ndim = 1;
  t.shape[0] = -1;
  ck_assert_invalid(oftawq_safetensors_write(path, &t, 1, why, sizeof why));
  t.shape[0] = 2;
  t.nbytes = 8; /* data NULL with bytes */
  ck_assert_invalid(oftawq_safetensors_write(path, &t, 1, why, sizeof why));
  t.name = NULL;
  ck_assert_invalid(oftawq_safetensors_write(path, &t, 1, why, sizeof why));
  ck_assert_int_eq(oftawq_safetensors_write(path, NULL, 0, why, sizeof why), OFTAWQ_OK); /* metadata only */
  ck_assert_int_eq(oftawq_safetensors_open(path, &st, why, sizeof why), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_safetensors_count(st), 0);
  oftawq_safetensors_close(st);
  remove(path);
  tu_rmdir(dir);
  free(dir);
  free(good);
}
END_TEST

START_TEST(model_and_adapter_file_functions)
{
  char *model = tu_srcpath("tests/corpus/good/model"), *adapter = tu_srcpath("tests/corpus/good/adapter"), why[WHY];
  oftawq_model_file *m = (oftawq_model_file *)1;
  oftawq_adapter_file *a = (oftawq_adapter_file *)1;
  oftawq_awq_tensors t;
  oftawq_oft_config c;
  const float *w = (const float *)1;
  size_t rows = 7, cols = 7;
  ck_assert_invalid(oftawq_model_file_open(NULL, &m, why, sizeof why));
  ck_assert_ptr_null(m);
  ck_assert_invalid(oftawq_model_file_open(model, NULL, why, sizeof why));
  ck_assert_int_eq(oftawq_model_file_group_size(NULL), 0);
  ck_assert_uint_eq(oftawq_model_file_module_count(NULL), 0);
  ck_assert_ptr_null(oftawq_model_file_module_name(NULL, 0));
  ck_assert_int_eq(oftawq_model_file_open(model, &m, why, sizeof why), OFTAWQ_OK);
  ck_assert_ptr_null(oftawq_model_file_module_name(m, oftawq_model_file_module_count(m)));
  ck_assert_ptr_null(oftawq_model_file_module_name(m, (size_t)-1));
  oftawq_awq_tensors_init(&t);
  ck_assert_invalid(oftawq_model_file_module(NULL, "model.layers.0.mlp.up_proj", &t, why, sizeof why));
  ck_assert_invalid(oftawq_model_file_module(m, NULL, &t, why, sizeof why));
  ck_assert_invalid(oftawq_model_file_module(m, "model.layers.0.mlp.up_proj", NULL, why, sizeof why));
  t.size = OLDER(oftawq_awq_tensors, bias);
  ck_assert_invalid(oftawq_model_file_module(m, "model.layers.0.mlp.up_proj", &t, why, sizeof why));
  oftawq_model_file_close(m);

  ck_assert_invalid(oftawq_adapter_open(NULL, &a, why, sizeof why));
  ck_assert_ptr_null(a);
  ck_assert_invalid(oftawq_adapter_open(adapter, NULL, why, sizeof why));
  ck_assert_int_eq(oftawq_adapter_open(adapter, &a, why, sizeof why), OFTAWQ_OK);
  oftawq_oft_config_init(&c);
  ck_assert_invalid(oftawq_adapter_config(NULL, &c));
  ck_assert_invalid(oftawq_adapter_config(a, NULL));
  c.size = OLDER(oftawq_oft_config, seed);
  ck_assert_invalid(oftawq_adapter_config(a, &c));
  ck_assert_invalid(oftawq_adapter_weights(NULL, "m", &w, &rows, &cols, why, sizeof why));
  ck_assert_invalid(oftawq_adapter_weights(a, NULL, &w, &rows, &cols, why, sizeof why));
  ck_assert_invalid(oftawq_adapter_weights(a, "m", NULL, &rows, &cols, why, sizeof why));
  ck_assert_invalid(oftawq_adapter_weights(a, "m", &w, NULL, &cols, why, sizeof why));
  ck_assert_invalid(oftawq_adapter_weights(a, "m", &w, &rows, NULL, why, sizeof why));
  ck_assert_int_eq(oftawq_adapter_weights(a, "no.such.module", &w, &rows, &cols, why, sizeof why), OFTAWQ_E_NOT_FOUND);
  ck_assert_ptr_null(w);
  ck_assert_uint_eq(rows, 0);
  oftawq_adapter_close(a);
  free(model);
  free(adapter);
}
END_TEST

START_TEST(tuning_files_without_device)
{
  ck_assert_invalid(oftawq_cache_tuning(NULL, tuned_entry, NULL));
  ck_assert_invalid(oftawq_cache_tuning("/tmp", NULL, NULL));
  ck_assert_int_eq(oftawq_cache_tuning("/no/such/folder", tuned_entry, NULL), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_tune_count(NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------ devices and contexts */

/* Issue 14 item 6: a caller with an older, smaller oftawq_device_info got 1888 bytes written per entry. Each
 * entry is now filled as far as its size says; the array's stride is that size. ASan checks the bounds. */
/* The oftawq_device_info of an older caller: the fields before the strings. */
typedef struct older_device_info {
  size_t size;
  unsigned platform_index, device_index;
} older_device_info;

START_TEST(device_list_honours_struct_sizes)
{
  const size_t newer = sizeof(oftawq_device_info) + 24;
  older_device_info *small = calloc(2, sizeof *small);
  unsigned char *big = calloc(2, newer), canary[24];
  oftawq_device_info full[2];
  size_t count = 99, i;
  ck_assert_uint_eq(sizeof *small, offsetof(oftawq_device_info, platform_name));
  ck_assert_invalid(oftawq_device_list(NULL, full, 2, NULL));
  ck_assert_invalid(oftawq_device_list(NULL, NULL, 2, &count));
  ck_assert_uint_eq(count, 0);
  ck_assert_int_eq(oftawq_device_list(NULL, NULL, 0, &count), OFTAWQ_OK);
  ck_assert_uint_ge(count, 1);
  /* entries of an older, smaller struct */
  small[0].size = small[1].size = sizeof *small;
  small[1].device_index = 77;
  ck_assert_int_eq(oftawq_device_list(NULL, (oftawq_device_info *)(void *)small, 2, &count), OFTAWQ_OK);
  ck_assert_uint_eq(small[0].size, sizeof *small);
  ck_assert_uint_eq(small[0].platform_index, 0);
  ck_assert_uint_eq(small[0].device_index, 0);
  if (count > 1) ck_assert_uint_ne(small[1].device_index, 77);
  /* a newer caller's larger struct: its extra bytes are left alone */
  memset(canary, 0xa5, sizeof canary);
  for (i = 0; i < 2; i++) {
    ((oftawq_device_info *)(void *)(big + i * newer))->size = newer;
    memcpy(big + i * newer + sizeof(oftawq_device_info), canary, sizeof canary);
  }
  ck_assert_int_eq(oftawq_device_list(NULL, (oftawq_device_info *)(void *)big, 2, &count), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(big + sizeof(oftawq_device_info), canary, sizeof canary), 0);
  ck_assert_int_ne(((oftawq_device_info *)(void *)big)->name[0], 0);
  /* sizes that disagree, or too small to hold even the indices */
  oftawq_device_info_init(&full[0]);
  oftawq_device_info_init(&full[1]);
  full[1].size = sizeof *small;
  ck_assert_invalid(oftawq_device_list(NULL, full, 2, &count));
  full[0].size = full[1].size = 4;
  ck_assert_invalid(oftawq_device_list(NULL, full, 2, &count));
  free(small);
  free(big);
}
END_TEST

START_TEST(context_functions)
{
  oftawq_context_options opt;
  oftawq_context *ctx = (oftawq_context *)1;
  oftawq_device_info info;
  oftawq_context_stats stats;
  cl_context cl_ctx;
  cl_command_queue queue;
  cl_device_id dev;
  ck_assert_invalid(oftawq_context_create(NULL, NULL));
  oftawq_context_options_init(&opt);
  opt.size = 3;
  ck_assert_invalid(oftawq_context_create(&opt, &ctx));
  ck_assert_ptr_null(ctx);
  opt.size = sizeof opt + 64; /* a struct from a future version: fields we cannot know */
  ck_assert_invalid(oftawq_context_create(&opt, &ctx));
  opt.size = OLDER(oftawq_context_options, opencl_library); /* the version before opencl_library */
  ck_assert_int_eq(oftawq_context_create(&opt, &ctx), OFTAWQ_OK);
  ck_assert_str_eq(oftawq_context_last_error(NULL), "");
  ck_assert_str_eq(oftawq_context_last_error(ctx), "");
  ck_assert_ptr_null(oftawq_context_cache_dir(NULL));
  ck_assert_ptr_null(oftawq_context_cache_dir(ctx));
  oftawq_device_info_init(&info);
  ck_assert_invalid(oftawq_context_device_info(NULL, &info));
  ck_assert_invalid(oftawq_context_device_info(ctx, NULL));
  info.size = OLDER(oftawq_device_info, compute_units);
  ck_assert_invalid(oftawq_context_device_info(ctx, &info));
  oftawq_context_stats_init(&stats);
  ck_assert_invalid(oftawq_context_get_stats(NULL, &stats));
  ck_assert_invalid(oftawq_context_get_stats(ctx, NULL));
  stats.size = OLDER(oftawq_context_stats, tuning_rejected);
  ck_assert_invalid(oftawq_context_get_stats(ctx, &stats));
  /* oftawq_cl.h */
  ck_assert_invalid(oftawq_context_get_cl(NULL, &cl_ctx, &queue, &dev));
  ck_assert_int_eq(oftawq_context_get_cl(ctx, NULL, NULL, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl_ctx, &queue, &dev), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_context_last_cl_error(NULL), CL_SUCCESS);
  ck_assert_int_eq(oftawq_context_last_cl_error(ctx), CL_SUCCESS);
  {
    oftawq_context *wrapped = (oftawq_context *)1;
    cl_context other;
    cl_int err;
    ck_assert_invalid(oftawq_context_create_from_cl(NULL, NULL, queue, &wrapped));
    ck_assert_ptr_null(wrapped);
    ck_assert_invalid(oftawq_context_create_from_cl(NULL, cl_ctx, NULL, &wrapped));
    ck_assert_invalid(oftawq_context_create_from_cl(NULL, cl_ctx, queue, NULL));
    opt.size = 3;
    ck_assert_invalid(oftawq_context_create_from_cl(&opt, cl_ctx, queue, &wrapped));
    /* a queue of another context */
    other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    ck_assert_ptr_nonnull(other);
    ck_assert_invalid(oftawq_context_create_from_cl(NULL, other, queue, &wrapped));
    ck_assert_ptr_null(wrapped);
    clReleaseContext(other);
  }
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ adapters, base layers, layers */

START_TEST(oft_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  layer_data d;
  oftawq_awq_tensors t;
  oftawq_oft_config c;
  oftawq_oft_shape s;
  oftawq_oft *oft = (oftawq_oft *)1;
  float w[ROWS_W * N_EL], x[2 * K], y[2 * K], R[ROWS_W * B * B], nan_w[ROWS_W * N_EL];
  cl_context cl_ctx;
  cl_mem small, big;
  cl_int err;
  make_layer_data(&d, &t);
  memcpy(w, d.w, sizeof w);
  tu_fill_random(x, 2 * K, 1, 4);
  oft_config(&c);
  ck_assert_invalid(oftawq_oft_create(NULL, &c, K, w, ROWS_W * N_EL, &oft));
  ck_assert_ptr_null(oft);
  ck_assert_invalid(oftawq_oft_create(ctx, NULL, K, w, ROWS_W * N_EL, &oft));
  ck_assert_invalid(oftawq_oft_create(ctx, &c, K, w, ROWS_W * N_EL, NULL));
  ck_assert_invalid(oftawq_oft_create(ctx, &c, 0, w, ROWS_W * N_EL, &oft));
  ck_assert_invalid(oftawq_oft_create(ctx, &c, K, w, ROWS_W * N_EL - 1, &oft));
  ck_assert_invalid(oftawq_oft_create(ctx, &c, K, NULL, ROWS_W * N_EL, &oft));
  memcpy(nan_w, w, sizeof w);
  nan_w[5] = NAN;
  ck_assert_invalid(oftawq_oft_create(ctx, &c, K, nan_w, ROWS_W * N_EL, &oft));
  c.size = OLDER(oftawq_oft_config, seed);
  ck_assert_invalid(oftawq_oft_create(ctx, &c, K, w, ROWS_W * N_EL, &oft));
  ck_assert_ptr_null(oft);
  oft_config(&c);
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, K, w, ROWS_W * N_EL, &oft), OFTAWQ_OK);

  ck_assert_invalid(oftawq_oft_set_weights(NULL, w, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_oft_set_weights(oft, NULL, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_oft_set_weights(oft, w, ROWS_W * N_EL + 1));
  ck_assert_invalid(oftawq_oft_set_weights(oft, nan_w, ROWS_W * N_EL));
  oftawq_oft_shape_init(&s);
  ck_assert_invalid(oftawq_oft_get_shape(NULL, &s));
  ck_assert_invalid(oftawq_oft_get_shape(oft, NULL));
  s.size = OLDER(oftawq_oft_shape, legacy_neumann);
  ck_assert_invalid(oftawq_oft_get_shape(oft, &s));
  oft_config(&c);
  ck_assert_invalid(oftawq_oft_get_config(NULL, &c));
  ck_assert_invalid(oftawq_oft_get_config(oft, NULL));
  c.size = OLDER(oftawq_oft_config, seed);
  ck_assert_invalid(oftawq_oft_get_config(oft, &c));
  ck_assert_invalid(oftawq_oft_get_weights(NULL, w, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_oft_get_weights(oft, NULL, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_oft_get_weights(oft, w, ROWS_W * N_EL - 1));
  ck_assert_invalid(oftawq_oft_get_rotation(NULL, R, ROWS_W * B * B));
  ck_assert_invalid(oftawq_oft_get_rotation(oft, NULL, ROWS_W * B * B));
  ck_assert_invalid(oftawq_oft_get_rotation(oft, R, ROWS_W * B * B - 1));
  ck_assert_invalid(oftawq_oft_prepare(NULL));
  ck_assert_uint_eq(oftawq_oft_rebuild_count(NULL), 0);
  ck_assert_invalid(oftawq_oft_rotate(NULL, OFTAWQ_F32, x, y, 2));
  ck_assert_invalid(oftawq_oft_rotate(oft, (oftawq_dtype)7, x, y, 2));
  ck_assert_invalid(oftawq_oft_rotate(oft, (oftawq_dtype)-1, x, y, 2));
  ck_assert_invalid(oftawq_oft_rotate(oft, OFTAWQ_F32, NULL, y, 2));
  ck_assert_invalid(oftawq_oft_rotate(oft, OFTAWQ_F32, x, NULL, 2));
  ck_assert_error(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y, (size_t)1 << 62)); /* bytes overflow */
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_oft_rotate(oft, OFTAWQ_F32, x, y, 2), OFTAWQ_OK);
  /* device buffers: too small, NULL, a wait list without events */
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl_ctx, NULL, NULL), OFTAWQ_OK);
  small = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, 16, NULL, &err);
  big = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof x, NULL, &err);
  ck_assert_invalid(oftawq_oft_rotate_cl(NULL, OFTAWQ_F32, big, small, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, NULL, big, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, big, NULL, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, big, small, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, small, big, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_oft_rotate_cl(oft, (oftawq_dtype)9, big, big, 1, 0, NULL, NULL));
  ck_assert_invalid(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, big, big, 1, 0, NULL, NULL)); /* aliasing */
  ck_assert_invalid(oftawq_oft_rotate_cl(oft, OFTAWQ_F32, big, small, 0, 2, NULL, NULL));
  clReleaseMemObject(small);
  clReleaseMemObject(big);
  oftawq_oft_destroy(oft);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(awq_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  layer_data d;
  oftawq_awq_tensors t, bad;
  oftawq_awq *awq = (oftawq_awq *)1;
  float x[2 * K], y[2 * N];
  int k = -1, n = -1, g = -1, bias = -1;
  cl_context cl_ctx;
  cl_mem small, xb, yb;
  cl_int err;
  make_layer_data(&d, &t);
  tu_fill_random(x, 2 * K, 1, 5);
  ck_assert_invalid(oftawq_awq_create(NULL, &t, &awq));
  ck_assert_ptr_null(awq);
  ck_assert_invalid(oftawq_awq_create(ctx, NULL, &awq));
  ck_assert_invalid(oftawq_awq_create(ctx, &t, NULL));
  bad = t;
  bad.size = OLDER(oftawq_awq_tensors, bias);
  ck_assert_invalid(oftawq_awq_create(ctx, &bad, &awq));
  bad = t;
  bad.K = 0;
  ck_assert_invalid(oftawq_awq_create(ctx, &bad, &awq));
  bad = t;
  bad.N = 12; /* not a multiple of 8 */
  ck_assert_invalid(oftawq_awq_create(ctx, &bad, &awq));
  bad = t;
  bad.G = 0;
  ck_assert_invalid(oftawq_awq_create(ctx, &bad, &awq));
  bad = t;
  bad.G = -7;
  ck_assert_invalid(oftawq_awq_create(ctx, &bad, &awq));
  bad = t;
  bad.G = 48; /* does not divide K */
  ck_assert_invalid(oftawq_awq_create(ctx, &bad, &awq));
  bad = t;
  bad.qzeros = NULL;
  ck_assert_invalid(oftawq_awq_create(ctx, &bad, &awq));
  bad = t;
  bad.K = bad.N = 1 << 30; /* 2^57 bytes: refused before any allocation */
  bad.G = -1;
  ck_assert_error(oftawq_awq_create(ctx, &bad, &awq));
  ck_assert_ptr_null(awq);
  ck_assert_int_eq(oftawq_awq_create(ctx, &t, &awq), OFTAWQ_OK);
  ck_assert_invalid(oftawq_awq_get_shape(NULL, &k, &n, &g, &bias));
  ck_assert_int_eq(oftawq_awq_get_shape(awq, NULL, NULL, NULL, NULL), OFTAWQ_OK);
  ck_assert_invalid(oftawq_awq_set_path(NULL, OFTAWQ_AWQ_GEMV));
  ck_assert_invalid(oftawq_awq_set_path(awq, (oftawq_awq_path)42));
  ck_assert_invalid(oftawq_awq_set_path(awq, (oftawq_awq_path)-1));
  ck_assert_int_eq(oftawq_awq_path_for(NULL, 1), OFTAWQ_AWQ_AUTO);
  ck_assert_invalid(oftawq_awq_forward(NULL, OFTAWQ_F32, x, y, 2));
  ck_assert_invalid(oftawq_awq_forward(awq, (oftawq_dtype)7, x, y, 2));
  ck_assert_invalid(oftawq_awq_forward(awq, OFTAWQ_F32, NULL, y, 2));
  ck_assert_invalid(oftawq_awq_forward(awq, OFTAWQ_F32, x, NULL, 2));
  ck_assert_error(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, (size_t)1 << 62));
  ck_assert_int_eq(oftawq_awq_forward(awq, OFTAWQ_F32, x, y, 2), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl_ctx, NULL, NULL), OFTAWQ_OK);
  small = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, 16, NULL, &err);
  xb = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof x, NULL, &err);
  yb = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof y, NULL, &err);
  ck_assert_invalid(oftawq_awq_forward_cl(NULL, OFTAWQ_F32, xb, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_awq_forward_cl(awq, OFTAWQ_F32, NULL, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_awq_forward_cl(awq, OFTAWQ_F32, xb, NULL, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_awq_forward_cl(awq, OFTAWQ_F32, small, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_awq_forward_cl(awq, OFTAWQ_F32, xb, small, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_awq_forward_cl(awq, (oftawq_dtype)9, xb, yb, 1, 0, NULL, NULL));
  ck_assert_invalid(oftawq_awq_forward_cl(awq, OFTAWQ_F32, xb, yb, 2, 3, NULL, NULL));
  clReleaseMemObject(small);
  clReleaseMemObject(xb);
  clReleaseMemObject(yb);
  oftawq_awq_destroy(awq);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(layer_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  layer_data d;
  oftawq_awq_tensors t;
  oftawq_oft_config c;
  oftawq_layer *layer = (oftawq_layer *)1;
  float x[2 * K], y[2 * N];
  int index[2] = {0, 5};
  char name[200], desc[8];
  size_t needed = 0;
  const char *names[2] = {"default", NULL};
  cl_context cl_ctx;
  cl_mem xb, yb, small;
  cl_int err;
  make_layer_data(&d, &t);
  tu_fill_random(x, 2 * K, 1, 6);
  oft_config(&c);
  ck_assert_invalid(oftawq_layer_create(NULL, &t, &layer));
  ck_assert_ptr_null(layer);
  ck_assert_invalid(oftawq_layer_create(ctx, NULL, &layer));
  ck_assert_invalid(oftawq_layer_create(ctx, &t, NULL));
  ck_assert_int_eq(oftawq_layer_create(ctx, &t, &layer), OFTAWQ_OK);
  ck_assert_ptr_null(oftawq_layer_base(NULL));
  ck_assert_ptr_null(oftawq_layer_quant_linear_module(NULL));
  ck_assert_ptr_eq(oftawq_layer_base(layer), oftawq_layer_quant_linear_module(layer));

  ck_assert_invalid(oftawq_layer_add_adapter(NULL, "default", &c, d.w, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_layer_add_adapter(layer, NULL, &c, d.w, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_layer_add_adapter(layer, "", &c, d.w, ROWS_W * N_EL));
  memset(name, 'a', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  ck_assert_invalid(oftawq_layer_add_adapter(layer, name, &c, d.w, ROWS_W * N_EL));
  name[OFTAWQ_MAX_ADAPTER_NAME] = '\0'; /* 128 bytes: one too many */
  ck_assert_invalid(oftawq_layer_add_adapter(layer, name, &c, d.w, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_layer_add_adapter(layer, "default", NULL, d.w, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_layer_add_adapter(layer, "default", &c, d.w, 3));
  ck_assert_uint_eq(oftawq_layer_adapter_count(layer), 0);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "default", &c, d.w, ROWS_W * N_EL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "default", &c, d.w, ROWS_W * N_EL), OFTAWQ_E_EXISTS);
  name[OFTAWQ_MAX_ADAPTER_NAME - 1] = '\0'; /* 127 bytes: the longest */
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, name, &c, NULL, 0), OFTAWQ_OK);

  ck_assert_invalid(oftawq_layer_set_adapter_weights(NULL, "default", d.w, ROWS_W * N_EL));
  ck_assert_invalid(oftawq_layer_set_adapter_weights(layer, NULL, d.w, ROWS_W * N_EL));
  ck_assert_int_eq(oftawq_layer_set_adapter_weights(layer, "nope", d.w, ROWS_W * N_EL), OFTAWQ_E_NOT_FOUND);
  ck_assert_invalid(oftawq_layer_set_adapter_weights(layer, "default", NULL, ROWS_W * N_EL));
  ck_assert_uint_eq(oftawq_layer_adapter_count(NULL), 0);
  ck_assert_ptr_null(oftawq_layer_adapter_name(NULL, 0));
  ck_assert_ptr_null(oftawq_layer_adapter_name(layer, 2));
  ck_assert_ptr_null(oftawq_layer_adapter_name(layer, (size_t)-1));
  ck_assert_ptr_null(oftawq_layer_adapter(NULL, "default"));
  ck_assert_ptr_null(oftawq_layer_adapter(layer, NULL));
  ck_assert_ptr_null(oftawq_layer_adapter(layer, "nope"));
  ck_assert_invalid(oftawq_layer_set_active(NULL, names, 1));
  ck_assert_invalid(oftawq_layer_set_active(layer, NULL, 1));
  ck_assert_invalid(oftawq_layer_set_active(layer, names, 2)); /* a NULL name */
  ck_assert_int_eq(oftawq_layer_set_active(layer, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_set_active(layer, names, 1), OFTAWQ_OK);
  ck_assert_invalid(oftawq_layer_enable_adapters(NULL, 1));
  ck_assert_error(oftawq_layer_merge(NULL));
  ck_assert_int_eq(oftawq_layer_merge(layer), OFTAWQ_E_MERGE_REFUSED);

  ck_assert_invalid(oftawq_layer_forward(NULL, OFTAWQ_F32, x, y, 2));
  ck_assert_invalid(oftawq_layer_forward(layer, (oftawq_dtype)7, x, y, 2));
  ck_assert_invalid(oftawq_layer_forward(layer, OFTAWQ_F32, NULL, y, 2));
  ck_assert_invalid(oftawq_layer_forward(layer, OFTAWQ_F32, x, NULL, 2));
  ck_assert_error(oftawq_layer_forward(layer, OFTAWQ_F32, x, y, (size_t)1 << 62));
  ck_assert_int_eq(oftawq_layer_forward(layer, OFTAWQ_F32, x, y, 2), OFTAWQ_OK);
  ck_assert_invalid(oftawq_layer_forward_mixed(NULL, OFTAWQ_F32, x, y, 2, index));
  ck_assert_invalid(oftawq_layer_forward_mixed(layer, OFTAWQ_F32, x, y, 2, NULL));
  ck_assert_invalid(oftawq_layer_forward_mixed(layer, OFTAWQ_F32, x, y, 2, index)); /* index 5 */
  index[1] = -2;
  ck_assert_invalid(oftawq_layer_forward_mixed(layer, OFTAWQ_F32, x, y, 2, index));
  index[1] = -1;
  ck_assert_int_eq(oftawq_layer_forward_mixed(layer, OFTAWQ_F32, x, y, 2, index), OFTAWQ_OK);

  ck_assert_invalid(oftawq_layer_describe(NULL, desc, sizeof desc, &needed));
  ck_assert_int_eq(oftawq_layer_describe(layer, NULL, 0, &needed), OFTAWQ_OK);
  ck_assert_uint_gt(needed, sizeof desc);
  ck_assert_int_eq(oftawq_layer_describe(layer, desc, sizeof desc, NULL), OFTAWQ_OK);
  ck_assert_uint_eq(strlen(desc), sizeof desc - 1);

  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl_ctx, NULL, NULL), OFTAWQ_OK);
  small = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, 16, NULL, &err);
  xb = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof x, NULL, &err);
  yb = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof y, NULL, &err);
  ck_assert_invalid(oftawq_layer_forward_cl(NULL, OFTAWQ_F32, xb, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_cl(layer, OFTAWQ_F32, NULL, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_cl(layer, OFTAWQ_F32, xb, NULL, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_cl(layer, OFTAWQ_F32, small, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_cl(layer, OFTAWQ_F32, xb, small, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_cl(layer, (oftawq_dtype)9, xb, yb, 1, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_cl(layer, OFTAWQ_F32, xb, yb, 2, 1, NULL, NULL));
  clReleaseMemObject(small);
  clReleaseMemObject(xb);
  clReleaseMemObject(yb);

  ck_assert_invalid(oftawq_layer_delete_adapter(NULL, "default"));
  ck_assert_invalid(oftawq_layer_delete_adapter(layer, NULL));
  ck_assert_int_eq(oftawq_layer_delete_adapter(layer, "nope"), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_layer_delete_adapter(layer, "default"), OFTAWQ_OK);
  oftawq_layer_destroy(layer);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(dispatch_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  layer_data d;
  oftawq_target t;
  oftawq_oft_config c;
  oftawq_layer *layer = (oftawq_layer *)1;
  oftawq_target_init(&t);
  make_layer_data(&d, &t.tensors);
  oft_config(&c);
  ck_assert_invalid(oftawq_dispatch(NULL, &t, "default", &c, d.w, ROWS_W * N_EL, &layer));
  ck_assert_ptr_null(layer);
  ck_assert_invalid(oftawq_dispatch(ctx, NULL, "default", &c, d.w, ROWS_W * N_EL, &layer));
  ck_assert_invalid(oftawq_dispatch(ctx, &t, NULL, &c, d.w, ROWS_W * N_EL, &layer));
  ck_assert_invalid(oftawq_dispatch(ctx, &t, "default", NULL, d.w, ROWS_W * N_EL, &layer));
  ck_assert_invalid(oftawq_dispatch(ctx, &t, "default", &c, d.w, ROWS_W * N_EL, NULL));
  t.size = OLDER(oftawq_target, tensors);
  ck_assert_invalid(oftawq_dispatch(ctx, &t, "default", &c, d.w, ROWS_W * N_EL, &layer));
  t.size = sizeof t;
  t.kind = (oftawq_target_kind)99;
  ck_assert_invalid(oftawq_dispatch(ctx, &t, "default", &c, d.w, ROWS_W * N_EL, &layer));
  t.kind = OFTAWQ_TARGET_LINEAR_F16;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "default", &c, d.w, ROWS_W * N_EL, &layer), OFTAWQ_NOT_APPLICABLE);
  ck_assert_ptr_null(layer);
  t.kind = OFTAWQ_TARGET_AWQ_GEMM;
  t.awq_version = "not a version";
  ck_assert_invalid(oftawq_dispatch(ctx, &t, "default", &c, d.w, ROWS_W * N_EL, &layer));
  t.awq_version = "0.1.9";
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "default", &c, d.w, ROWS_W * N_EL, &layer), OFTAWQ_E_INCOMPATIBLE_VERSION);
  ck_assert_ptr_null(layer);
  t.awq_version = NULL;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "default", &c, d.w, ROWS_W * N_EL, &layer), OFTAWQ_OK);
  oftawq_layer_destroy(layer);
  oftawq_context_destroy(ctx);
}
END_TEST

/* Issue 14 item 6: a NULL adapter path crashed oftawq_layer_load; names over 127 bytes were cut short. */
START_TEST(layer_load_arguments)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_layer *layer = (oftawq_layer *)1;
  char *model = tu_srcpath("tests/corpus/good/model"), *adapter = tu_srcpath("tests/corpus/good/adapter");
  char long_name[200], *long_dir = NULL;
  const char *dirs[2] = {NULL, NULL}, *names[2] = {NULL, NULL};
  const char *module = "model.layers.0.mlp.up_proj";
  ck_assert_invalid(oftawq_layer_load(NULL, model, module, NULL, NULL, 0, &layer));
  ck_assert_invalid(oftawq_layer_load(ctx, NULL, module, NULL, NULL, 0, &layer));
  ck_assert_ptr_null(layer);
  ck_assert_invalid(oftawq_layer_load(ctx, model, NULL, NULL, NULL, 0, &layer));
  ck_assert_invalid(oftawq_layer_load(ctx, model, module, NULL, NULL, 0, NULL));
  ck_assert_invalid(oftawq_layer_load(ctx, model, module, NULL, NULL, 1, &layer));
  ck_assert_invalid(oftawq_layer_load(ctx, model, module, dirs, NULL, 1, &layer)); /* a NULL folder */
  ck_assert_msg(strstr(oftawq_context_last_error(ctx), "adapter folder 0 is NULL") != NULL, "%s",
                oftawq_context_last_error(ctx));
  dirs[0] = adapter;
  ck_assert_invalid(oftawq_layer_load(ctx, model, module, dirs, NULL, 2, &layer)); /* the second is NULL */
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  names[0] = long_name;
  ck_assert_invalid(oftawq_layer_load(ctx, model, module, dirs, names, 1, &layer));
  ck_assert_msg(strstr(oftawq_context_last_error(ctx), "is 199 bytes; names have 1 to 127") != NULL, "%s",
                oftawq_context_last_error(ctx));
  names[0] = "";
  ck_assert_invalid(oftawq_layer_load(ctx, model, module, dirs, names, 1, &layer));
  /* a second adapter named after its folder, whose name is too long */
  long_dir = malloc(strlen(adapter) + sizeof long_name + 2);
  sprintf(long_dir, "%s/%s", adapter, long_name);
  dirs[1] = long_dir;
  names[0] = NULL;
  ck_assert_invalid(oftawq_layer_load(ctx, model, module, dirs, names, 2, &layer));
  ck_assert_ptr_null(layer);
  ck_assert_int_eq(oftawq_layer_load(ctx, model, module, dirs, NULL, 1, &layer), OFTAWQ_OK);
  oftawq_layer_destroy(layer);
  oftawq_context_destroy(ctx);
  free(long_dir);
  free(model);
  free(adapter);
}
END_TEST

/* The NULL / size / unknown-name checks of tuning and benchmarks (their huge-shape and negative-block checks are
 * tested with the tuner). */
START_TEST(tune_and_bench_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_tune_options to;
  oftawq_tune_report tr;
  oftawq_kernel_params kp;
  oftawq_bench_options bo;
  oftawq_bench_result results[32];
  size_t count = 7;
  char buf[64];
  oftawq_tune_options_init(&to);
  oftawq_tune_report_init(&tr);
  ck_assert_invalid(oftawq_tune_shape(NULL, K, N, G, B, &to, &tr));
  ck_assert_invalid(oftawq_tune_shape(ctx, 0, N, G, B, &to, &tr));
  ck_assert_invalid(oftawq_tune_shape(ctx, K, 12, G, B, &to, &tr));
  to.size = OLDER(oftawq_tune_options, test_inject_wrong);
  ck_assert_invalid(oftawq_tune_shape(ctx, K, N, G, B, &to, &tr));
  oftawq_tune_options_init(&to);
  tr.size = OLDER(oftawq_tune_report, elapsed_s);
  ck_assert_invalid(oftawq_tune_shape(ctx, K, N, G, B, &to, &tr));
  ck_assert_invalid(oftawq_tune_layer(NULL, &to, NULL));
  oftawq_kernel_params_init(&kp);
  ck_assert_invalid(oftawq_query_params(NULL, "awq", K, N, G, B, 1, &kp));
  ck_assert_invalid(oftawq_query_params(ctx, NULL, K, N, G, B, 1, &kp));
  ck_assert_invalid(oftawq_query_params(ctx, "nope", K, N, G, B, 1, &kp));
  ck_assert_invalid(oftawq_query_params(ctx, "awq", K, N, G, B, 1, NULL));
  kp.size = OLDER(oftawq_kernel_params, tuned);
  ck_assert_invalid(oftawq_query_params(ctx, "awq", K, N, G, B, 1, &kp));
  ck_assert_invalid(oftawq_tune_entry(NULL, 0, buf, sizeof buf));
  ck_assert_invalid(oftawq_tune_entry(ctx, oftawq_tune_count(ctx), buf, sizeof buf));
  ck_assert_invalid(oftawq_tune_entry(ctx, 0, NULL, 0));
  ck_assert_invalid(oftawq_tune_export(NULL, "/tmp/x"));
  ck_assert_invalid(oftawq_tune_export(ctx, NULL));
  ck_assert_invalid(oftawq_tune_import(NULL, "/tmp/x"));
  ck_assert_invalid(oftawq_tune_import(ctx, NULL));
  ck_assert_error(oftawq_tune_import(ctx, "/no/such/file"));

  oftawq_bench_options_init(&bo);
  bo.K = K;
  bo.N = N;
  bo.G = G;
  bo.block_size = B;
  ck_assert_invalid(oftawq_bench_shape(NULL, &bo, results, 32, &count, NULL, NULL));
  ck_assert_invalid(oftawq_bench_shape(ctx, &bo, NULL, 32, &count, NULL, NULL));
  ck_assert_invalid(oftawq_bench_shape(ctx, &bo, results, 32, NULL, NULL, NULL));
  bo.size = OLDER(oftawq_bench_options, paths);
  ck_assert_invalid(oftawq_bench_shape(ctx, &bo, results, 32, &count, NULL, NULL));
  oftawq_bench_options_init(&bo);
  bo.K = 0;
  ck_assert_invalid(oftawq_bench_shape(ctx, &bo, results, 32, &count, NULL, NULL));
  oftawq_bench_options_init(&bo);
  bo.runs = 0;
  ck_assert_invalid(oftawq_bench_shape(ctx, &bo, results, 32, &count, NULL, NULL));
  oftawq_context_destroy(ctx);
}
END_TEST

/* Functions the training and model work added, in what their own suites leave out. */
START_TEST(training_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  char *dir = tu_tempdir("api-save"), path[4200], why[WHY];
  layer_data d;
  oftawq_awq_tensors t;
  oftawq_oft_config c;
  oftawq_layer *layer = NULL;
  oftawq_adapter_module m;
  oftawq_adapter_save_options so;
  oftawq_bench_options bo;
  oftawq_bench_result results[32];
  float y[4] = {1, 2, 3, 4}, target[4] = {0, 0, 0, 0}, dy[4], x[2 * K], out[2 * N];
  double loss = -1;
  size_t count = 7;
  const char *modules[1] = {"m"};
  cl_context cl_ctx;
  cl_mem xb, yb, small;
  cl_int err;
  oftawq_adapter_module_init(NULL);
  oftawq_adapter_save_options_init(NULL);
  /* the loss */
  ck_assert_invalid(oftawq_mse_loss(OFTAWQ_F32, NULL, target, 4, dy, &loss));
  ck_assert_invalid(oftawq_mse_loss(OFTAWQ_F32, y, NULL, 4, dy, &loss));
  ck_assert_invalid(oftawq_mse_loss(OFTAWQ_F32, y, target, 4, dy, NULL));
  ck_assert_invalid(oftawq_mse_loss((oftawq_dtype)9, y, target, 4, dy, &loss));
  ck_assert_int_eq(oftawq_mse_loss(OFTAWQ_F32, y, target, 4, NULL, &loss), OFTAWQ_OK);
  ck_assert_double_eq(loss, 7.5);
  /* writing an adapter folder */
  make_layer_data(&d, &t);
  oft_config(&c);
  oftawq_adapter_module_init(&m);
  m.module = "m";
  m.weights = d.w;
  m.rows = ROWS_W;
  m.cols = N_EL;
  oftawq_adapter_save_options_init(&so);
  snprintf(path, sizeof path, "%s/adapter", dir);
  ck_assert_invalid(oftawq_adapter_write(NULL, &c, &m, 1, NULL, why, sizeof why));
  ck_assert_invalid(oftawq_adapter_write(path, NULL, &m, 1, NULL, why, sizeof why));
  ck_assert_invalid(oftawq_adapter_write(path, &c, NULL, 1, NULL, why, sizeof why));
  ck_assert_invalid(oftawq_adapter_write(path, &c, &m, 0, NULL, why, sizeof why));
  c.size = OLDER(oftawq_oft_config, seed);
  ck_assert_invalid(oftawq_adapter_write(path, &c, &m, 1, NULL, why, sizeof why));
  oft_config(&c);
  m.size = OLDER(oftawq_adapter_module, cols);
  ck_assert_invalid(oftawq_adapter_write(path, &c, &m, 1, NULL, why, sizeof why));
  m.size = sizeof m;
  so.size = OLDER(oftawq_adapter_save_options, base_model_name_or_path);
  ck_assert_invalid(oftawq_adapter_write(path, &c, &m, 1, &so, why, sizeof why));
  m.module = NULL;
  ck_assert_invalid(oftawq_adapter_write(path, &c, &m, 1, NULL, why, sizeof why));
  m.module = "m";
  m.weights = NULL;
  ck_assert_invalid(oftawq_adapter_write(path, &c, &m, 1, NULL, why, sizeof why));
  ck_assert_int_ne(access(path, F_OK), 0); /* nothing written */
  ck_assert_invalid(oftawq_adapter_save(NULL, "a", modules, &layer, 1, NULL));
  ck_assert_invalid(oftawq_adapter_save(path, NULL, modules, &layer, 1, NULL));
  ck_assert_invalid(oftawq_adapter_save(path, "a", NULL, &layer, 1, NULL));
  ck_assert_invalid(oftawq_adapter_save(path, "a", modules, NULL, 1, NULL));
  ck_assert_invalid(oftawq_adapter_save(path, "a", modules, &layer, 1, NULL)); /* a NULL layer */
  ck_assert_invalid(oftawq_adapter_save(path, "a", modules, &layer, 0, NULL));
  /* training on device buffers */
  ck_assert_int_eq(oftawq_layer_create(ctx, &t, &layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "a", &c, d.w, ROWS_W * N_EL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_set_trainable(layer, "a", 1), OFTAWQ_OK);
  tu_fill_random(x, 2 * K, 1, 9);
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl_ctx, NULL, NULL), OFTAWQ_OK);
  small = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, 16, NULL, &err);
  xb = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof x, NULL, &err);
  yb = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof out, NULL, &err);
  ck_assert_invalid(oftawq_layer_forward_train_cl(NULL, OFTAWQ_F32, xb, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_train_cl(layer, OFTAWQ_F32, NULL, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_train_cl(layer, OFTAWQ_F32, xb, NULL, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_train_cl(layer, OFTAWQ_F32, small, yb, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_forward_train_cl(layer, OFTAWQ_F32, xb, small, 2, 0, NULL, NULL));
  ck_assert_error(oftawq_layer_forward_train_cl(layer, (oftawq_dtype)9, xb, yb, 1, 0, NULL, NULL)); /* unsupported */
  ck_assert_invalid(oftawq_layer_forward_train_cl(layer, OFTAWQ_F32, xb, yb, 2, 2, NULL, NULL));
  ck_assert_error(oftawq_layer_forward_train(layer, (oftawq_dtype)9, x, out, 2));
  ck_assert_error(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, out, (size_t)1 << 62));
  clReleaseMemObject(small);
  clReleaseMemObject(xb);
  clReleaseMemObject(yb);
  /* the training benchmark */
  oftawq_bench_options_init(&bo);
  bo.K = K;
  bo.N = N;
  bo.G = G;
  bo.block_size = B;
  ck_assert_invalid(oftawq_bench_train(NULL, &bo, results, 32, &count, NULL, NULL));
  ck_assert_invalid(oftawq_bench_train(ctx, &bo, NULL, 32, &count, NULL, NULL));
  ck_assert_invalid(oftawq_bench_train(ctx, &bo, results, 32, NULL, NULL, NULL));
  bo.size = OLDER(oftawq_bench_options, paths);
  ck_assert_invalid(oftawq_bench_train(ctx, &bo, results, 32, &count, NULL, NULL));
  oftawq_layer_destroy(layer);
  oftawq_context_destroy(ctx);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

/* The model API (issue 13) with older struct sizes and values out of range; check_model's api_misuse has the
 * NULLs of each function too. */
START_TEST(model_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  char *mdir = tu_srcpath("tests/corpus/good/model"), *adir = tu_srcpath("tests/corpus/good/adapter");
  char *tmp = tu_tempdir("api-model"), path[4200];
  const char *module = "model.layers.0.mlp.up_proj", *none[1] = {NULL};
  oftawq_model *m = (oftawq_model *)1;
  oftawq_layer *layer = (oftawq_layer *)1;
  oftawq_model_options opt;
  oftawq_model_module mod;
  oftawq_oft_config c;
  oftawq_model_outcome o;
  oftawq_model_stats st;
  float x[2 * K], y[2 * N];
  size_t index = 77;
  oftawq_model_options_init(&opt);
  opt.size = OLDER(oftawq_model_options, record_refusals);
  ck_assert_invalid(oftawq_model_open(ctx, mdir, &opt, &m));
  ck_assert_ptr_null(m);
  oftawq_model_options_init(&opt);
  opt.producer_version = "not a version"; /* refused at once, whatever the producer */
  ck_assert_invalid(oftawq_model_open(ctx, mdir, &opt, &m));
  ck_assert_ptr_null(m);
  opt.producer = OFTAWQ_PRODUCER_GPTQMODEL;
  ck_assert_invalid(oftawq_model_open(ctx, mdir, &opt, &m));
  ck_assert_msg(strstr(oftawq_context_last_error(ctx), "'not a version' is not a PEP 440 version") != NULL, "%s",
                oftawq_context_last_error(ctx));
  oftawq_model_options_init(&opt);
  opt.memory_budget = UINT64_MAX;
  ck_assert_int_eq(oftawq_model_open(ctx, mdir, &opt, &m), OFTAWQ_OK);
  /* modules */
  oftawq_model_module_init(&mod);
  mod.size = OLDER(oftawq_model_module, uploaded);
  ck_assert_invalid(oftawq_model_module_get(m, 0, &mod));
  oftawq_model_module_init(&mod);
  ck_assert_invalid(oftawq_model_module_get(m, (size_t)-1, &mod));
  ck_assert_int_eq(oftawq_model_module_find(m, "", &index), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_model_module_find(m, module, &index), OFTAWQ_OK);
  ck_assert_uint_lt(index, oftawq_model_module_count(m));
  /* adapters: NULL name = "default"; the config with an older size */
  ck_assert_int_eq(oftawq_model_load_adapter(m, adir, NULL), OFTAWQ_OK);
  ck_assert_str_eq(oftawq_model_adapter_name(m, 0), "default");
  ck_assert_uint_eq(oftawq_model_adapter_count(m), 1);
  ck_assert_uint_eq(oftawq_model_adapter_count(NULL), 0);
  ck_assert_ptr_null(oftawq_model_adapter_name(m, (size_t)-1));
  oftawq_oft_config_init(&c);
  c.size = OLDER(oftawq_oft_config, seed);
  ck_assert_invalid(oftawq_model_adapter_config(m, 0, &c));
  ck_assert_invalid(oftawq_model_adapter_config(m, (size_t)-1, &c));
  oftawq_model_outcome_init(&o);
  o.size = OLDER(oftawq_model_outcome, has_weights);
  ck_assert_invalid(oftawq_model_outcome_get(m, index, 0, &o));
  oftawq_model_outcome_init(&o);
  ck_assert_invalid(oftawq_model_outcome_get(m, index, (size_t)-1, &o));
  ck_assert_invalid(oftawq_model_outcome_get(m, (size_t)-1, 0, &o));
  ck_assert_int_eq(oftawq_model_outcome_get(m, index, 0, &o), OFTAWQ_OK);
  ck_assert_int_eq(o.outcome, OFTAWQ_OUTCOME_WRAPPED);
  /* active lists, enabling with any non-zero value */
  ck_assert_invalid(oftawq_model_set_active(m, none, 1));
  ck_assert_int_eq(oftawq_model_enable_adapters(m, -5), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_enable_adapters(m, 0), OFTAWQ_OK);
  /* layers and forwards out of range */
  ck_assert_int_eq(oftawq_model_layer(m, "", &layer), OFTAWQ_E_NOT_FOUND);
  ck_assert_ptr_null(layer);
  tu_fill_random(x, 2 * K, 1, 5);
  ck_assert_invalid(oftawq_model_forward(m, module, OFTAWQ_F32, x, NULL, 2));
  ck_assert_error(oftawq_model_forward(m, module, OFTAWQ_F32, x, y, (size_t)1 << 62));
  ck_assert_invalid(oftawq_model_forward(m, NULL, OFTAWQ_F32, x, y, 2));
  ck_assert_int_eq(oftawq_model_forward(m, module, OFTAWQ_F32, x, y, 2), OFTAWQ_OK);
  oftawq_model_stats_init(&st);
  st.size = OLDER(oftawq_model_stats, evictions);
  ck_assert_invalid(oftawq_model_get_stats(m, &st));
  oftawq_model_stats_init(&st);
  ck_assert_int_eq(oftawq_model_get_stats(m, &st), OFTAWQ_OK);
  ck_assert_uint_eq(st.memory_budget, UINT64_MAX);
  /* saving */
  snprintf(path, sizeof path, "%s/saved", tmp);
  ck_assert_invalid(oftawq_model_save_adapter(NULL, "default", path));
  ck_assert_invalid(oftawq_model_save_adapter(m, NULL, path));
  ck_assert_invalid(oftawq_model_save_adapter(m, "default", NULL));
  ck_assert_int_eq(oftawq_model_save_adapter(m, "nope", path), OFTAWQ_E_NOT_FOUND);
  ck_assert_error(oftawq_model_save_adapter(m, "default", "/no/such/folder/saved"));
  ck_assert_int_ne(access(path, F_OK), 0); /* nothing written */
  ck_assert_int_eq(oftawq_model_save_adapter(m, "default", path), OFTAWQ_OK);
  oftawq_model_destroy(m);
  oftawq_context_destroy(ctx);
  snprintf(path, sizeof path, "rm -rf '%s'", tmp);
  ck_assert_int_eq(system(path), 0);
  free(tmp);
  free(mdir);
  free(adir);
}
END_TEST

/* Gradients and optimizers (issue 12) with NULLs, older struct sizes and values out of range, beyond check_train's
 * bad_training_calls and bad_optimizer_calls. */
START_TEST(optimizer_functions)
{
  oftawq_context *ctx = tu_context(NULL);
  layer_data d;
  oftawq_awq_tensors t;
  oftawq_oft_config c;
  oftawq_layer *layer = NULL;
  oftawq_optimizer_options oo;
  oftawq_optimizer *opt = (oftawq_optimizer *)1;
  float grad[ROWS_W * N_EL], m[ROWS_W * N_EL], v[ROWS_W * N_EL], x[2 * K], y[2 * N], dy[2 * N];
  uint64_t step = 99;
  int trainable = 7;
  cl_context cl_ctx;
  cl_mem small;
  cl_int err;
  make_layer_data(&d, &t);
  oft_config(&c);
  ck_assert_int_eq(oftawq_layer_create(ctx, &t, &layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_add_adapter(layer, "a", &c, d.w, ROWS_W * N_EL), OFTAWQ_OK);
  /* gradients before and after the adapter is trainable */
  ck_assert_invalid(oftawq_layer_get_grad(NULL, "a", grad, ROWS_W * N_EL));
  ck_assert_error(oftawq_layer_get_grad(layer, NULL, grad, ROWS_W * N_EL));
  ck_assert_int_eq(oftawq_layer_get_grad(layer, "nope", grad, ROWS_W * N_EL), OFTAWQ_E_NOT_FOUND);
  ck_assert_invalid(oftawq_layer_get_grad(layer, "a", grad, ROWS_W * N_EL)); /* not trainable */
  ck_assert_error(oftawq_layer_is_trainable(layer, NULL, &trainable));
  ck_assert_int_eq(oftawq_layer_is_trainable(layer, "nope", &trainable), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_layer_is_trainable(layer, "a", &trainable), OFTAWQ_OK);
  ck_assert_int_eq(trainable, 0);
  ck_assert_int_eq(oftawq_layer_zero_grad(layer), OFTAWQ_OK); /* nothing trainable: nothing to do */
  ck_assert_error(oftawq_layer_set_trainable(layer, NULL, 1));
  ck_assert_int_eq(oftawq_layer_set_trainable(layer, "a", 1), OFTAWQ_OK);
  ck_assert_invalid(oftawq_layer_get_grad(layer, "a", grad, (size_t)-1));
  ck_assert_invalid(oftawq_layer_get_grad(layer, "a", NULL, ROWS_W * N_EL));
  ck_assert_int_eq(oftawq_layer_get_grad(layer, "a", grad, ROWS_W * N_EL), OFTAWQ_OK);
  tu_fill_random(x, 2 * K, 1, 6);
  tu_fill_random(dy, 2 * N, 1, 7);
  ck_assert_int_eq(oftawq_layer_forward_train(layer, OFTAWQ_F32, x, y, 2), OFTAWQ_OK);
  ck_assert_invalid(oftawq_layer_backward(layer, OFTAWQ_F32, dy, NULL, (size_t)1 << 62));
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, NULL, NULL, 0), OFTAWQ_OK); /* no rows: nothing done */
  ck_assert_int_eq(oftawq_layer_backward(layer, OFTAWQ_F32, dy, NULL, 2), OFTAWQ_OK); /* dx may be NULL */
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl_ctx, NULL, NULL), OFTAWQ_OK);
  small = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, 16, NULL, &err);
  ck_assert_invalid(oftawq_layer_backward_cl(NULL, OFTAWQ_F32, small, NULL, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_backward_cl(layer, OFTAWQ_F32, NULL, NULL, 2, 0, NULL, NULL));
  ck_assert_invalid(oftawq_layer_backward_cl(layer, OFTAWQ_F32, small, NULL, 2, 0, NULL, NULL)); /* too small */
  ck_assert_invalid(oftawq_layer_backward_cl(layer, OFTAWQ_F32, small, NULL, 2, 1, NULL, NULL)); /* 1 event, NULL */
  clReleaseMemObject(small);
  /* optimizers */
  oftawq_optimizer_options_init(&oo);
  oo.size = OLDER(oftawq_optimizer_options, max_grad_norm);
  ck_assert_invalid(oftawq_optimizer_create(ctx, &oo, &opt));
  ck_assert_ptr_null(opt);
  oftawq_optimizer_options_init(&oo);
  oo.lr = -1;
  ck_assert_invalid(oftawq_optimizer_create(ctx, &oo, &opt));
  oftawq_optimizer_options_init(&oo);
  oo.beta1 = INFINITY;
  ck_assert_invalid(oftawq_optimizer_create(ctx, &oo, &opt));
  oftawq_optimizer_options_init(&oo);
  oo.kind = (oftawq_optimizer_kind)-1;
  ck_assert_invalid(oftawq_optimizer_create(ctx, &oo, &opt));
  oftawq_optimizer_options_init(&oo);
  ck_assert_int_eq(oftawq_optimizer_create(ctx, &oo, &opt), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_OK); /* no parameters yet */
  ck_assert_error(oftawq_optimizer_add(opt, layer, NULL));
  ck_assert_int_eq(oftawq_optimizer_add(opt, layer, "a"), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_optimizer_param_count(opt), 1);
  ck_assert_invalid(oftawq_optimizer_get_state(NULL, 0, m, v, ROWS_W * N_EL, &step));
  ck_assert_invalid(oftawq_optimizer_get_state(opt, (size_t)-1, m, v, ROWS_W * N_EL, &step));
  ck_assert_invalid(oftawq_optimizer_get_state(opt, 0, NULL, v, ROWS_W * N_EL, &step));
  ck_assert_invalid(oftawq_optimizer_get_state(opt, 0, m, NULL, ROWS_W * N_EL, &step));
  ck_assert_invalid(oftawq_optimizer_get_state(opt, 0, m, v, (size_t)-1, &step));
  ck_assert_uint_eq(step, 99);
  ck_assert_int_eq(oftawq_optimizer_get_state(opt, 0, m, v, ROWS_W * N_EL, &step), OFTAWQ_OK);
  ck_assert_uint_eq(step, 0);
  ck_assert_invalid(oftawq_optimizer_set_state(opt, 1, m, v, ROWS_W * N_EL, 1));
  ck_assert_invalid(oftawq_optimizer_set_state(opt, 0, NULL, v, ROWS_W * N_EL, 1));
  ck_assert_invalid(oftawq_optimizer_set_state(opt, 0, m, v, ROWS_W * N_EL + 1, 1));
  m[3] = NAN;
  ck_assert_invalid(oftawq_optimizer_set_state(opt, 0, m, v, ROWS_W * N_EL, 1));
  ck_assert_int_eq(oftawq_optimizer_step(opt, NULL), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_optimizer_zero_grad(opt), OFTAWQ_OK);
  oftawq_optimizer_destroy(opt);
  oftawq_layer_destroy(layer);
  oftawq_context_destroy(ctx);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("api");
  TCase *host = tcase_create("host"), *dev = tcase_create("device");
  tcase_add_test(host, status_version_and_escape);
  tcase_add_test(host, init_functions_accept_null);
  tcase_add_test(host, cache_folder_functions);
  tcase_add_test(host, oft_resolve_ranges);
  tcase_add_test(host, safetensors_functions);
  tcase_add_test(host, model_and_adapter_file_functions);
  tcase_add_test(host, tuning_files_without_device);
  suite_add_tcase(s, host);
  tcase_set_timeout(dev, 120);
  tcase_add_test(dev, device_list_honours_struct_sizes);
  tcase_add_test(dev, context_functions);
  tcase_add_test(dev, oft_functions);
  tcase_add_test(dev, awq_functions);
  tcase_add_test(dev, layer_functions);
  tcase_add_test(dev, dispatch_functions);
  tcase_add_test(dev, layer_load_arguments);
  tcase_add_test(dev, tune_and_bench_functions);
  tcase_add_test(dev, training_functions);
  tcase_add_test(dev, model_functions);
  tcase_add_test(dev, optimizer_functions);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
