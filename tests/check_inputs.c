/* check_inputs.c: every file the library reads is opened only if it is a regular file - FIFOs, devices, folders
 * and loops of links are refused at once with their real cause - and a cache entry that is not a plain file, or
 * holds another program's binary, is rebuilt. A hang fails by Check's per-test timeout. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oftawq.h"
#include "common/fileio.h"
#include "runtime/cache.h"
#include "runtime/program.h"
#include "testutil.h"

#define WHY 1024

/* How a file is replaced by something that is not one. */
typedef enum special { FIFO, LOOP, FOLDER } special;

static void make_special(const char *path, special kind)
{
  char other[4200];
  remove(path);
  switch (kind) {
  case FIFO: ck_assert_msg(mkfifo(path, 0644) == 0, "mkfifo %s: %s", path, strerror(errno)); break;
  case FOLDER: ck_assert_msg(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno)); break;
  case LOOP: /* path -> path.loop -> path */
    snprintf(other, sizeof other, "%s.loop", path);
    remove(other);
    ck_assert_int_eq(symlink(path, other), 0);
    ck_assert_int_eq(symlink(other, path), 0);
    break;
  }
}

/* The cause each kind must be reported with. */
static const char *cause(special kind)
{
  return kind == FIFO ? "is a FIFO" : kind == FOLDER ? "is a directory" : strerror(ELOOP);
}

static void link_to_corpus(const char *dir, const char *name, const char *corpus_file)
{
  char path[4200], *src = tu_srcpath(corpus_file);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ck_assert_int_eq(symlink(src, path), 0);
  free(src);
}

/* A model folder made of links to the corpus' good one, with `replace` made special. */
static char *model_with(const char *replace, special kind)
{
  char *dir = tu_tempdir("model"), path[4200];
  link_to_corpus(dir, "config.json", "tests/corpus/good/model/config.json");
  link_to_corpus(dir, "model.safetensors", "tests/corpus/good/model/model.safetensors");
  snprintf(path, sizeof path, "%s/%s", dir, replace);
  make_special(path, kind);
  return dir;
}

static char *adapter_with(const char *replace, special kind)
{
  char *dir = tu_tempdir("adapter"), path[4200];
  link_to_corpus(dir, "adapter_config.json", "tests/corpus/good/adapter/adapter_config.json");
  link_to_corpus(dir, "adapter_model.safetensors", "tests/corpus/good/adapter/adapter_model.safetensors");
  snprintf(path, sizeof path, "%s/%s", dir, replace);
  make_special(path, kind);
  return dir;
}

static void remove_tree(const char *dir)
{
  char path[4200];
  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(path), 0);
}

static const special kinds[] = {FIFO, LOOP, FOLDER};

START_TEST(reader_refuses_what_is_not_a_regular_file)
{
  char *dir = tu_tempdir("reader"), path[4200], why[WHY], *data = (char *)1;
  size_t len = 7;
  int fd = 7;
  uint64_t size = 7;
  snprintf(path, sizeof path, "%s/x", dir);
  make_special(path, kinds[_i]);
  ck_assert_int_eq(oftawq__file_read(path, 0, 1 << 20, &data, &len, why, sizeof why), OFTAWQ_E_IO);
  ck_assert_msg(strstr(why, cause(kinds[_i])) != NULL, "%s", why);
  ck_assert_ptr_null(data);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(oftawq__file_open(path, OFTAWQ__FILE_NOFOLLOW, 1 << 20, &fd, &size, NULL, 0), OFTAWQ_E_IO);
  ck_assert_int_eq(fd, -1);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(reader_reports_devices_links_missing_and_large_files)
{
  char *dir = tu_tempdir("reader"), path[4400], target[4200], why[WHY], *data = NULL;
  size_t len = 0;
  FILE *f;
  ck_assert_int_eq(oftawq__file_read("/dev/zero", 0, 1 << 20, &data, &len, why, sizeof why), OFTAWQ_E_IO);
  ck_assert_msg(strstr(why, "/dev/zero: is a character device, not a regular file") != NULL, "%s", why);
  snprintf(path, sizeof path, "%s/none", dir);
  ck_assert_int_eq(oftawq__file_read(path, 0, 1 << 20, &data, &len, why, sizeof why), OFTAWQ_E_NOT_FOUND);
  ck_assert_msg(strstr(why, strerror(ENOENT)) != NULL, "%s", why);
  /* a link to a regular file is followed, unless the caller refuses links (cache entries) */
  snprintf(target, sizeof target, "%s/target", dir);
  ck_assert_ptr_nonnull(f = fopen(target, "w"));
  fputs("0123456789", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/link", dir);
  ck_assert_int_eq(symlink(target, path), 0);
  ck_assert_int_eq(oftawq__file_read(path, 0, 10, &data, &len, why, sizeof why), OFTAWQ_OK);
  ck_assert_uint_eq(len, 10);
  ck_assert_str_eq(data, "0123456789");
  free(data);
  ck_assert_int_eq(oftawq__file_read(path, OFTAWQ__FILE_NOFOLLOW, 10, &data, &len, why, sizeof why), OFTAWQ_E_IO);
  ck_assert_msg(strstr(why, "is a symbolic link") != NULL, "%s", why);
  /* over the bound: refused before any allocation */
  ck_assert_int_eq(oftawq__file_read(target, 0, 9, &data, &len, why, sizeof why), OFTAWQ_E_FORMAT);
  ck_assert_msg(strstr(why, "10 bytes, more than the 9") != NULL, "%s", why);
  /* a path through a regular file */
  snprintf(path, sizeof path, "%s/x", target);
  ck_assert_int_eq(oftawq__file_read(path, 0, 10, &data, &len, why, sizeof why), OFTAWQ_E_IO);
  ck_assert_msg(strstr(why, strerror(ENOTDIR)) != NULL, "%s", why);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(safetensors_input)
{
  char *dir = tu_tempdir("input"), path[4200], why[WHY];
  oftawq_safetensors *st = (oftawq_safetensors *)1;
  snprintf(path, sizeof path, "%s/x.safetensors", dir);
  make_special(path, kinds[_i]);
  ck_assert_int_eq(oftawq_safetensors_open(path, &st, why, sizeof why), OFTAWQ_E_IO);
  ck_assert_ptr_null(st);
  ck_assert_msg(strstr(why, "x.safetensors: ") && strstr(why, cause(kinds[_i])), "%s", why);
  remove_tree(dir);
  free(dir);
}
END_TEST

/* config.json, the weights, the shard index: each special kind reported as itself (not "not quantised"). */
START_TEST(model_folder_files)
{
  static const char *const files[] = {"config.json", "model.safetensors", "model.safetensors.index.json"};
  special kind = kinds[_i % 3];
  const char *file = files[_i / 3];
  char *dir = model_with(file, kind), why[WHY], expect[256];
  oftawq_model_file *m = (oftawq_model_file *)1;
  ck_assert_int_eq(oftawq_model_file_open(dir, &m, why, sizeof why), OFTAWQ_E_IO);
  ck_assert_ptr_null(m);
  snprintf(expect, sizeof expect, "/%s: %s", file, cause(kind));
  ck_assert_msg(strstr(why, expect) != NULL, "expected '%s' in: %s", expect, why);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(adapter_folder_files)
{
  static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors"};
  special kind = kinds[_i % 3];
  const char *file = files[_i / 3];
  char *dir = adapter_with(file, kind), why[WHY], expect[256];
  oftawq_adapter_file *a = (oftawq_adapter_file *)1;
  ck_assert_int_eq(oftawq_adapter_open(dir, &a, why, sizeof why), OFTAWQ_E_IO);
  ck_assert_ptr_null(a);
  snprintf(expect, sizeof expect, "/%s: %s", file, cause(kind));
  ck_assert_msg(strstr(why, expect) != NULL, "expected '%s' in: %s", expect, why);
  remove_tree(dir);
  free(dir);
}
END_TEST

/* The only file of `dir` whose name starts with `prefix`, as a path. */
static void only_entry(const char *dir, const char *prefix, char *path, size_t cap)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;
  ck_assert_ptr_nonnull(d);
  while ((e = readdir(d)) != NULL)
    if (!strncmp(e->d_name, prefix, strlen(prefix))) {
      snprintf(path, cap, "%s/%s", dir, e->d_name);
      found++;
    }
  closedir(d);
  ck_assert_int_eq(found, 1);
}

static const char tiny_source[] = "__kernel void twice(__global float *x) { x[get_global_id(0)] *= 2.0f; }\n";

START_TEST(program_cache_entry)
{
  char *dir = tu_tempdir("bincache"), entry[4200];
  oftawq_context *ctx = tu_context(dir);
  oftawq_context_stats stats;
  cl_program prog;
  ck_assert_int_eq(oftawq__program_from_source(ctx, "tiny", tiny_source, sizeof tiny_source - 1, "", &prog), OFTAWQ_OK);
  oftawq_context_destroy(ctx);
  only_entry(dir, "prog-", entry, sizeof entry);
  make_special(entry, kinds[_i]);
  ctx = tu_context(dir);
  ck_assert_int_eq(oftawq__program_from_source(ctx, "tiny", tiny_source, sizeof tiny_source - 1, "", &prog), OFTAWQ_OK);
  oftawq_context_stats_init(&stats);
  ck_assert_int_eq(oftawq_context_get_stats(ctx, &stats), OFTAWQ_OK);
  ck_assert_uint_eq(stats.binaries_rejected, 1);
  ck_assert_uint_eq(stats.programs_from_source, 1);
  oftawq_context_destroy(ctx);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(kernel_source_override)
{
  char *dir = tu_tempdir("cldir"), path[4200];
  oftawq_context *ctx;
  cl_program prog;
  snprintf(path, sizeof path, "%s/awq.cl", dir);
  make_special(path, kinds[_i]);
  setenv(OFTAWQ_CL_DIR_ENV, dir, 1);
  ctx = tu_context(NULL);
  ck_assert_int_eq(oftawq__program_get(ctx, "awq", "", &prog), OFTAWQ_E_IO);
  ck_assert_msg(strstr(oftawq_context_last_error(ctx), "awq.cl: ") &&
                  strstr(oftawq_context_last_error(ctx), cause(kinds[_i])),
                "%s", oftawq_context_last_error(ctx));
  oftawq_context_destroy(ctx);
  unsetenv(OFTAWQ_CL_DIR_ENV);
  remove_tree(dir);
  free(dir);
}
END_TEST

/* x[i] * SCALE through the program built with `options`. */
static void run_scale(oftawq_context *ctx, const char *options, float expect)
{
  static const char source[] = "__kernel void scale(__global float *x) { x[get_global_id(0)] *= SCALE; }\n";
  cl_context cl_ctx;
  cl_command_queue queue;
  cl_program prog;
  cl_kernel k;
  cl_mem buf;
  cl_int err;
  float x[4] = {1, 2, 3, 4};
  size_t n = 4, i;
  ck_assert_int_eq(oftawq__program_from_source(ctx, "scale", source, sizeof source - 1, options, &prog), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_context_get_cl(ctx, &cl_ctx, &queue, NULL), OFTAWQ_OK);
  ck_assert_ptr_nonnull(k = clCreateKernel(prog, "scale", &err));
  ck_assert_ptr_nonnull(buf = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof x, x, &err));
  ck_assert_int_eq(clSetKernelArg(k, 0, sizeof buf, &buf), CL_SUCCESS);
  ck_assert_int_eq(clEnqueueNDRangeKernel(queue, k, 1, NULL, &n, NULL, 0, NULL, NULL), CL_SUCCESS);
  ck_assert_int_eq(clEnqueueReadBuffer(queue, buf, CL_TRUE, 0, sizeof x, x, 0, NULL, NULL), CL_SUCCESS);
  for (i = 0; i < n; i++) ck_assert_float_eq(x[i], expect * (float)(i + 1));
  clReleaseMemObject(buf);
  clReleaseKernel(k);
}

/* An entry filed under one build that holds another build's binary, with a valid checksum: rebuilt, not run. */
START_TEST(program_cache_entry_of_another_program)
{
  static const char source[] = "__kernel void scale(__global float *x) { x[get_global_id(0)] *= SCALE; }\n";
  char *dir = tu_tempdir("foreign");
  oftawq_context *ctx = tu_context(dir);
  oftawq_context_stats stats;
  char *key2 = oftawq__program_key(ctx, "scale", source, sizeof source - 1, "-DSCALE=2.0f");
  char *key3 = oftawq__program_key(ctx, "scale", source, sizeof source - 1, "-DSCALE=3.0f");
  unsigned char *bin = NULL;
  size_t len = 0;
  run_scale(ctx, "-DSCALE=2.0f", 2.0f);
  run_scale(ctx, "-DSCALE=3.0f", 3.0f);
  oftawq_context_destroy(ctx); /* its binaries are final once it ends (program.c refreshes them then) */
  ctx = tu_context(dir);
  ck_assert_int_eq(oftawq__bincache_load(ctx, key3, &bin, &len), 1);
  oftawq__bincache_store(ctx, key2, bin, len); /* x3's binary, filed as x2's with a valid checksum */
  free(bin);
  oftawq_context_destroy(ctx);
  ctx = tu_context(dir);
  run_scale(ctx, "-DSCALE=2.0f", 2.0f);
  oftawq_context_stats_init(&stats);
  ck_assert_int_eq(oftawq_context_get_stats(ctx, &stats), OFTAWQ_OK);
  ck_assert_uint_eq(stats.binaries_rejected, 1);
  ck_assert_uint_eq(stats.programs_from_source, 1);
  run_scale(ctx, "-DSCALE=3.0f", 3.0f); /* the genuine entry still loads */
  ck_assert_int_eq(oftawq_context_get_stats(ctx, &stats), OFTAWQ_OK);
  ck_assert_uint_eq(stats.programs_from_binary, 1);
  oftawq_context_destroy(ctx);
  free(key2);
  free(key3);
  remove_tree(dir);
  free(dir);
}
END_TEST

static void count_tuned(void *user, const char *device, const char *entry)
{
  (void)device;
  (void)entry;
  ++*(int *)user;
}

/* The tuning database of the cache folder, import, and `info`'s summary of the folder. */
START_TEST(tuning_database)
{
  char *dir = tu_tempdir("tunedb"), exported[4200], db[4200];
  oftawq_context *ctx = tu_context(dir);
  oftawq_context_stats stats;
  oftawq_cache_summary summary;
  int seen = 0;
  snprintf(exported, sizeof exported, "%s/exported", dir);
  ck_assert_int_eq(oftawq_tune_export(ctx, exported), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_tune_import(ctx, exported), OFTAWQ_OK); /* saved into the cache folder */
  oftawq_context_destroy(ctx);
  only_entry(dir, "tune-", db, sizeof db);
  make_special(db, kinds[_i]);
  make_special(exported, kinds[_i]);
  ctx = tu_context(dir);
  oftawq_context_stats_init(&stats);
  ck_assert_int_eq(oftawq_context_get_stats(ctx, &stats), OFTAWQ_OK);
  ck_assert_uint_eq(stats.tuning_rejected, 1);
  ck_assert_int_eq(oftawq_tune_import(ctx, exported), OFTAWQ_E_FORMAT);
  oftawq_context_destroy(ctx);
  oftawq_cache_summary_init(&summary);
  ck_assert_int_eq(oftawq_cache_summarize(dir, &summary), OFTAWQ_OK);
  ck_assert_uint_eq(summary.tuning_entries, 0);
  ck_assert_int_eq(oftawq_cache_tuning(dir, count_tuned, &seen), OFTAWQ_OK);
  ck_assert_int_eq(seen, 0);
  remove_tree(dir);
  free(dir);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("inputs");
  TCase *files = tcase_create("files"), *dev = tcase_create("device");
  tcase_add_loop_test(files, reader_refuses_what_is_not_a_regular_file, 0, 3);
  tcase_add_test(files, reader_reports_devices_links_missing_and_large_files);
  tcase_add_loop_test(files, safetensors_input, 0, 3);
  tcase_add_loop_test(files, model_folder_files, 0, 9);
  tcase_add_loop_test(files, adapter_folder_files, 0, 6);
  suite_add_tcase(s, files);
  tcase_set_timeout(dev, 60);
  tcase_add_loop_test(dev, program_cache_entry, 0, 3);
  tcase_add_test(dev, program_cache_entry_of_another_program);
  tcase_add_loop_test(dev, kernel_source_override, 0, 3);
  tcase_add_loop_test(dev, tuning_database, 0, 3);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
