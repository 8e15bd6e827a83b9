/* check_files.c: safetensors, model and adapter folders, and `oftawq forward` on real-format PEFT/AutoAWQ files. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oftawq.h"
#include "common/ref.h"
#include "files/safetensors.h"
#include "testutil.h"

#define REAL_MODULE "model.layers.0.self_attn.q_proj"
#define CORPUS_MODULE "model.layers.0.mlp.up_proj"

START_TEST(writer_round_trip)
{
  char *dir = tu_tempdir("st"), path[4200];
  float f32[6] = {1, -2, 3.5f, 0, INFINITY, -0.0f};
  uint16_t f16[3] = {0x3c00, 0xc000, 0x7e00};
  int32_t i32[4] = {-1, 0, 7, 2147483647};
  oftawq_tensor t[4], r;
  oftawq_safetensors *st = NULL;
  size_t i;
  for (i = 0; i < 4; i++) oftawq_tensor_init(&t[i]);
  t[0].name = "a.f32";
  t[0].dtype = OFTAWQ_T_F32;
  t[0].ndim = 2;
  t[0].shape[0] = 2;
  t[0].shape[1] = 3;
  t[0].data = f32;
  t[0].nbytes = sizeof f32;
  t[1].name = "b.f16";
  t[1].dtype = OFTAWQ_T_F16;
  t[1].ndim = 1;
  t[1].shape[0] = 3;
  t[1].data = f16;
  t[1].nbytes = sizeof f16;
  t[2].name = "c.i32.scalar";
  t[2].dtype = OFTAWQ_T_I32;
  t[2].ndim = 0;
  t[2].data = i32;
  t[2].nbytes = 4;
  t[3].name = "d.empty";
  t[3].dtype = OFTAWQ_T_BF16;
  t[3].ndim = 2;
  t[3].shape[0] = 0;
  t[3].shape[1] = 5;
  t[3].nbytes = 0;
  snprintf(path, sizeof path, "%s/t.safetensors", dir);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 4, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_open(path, &st, NULL, 0), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_safetensors_count(st), 4);
  ck_assert_str_eq(oftawq_safetensors_metadata(st, "format"), "pt");
  ck_assert_ptr_null(oftawq_safetensors_metadata(st, "nope"));
  for (i = 0; i < 4; i++) {
    oftawq_tensor_init(&r);
    ck_assert_int_eq(oftawq_safetensors_find(st, t[i].name, &r), OFTAWQ_OK);
    ck_assert_int_eq(r.dtype, t[i].dtype);
    ck_assert_int_eq(r.ndim, t[i].ndim);
    ck_assert_int_eq(memcmp(r.shape, t[i].shape, sizeof r.shape), 0);
    ck_assert_uint_eq(r.nbytes, t[i].nbytes);
    if (r.nbytes) ck_assert_int_eq(memcmp(r.data, t[i].data, r.nbytes), 0);
  }
  oftawq_tensor_init(&r);
  ck_assert_int_eq(oftawq_safetensors_find(st, "zz", &r), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_safetensors_get(st, 4, &r), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_safetensors_close(st);
  oftawq_safetensors_close(NULL);

  /* disagreeing bytes: an error and no file */
  snprintf(path, sizeof path, "%s/bad.safetensors", dir);
  t[0].nbytes = 20;
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 1, NULL, 0), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_ne(access(path, F_OK), 0);
  /* an unwritable place: an error and no temporary left */
  snprintf(path, sizeof path, "%s/missing/x.safetensors", dir);
  t[0].nbytes = sizeof f32;
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 1, NULL, 0), OFTAWQ_E_IO);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(parser_checks_in_memory)
{
  /* a few images parsed from memory, as the fuzzer does */
  static const char ok[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  unsigned char buf[256];
  oftawq_safetensors *st = NULL;
  char why[256];
  size_t n = sizeof ok - 1;
  int k;
  memset(buf, 0, sizeof buf);
  for (k = 0; k < 8; k++) buf[k] = (unsigned char)(n >> (8 * k));
  memcpy(buf + 8, ok, n);
  ck_assert_int_eq(oftawq__safetensors_parse(buf, 8 + n + 4, &st, why, sizeof why), OFTAWQ_OK);
  oftawq_safetensors_close(st);
  ck_assert_int_eq(oftawq__safetensors_parse(buf, 8 + n + 3, &st, why, sizeof why), OFTAWQ_E_FORMAT);
  ck_assert_ptr_nonnull(strstr(why, "run past"));
  ck_assert_ptr_null(st);
  ck_assert_int_eq(oftawq__safetensors_parse(buf, 5, &st, why, sizeof why), OFTAWQ_E_FORMAT);
  { /* found by the fuzzer: a repeated __metadata__ (and any repeated key) is refused */
    static const char dup[] = "{\"__metadata__\":{\"a\":\"b\"},\"__metadata__\":{\"a\":\"b\"}}";
    unsigned char img[128];
    size_t dn = sizeof dup - 1;
    memset(img, 0, sizeof img);
    for (k = 0; k < 8; k++) img[k] = (unsigned char)(dn >> (8 * k));
    memcpy(img + 8, dup, dn);
    ck_assert_int_eq(oftawq__safetensors_parse(img, 8 + dn, &st, why, sizeof why), OFTAWQ_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(why, "twice"));
  }
  buf[7] = 0x80; /* header size with the top bit set */
  ck_assert_int_eq(oftawq__safetensors_parse(buf, sizeof buf, &st, why, sizeof why), OFTAWQ_E_FORMAT);
}
END_TEST

/* Every corpus case that names a model or adapter folder fails in oftawq_layer_load with the expected detail. */
START_TEST(corpus_through_the_library)
{
  char *tsv = tu_srcpath("tests/corpus/cases.tsv"), line[1024];
  FILE *f = fopen(tsv, "r");
  oftawq_context *ctx = tu_context(NULL);
  int checked = 0;
  ck_assert_ptr_nonnull(f);
  while (fgets(line, sizeof line, f)) {
    char *name = line, *args, *expect, rel[1100], *model, *adapter, *x;
    struct stat st;
    oftawq_layer *layer = NULL;
    if (line[0] == '#') continue;
    line[strcspn(line, "\n")] = '\0';
    args = strchr(name, '\t');
    *args++ = '\0';
    expect = strchr(args, '\t');
    *expect++ = '\0';
    snprintf(rel, sizeof rel, "tests/corpus/%s/model", name);
    model = tu_srcpath(rel);
    snprintf(rel, sizeof rel, "tests/corpus/%s/adapter", name);
    adapter = tu_srcpath(rel);
    snprintf(rel, sizeof rel, "tests/corpus/%s/x.safetensors", name);
    x = tu_srcpath(rel);
    if (stat(model, &st) == 0 || stat(adapter, &st) == 0) {
      char *good_model = tu_srcpath("tests/corpus/good/model");
      const char *dirs[1];
      int has_model = stat(model, &st) == 0, has_adapter = stat(adapter, &st) == 0;
      dirs[0] = adapter;
      ck_assert_int_lt(oftawq_layer_load(ctx, has_model ? model : good_model, CORPUS_MODULE, dirs, NULL,
                                         has_adapter ? 1 : 0, &layer),
                       0);
      ck_assert_ptr_null(layer);
      ck_assert_msg(strstr(oftawq_context_last_error(ctx), expect) != NULL, "%s: '%s' lacks '%s'", name,
                    oftawq_context_last_error(ctx), expect);
      free(good_model);
      checked++;
    } else if (stat(x, &st) == 0) {
      oftawq_safetensors *in = NULL;
      oftawq_tensor t;
      oftawq_tensor_init(&t);
      ck_assert_int_eq(oftawq_safetensors_open(x, &in, NULL, 0), OFTAWQ_OK); /* well-formed, wrong content */
      if (oftawq_safetensors_find(in, "x", &t) == OFTAWQ_OK)
        ck_assert(t.dtype != OFTAWQ_T_F32 || t.shape[t.ndim - 1] != 64);
      oftawq_safetensors_close(in);
      checked++;
    }
    free(model);
    free(adapter);
    free(x);
  }
  fclose(f);
  free(tsv);
  ck_assert_int_ge(checked, 30);
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(model_folder_listing)
{
  char *dir = tu_srcpath("tests/corpus/good/model"), why[256];
  oftawq_model_file *m = NULL;
  oftawq_awq_tensors t;
  ck_assert_int_eq(oftawq_model_file_open(dir, &m, why, sizeof why), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_file_group_size(m), 32);
  /* gate_proj is in modules_to_not_convert and lm_head is not quantised: one AWQ module */
  ck_assert_uint_eq(oftawq_model_file_module_count(m), 1);
  ck_assert_str_eq(oftawq_model_file_module_name(m, 0), CORPUS_MODULE);
  ck_assert_ptr_null(oftawq_model_file_module_name(m, 1));
  oftawq_awq_tensors_init(&t);
  ck_assert_int_eq(oftawq_model_file_module(m, CORPUS_MODULE, &t, why, sizeof why), OFTAWQ_OK);
  ck_assert_int_eq(t.K, 64);
  ck_assert_int_eq(t.N, 32);
  ck_assert_int_eq(t.G, 32);
  ck_assert_ptr_nonnull(t.bias);
  ck_assert_int_eq(oftawq_model_file_module(m, "lm_head", &t, why, sizeof why), OFTAWQ_E_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(why, "not quantised"));
  oftawq_model_file_close(m);
  oftawq_model_file_close(NULL);
  free(dir);
}
END_TEST

/* A file in `dir` with the given bytes. */
static void put_file(const char *dir, const char *name, const void *data, size_t n)
{
  char path[4200];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ck_assert_ptr_nonnull(f = fopen(path, "wb"));
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* A weights file holding module `module` (K = 16, N = 8, G = 16) whose qweight words all equal `fill`. */
static void put_module(const char *dir, const char *file, const char *module, int32_t fill)
{
  static int32_t qw[16], qz[1];
  static uint16_t sc[8];
  char names[3][128], path[4200];
  oftawq_tensor t[3];
  size_t i;
  for (i = 0; i < 16; i++) qw[i] = fill;
  for (i = 0; i < 8; i++) sc[i] = 0x3c00;
  for (i = 0; i < 3; i++) oftawq_tensor_init(&t[i]);
  snprintf(names[0], sizeof names[0], "%s.qweight", module);
  snprintf(names[1], sizeof names[1], "%s.qzeros", module);
  snprintf(names[2], sizeof names[2], "%s.scales", module);
  t[0].name = names[0], t[0].dtype = OFTAWQ_T_I32, t[0].ndim = 2, t[0].shape[0] = 16, t[0].shape[1] = 1;
  t[0].data = qw, t[0].nbytes = sizeof qw;
  t[1].name = names[1], t[1].dtype = OFTAWQ_T_I32, t[1].ndim = 2, t[1].shape[0] = 1, t[1].shape[1] = 1;
  t[1].data = qz, t[1].nbytes = sizeof qz;
  t[2].name = names[2], t[2].dtype = OFTAWQ_T_F16, t[2].ndim = 2, t[2].shape[0] = 1, t[2].shape[1] = 8;
  t[2].data = sc, t[2].nbytes = sizeof sc;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 3, NULL, 0), OFTAWQ_OK);
}

static const char awq_config[] =
  "{\"model_type\": \"llama\", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
  "\"group_size\": 16, \"zero_point\": true, \"version\": \"gemm\"}}";

/* Opens the folder and returns the first qweight word of `module` (or the status, negated into why). */
static oftawq_status open_and_read(const char *dir, const char *module, int32_t *word, char *why, size_t cap)
{
  oftawq_model_file *m = NULL;
  oftawq_awq_tensors t;
  oftawq_status st = oftawq_model_file_open(dir, &m, why, cap);
  if (st < 0) return st;
  oftawq_awq_tensors_init(&t);
  st = oftawq_model_file_module(m, module, &t, why, cap);
  if (st == OFTAWQ_OK) memcpy(word, t.qweight, 4);
  oftawq_model_file_close(m);
  return st;
}

/* Sharded folders: the index's weight_map says which shard holds each tensor; nothing else is read. */
START_TEST(shards_follow_the_index)
{
  static const char index[] = "{\"metadata\": {}, \"weight_map\": {"
    "\"a.qweight\": \"model-00001-of-00002.safetensors\", \"a.qzeros\": \"model-00001-of-00002.safetensors\", "
    "\"a.scales\": \"model-00001-of-00002.safetensors\", \"b.qweight\": \"model-00002-of-00002.safetensors\", "
    "\"b.qzeros\": \"model-00002-of-00002.safetensors\", \"b.scales\": \"model-00002-of-00002.safetensors\"}}";
  char *dir = tu_tempdir("shards"), why[512], path[4200];
  oftawq_model_file *m = NULL;
  int32_t word = 0;
  put_file(dir, "config.json", awq_config, sizeof awq_config - 1);
  put_module(dir, "model-00001-of-00002.safetensors", "a", 0x11111111);
  put_module(dir, "model-00002-of-00002.safetensors", "b", 0x22222222);
  put_file(dir, "model.safetensors.index.json", index, sizeof index - 1);
  /* a stale copy that sorts first, and a stray broken file: neither is read */
  put_module(dir, "a_old.safetensors", "a", 0x77777777);
  put_file(dir, "zz_broken.safetensors", "garbage", 7);
  ck_assert_msg(open_and_read(dir, "a", &word, why, sizeof why) == OFTAWQ_OK, "%s", why);
  ck_assert_uint_eq((uint32_t)word, 0x11111111u);
  ck_assert_int_eq(open_and_read(dir, "b", &word, why, sizeof why), OFTAWQ_OK);
  ck_assert_uint_eq((uint32_t)word, 0x22222222u);
  ck_assert_int_eq(oftawq_model_file_open(dir, &m, why, sizeof why), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_model_file_module_count(m), 2);
  oftawq_model_file_close(m);

  /* the index names a shard that does not hold the tensor */
  put_module(dir, "model-00002-of-00002.safetensors", "c", 0x22222222);
  ck_assert_int_eq(open_and_read(dir, "b", &word, why, sizeof why), OFTAWQ_E_FORMAT);
  ck_assert_msg(strstr(why, "does not hold it") != NULL, "%s", why);
  put_module(dir, "model-00002-of-00002.safetensors", "b", 0x22222222);

  /* both a single file and an index: ambiguous */
  put_module(dir, "model.safetensors", "a", 0x33333333);
  ck_assert_int_eq(open_and_read(dir, "a", &word, why, sizeof why), OFTAWQ_E_FORMAT);
  ck_assert_msg(strstr(why, "ambiguous") != NULL, "%s", why);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  remove(path);

  /* a NUL in a shard name is refused, not cut short */
  {
    static const char nul[] = "{\"weight_map\": {\"a.qweight\": \"model-00001-of-00002.safetensors\\u0000junk\"}}";
    put_file(dir, "model.safetensors.index.json", nul, sizeof nul - 1);
    ck_assert_int_eq(open_and_read(dir, "a", &word, why, sizeof why), OFTAWQ_E_FORMAT);
    ck_assert_msg(strstr(why, "NUL") != NULL, "%s", why);
  }
  /* a path, a duplicate, an empty map */
  {
    static const char *const bad[][2] = {
      {"{\"weight_map\": {\"a.qweight\": \"../model-00001-of-00002.safetensors\"}}", "not a file of the folder"},
      {"{\"weight_map\": {\"a.qweight\": 3}}", "not a file of the folder"},
      {"{\"weight_map\": {\"a.qweight\": \"model-00001-of-00002.safetensors\", "
       "\"a.qweight\": \"model-00002-of-00002.safetensors\"}}", "listed twice"},
      {"{\"weight_map\": {}}", "empty"},
      {"{\"weights\": {}}", "no weight_map"},
      {"[1]", "not an object"},
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      put_file(dir, "model.safetensors.index.json", bad[i][0], strlen(bad[i][0]));
      ck_assert_int_eq(open_and_read(dir, "a", &word, why, sizeof why), OFTAWQ_E_FORMAT);
      ck_assert_msg(strstr(why, bad[i][1]) != NULL, "%s lacks %s", why, bad[i][1]);
    }
  }
  /* an unreadable index is an error, never skipped (here a folder where the index should be) */
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  remove(path);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  ck_assert_int_lt(open_and_read(dir, "a", &word, why, sizeof why), 0);
  ck_assert_msg(strstr(why, "index.json") != NULL, "%s", why);
  rmdir(path);

  /* no index: several weight files are ambiguous, model.safetensors is the one, a single file is used */
  ck_assert_int_eq(open_and_read(dir, "a", &word, why, sizeof why), OFTAWQ_E_FORMAT);
  ck_assert_msg(strstr(why, ".safetensors files") != NULL, "%s", why);
  put_module(dir, "model.safetensors", "a", 0x44444444);
  ck_assert_int_eq(open_and_read(dir, "a", &word, why, sizeof why), OFTAWQ_OK);
  ck_assert_uint_eq((uint32_t)word, 0x44444444u);
  tu_rmdir(dir);
  free(dir);
  dir = tu_tempdir("single");
  put_file(dir, "config.json", awq_config, sizeof awq_config - 1);
  put_module(dir, "awq_model_w4_g16.safetensors", "a", 0x55555555);
  ck_assert_int_eq(open_and_read(dir, "a", &word, why, sizeof why), OFTAWQ_OK);
  ck_assert_uint_eq((uint32_t)word, 0x55555555u);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(adapter_defaults_and_legacy_version)
{
  char *dir = tu_tempdir("adapter"), path[4200];
  FILE *f;
  oftawq_adapter_file *a = NULL;
  oftawq_oft_config c;
  oftawq_oft_shape s;
  oftawq_tensor t;
  float w[4 * 120];
  const float *got;
  size_t rows, cols;
  uint16_t wh[4 * 120];
  size_t i;
  /* a PEFT 0.16/0.17 config: no peft_version, no use_cayley_neumann (defaults to true) */
  snprintf(path, sizeof path, "%s/adapter_config.json", dir);
  f = fopen(path, "w");
  fputs("{\"peft_type\": \"OFT\", \"r\": 0, \"oft_block_size\": 16}", f);
  fclose(f);
  for (i = 0; i < 4 * 120; i++) {
    w[i] = (float)i * 1e-4f;
    wh[i] = oftawq__float_to_half(w[i]);
  }
  oftawq_tensor_init(&t);
  t.name = "base_model.model.m.oft_R.weight";
  t.dtype = OFTAWQ_T_F16;
  t.ndim = 2;
  t.shape[0] = 4;
  t.shape[1] = 120;
  t.data = wh;
  t.nbytes = sizeof wh;
  snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
  ck_assert_int_eq(oftawq_safetensors_write(path, &t, 1, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_adapter_open(dir, &a, NULL, 0), OFTAWQ_OK);
  oftawq_oft_config_init(&c);
  ck_assert_int_eq(oftawq_adapter_config(a, &c), OFTAWQ_OK);
  ck_assert_int_eq(c.use_cayley_neumann, 1);
  ck_assert_int_eq(c.num_cayley_neumann_terms, 5);
  ck_assert(c.eps == 6e-5);
  ck_assert_int_eq(c.init_weights, 1);
  oftawq_oft_shape_init(&s);
  ck_assert_int_eq(oftawq_oft_resolve(&c, 64, NULL, NULL, &s, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(s.legacy_neumann, 1); /* no peft_version: the pre-0.18 formula */
  ck_assert_int_eq(oftawq_adapter_weights(a, "m", &got, &rows, &cols, NULL, 0), OFTAWQ_OK);
  ck_assert_uint_eq(rows, 4);
  ck_assert_uint_eq(cols, 120);
  for (i = 0; i < 4 * 120; i++) ck_assert(got[i] == oftawq__half_to_float(wh[i]));
  ck_assert_int_eq(oftawq_adapter_weights(a, "other", &got, &rows, &cols, NULL, 0), OFTAWQ_E_NOT_FOUND);
  oftawq_adapter_close(a);
  oftawq_adapter_close(NULL);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

/* Compares tensor 'y' of two files: fp16-rounded outputs of fp32 sums agree to a few fp16 ulps of their scale. */
static void expect_same_y(const char *got_path, const char *want_path)
{
  oftawq_safetensors *g = NULL, *w = NULL;
  oftawq_tensor tg, tw;
  size_t n, i;
  double rms = 0;
  ck_assert_int_eq(oftawq_safetensors_open(got_path, &g, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_open(want_path, &w, NULL, 0), OFTAWQ_OK);
  oftawq_tensor_init(&tg);
  oftawq_tensor_init(&tw);
  ck_assert_int_eq(oftawq_safetensors_find(g, "y", &tg), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_find(w, "y", &tw), OFTAWQ_OK);
  ck_assert_int_eq(tg.dtype, tw.dtype);
  ck_assert_int_eq(tg.ndim, tw.ndim);
  ck_assert_int_eq(memcmp(tg.shape, tw.shape, sizeof tg.shape), 0);
  n = tw.nbytes / (tw.dtype == OFTAWQ_T_F16 ? 2 : 4);
  for (i = 0; i < n; i++) {
    double v = tw.dtype == OFTAWQ_T_F16 ? oftawq__half_to_float(((const uint16_t *)tw.data)[i]) : ((const float *)tw.data)[i];
    rms += v * v;
  }
  rms = sqrt(rms / (double)n);
  for (i = 0; i < n; i++) {
    double a, b;
    if (tw.dtype == OFTAWQ_T_F16) {
      a = oftawq__half_to_float(((const uint16_t *)tg.data)[i]);
      b = oftawq__half_to_float(((const uint16_t *)tw.data)[i]);
    } else {
      a = ((const float *)tg.data)[i];
      b = ((const float *)tw.data)[i];
    }
    ck_assert_msg(fabs(a - b) <= 2e-3 * (fabs(b) + rms), "y[%zu]: %g vs PEFT/AutoAWQ %g", i, a, b);
  }
  oftawq_safetensors_close(g);
  oftawq_safetensors_close(w);
}

/* Runs the CLI; returns its exit status. */
static int run_cli(const char *args)
{
  const char *b = getenv("OFTAWQ_TEST_BUILDDIR");
  char cmd[8192];
  int rc;
  snprintf(cmd, sizeof cmd, "'%s/tools/oftawq' %s", b && *b ? b : ".", args);
  rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const struct {
  const char *name, *adapters;
} real_cases[] = {
  {"neumann_f32", "--adapter ADIR/adapter_a:a --active a"},
  {"two_ab_f16", "--adapter ADIR/adapter_a:a --adapter ADIR/adapter_b:b --active a,b"},
};

static char *replace_all(const char *s, const char *from, const char *to)
{
  char *out = malloc(strlen(s) * 4 + strlen(to) * 8 + 1), *o = out;
  size_t lf = strlen(from);
  while (*s) {
    if (!strncmp(s, from, lf)) {
      o += sprintf(o, "%s", to);
      s += lf;
    } else {
      *o++ = *s++;
    }
  }
  *o = '\0';
  return out;
}

START_TEST(forward_reproduces_python_written_files)
{
  size_t i;
  for (i = 0; i < sizeof real_cases / sizeof real_cases[0]; i++) {
    char rel[256], args[8192], *dir, *adapters, *tmp = tu_tempdir("fwd");
    snprintf(rel, sizeof rel, "tests/fixtures/real/%s", real_cases[i].name);
    dir = tu_srcpath(rel);
    adapters = replace_all(real_cases[i].adapters, "ADIR", dir);
    snprintf(args, sizeof args,
             "forward --model '%s/model' --module " REAL_MODULE " --input '%s/x.safetensors' --output '%s/y.safetensors' %s",
             dir, dir, tmp, adapters);
    ck_assert_int_eq(run_cli(args), 0);
    snprintf(rel, sizeof rel, "%s/y.safetensors", tmp);
    snprintf(args, sizeof args, "%s/y.safetensors", dir);
    expect_same_y(rel, args);
    free(dir);
    free(adapters);
    tu_rmdir(tmp);
    free(tmp);
  }
}
END_TEST

/* Rewrites every tensor of `from` into `to` with the library's writer. */
static void rewrite(const char *from, const char *to)
{
  oftawq_safetensors *st = NULL;
  oftawq_tensor *t;
  size_t n, i;
  ck_assert_int_eq(oftawq_safetensors_open(from, &st, NULL, 0), OFTAWQ_OK);
  n = oftawq_safetensors_count(st);
  t = calloc(n, sizeof *t);
  for (i = 0; i < n; i++) {
    oftawq_tensor_init(&t[i]);
    oftawq_safetensors_get(st, i, &t[i]);
  }
  ck_assert_int_eq(oftawq_safetensors_write(to, t, n, NULL, 0), OFTAWQ_OK);
  free(t);
  oftawq_safetensors_close(st);
}

static void copy_file(const char *from, const char *to)
{
  size_t len = 0;
  char *data = tu_read_file(from, &len);
  FILE *f = fopen(to, "wb");
  ck_assert_ptr_nonnull(data);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  fclose(f);
  free(data);
}

START_TEST(forward_reproduces_library_written_files)
{
  char rel[256], a[4200], b[4200], args[8192], *src = tu_srcpath("tests/fixtures/real/two_ab_f16"),
                                                *tmp = tu_tempdir("lib");
  const char *parts[] = {"model", "adapter_a", "adapter_b"};
  const char *configs[] = {"config.json", "adapter_config.json", "adapter_config.json"};
  const char *weights[] = {"model.safetensors", "adapter_model.safetensors", "adapter_model.safetensors"};
  size_t i;
  for (i = 0; i < 3; i++) {
    snprintf(a, sizeof a, "%s/%s", tmp, parts[i]);
    ck_assert_int_eq(mkdir(a, 0755), 0);
    snprintf(a, sizeof a, "%s/%s/%s", src, parts[i], configs[i]);
    snprintf(b, sizeof b, "%s/%s/%s", tmp, parts[i], configs[i]);
    copy_file(a, b);
    snprintf(a, sizeof a, "%s/%s/%s", src, parts[i], weights[i]);
    snprintf(b, sizeof b, "%s/%s/%s", tmp, parts[i], weights[i]);
    rewrite(a, b);
  }
  snprintf(a, sizeof a, "%s/x.safetensors", src);
  snprintf(b, sizeof b, "%s/x.safetensors", tmp);
  rewrite(a, b);
  snprintf(args, sizeof args,
           "forward --model '%s/model' --module " REAL_MODULE " --input '%s/x.safetensors' --output '%s/y.safetensors' "
           "--adapter '%s/adapter_a:a' --adapter '%s/adapter_b:b' --active a,b",
           tmp, tmp, tmp, tmp, tmp);
  ck_assert_int_eq(run_cli(args), 0);
  snprintf(a, sizeof a, "%s/y.safetensors", tmp);
  snprintf(b, sizeof b, "%s/y.safetensors", src);
  expect_same_y(a, b);
  (void)rel;
  free(src);
  for (i = 0; i < 3; i++) {
    snprintf(a, sizeof a, "%s/%s", tmp, parts[i]);
    tu_rmdir(a);
  }
  tu_rmdir(tmp);
  free(tmp);
}
END_TEST

/* bench --json: the fields SPEC 10 asks for, one result per implementation and point. */
START_TEST(bench_json_report)
{
  char *tmp = tu_tempdir("bench"), args[4400], path[4300];
  char *text;
  cJSON *root, *results, *r, *dev;
  int n = 0, impl_oft = 0, impl_cpu = 0, impl_fma = 0;
  FILE *out;
  char line[512];
  snprintf(path, sizeof path, "%s/b.json", tmp);
  snprintf(args, sizeof args, "bench --shapes 64x64 --tokens 1,3 --group 32 --block 16 --runs 1 --json '%s' >/dev/null",
           path);
  ck_assert_int_eq(run_cli(args), 0);
  text = tu_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  root = cJSON_Parse(text);
  ck_assert_msg(root != NULL, "bench JSON does not parse");
  dev = cJSON_GetObjectItem(root, "device");
  ck_assert(cJSON_IsString(cJSON_GetObjectItem(dev, "name")));
  ck_assert(cJSON_IsString(cJSON_GetObjectItem(dev, "driver_version")));
  ck_assert(cJSON_IsString(cJSON_GetObjectItem(root, "library_version")));
  ck_assert(cJSON_IsBool(cJSON_GetObjectItem(root, "tuned")));
  results = cJSON_GetObjectItem(root, "results");
  ck_assert(cJSON_IsArray(results));
  cJSON_ArrayForEach(r, results)
  {
    static const char *const num[] = {"K",    "N",    "M",      "G",            "b",           "median_s",
                                      "min_s", "runs", "gbps", "gflops", "weight_bytes", "weight_ratio"};
    size_t k;
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(r, "impl")));
    for (k = 0; k < sizeof num / sizeof num[0]; k++)
      ck_assert_msg(cJSON_IsNumber(cJSON_GetObjectItem(r, num[k])), "result lacks %s", num[k]);
    ck_assert(cJSON_GetObjectItem(r, "median_s")->valuedouble >= cJSON_GetObjectItem(r, "min_s")->valuedouble);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "checked")));
    if (!strcmp(cJSON_GetObjectItem(r, "impl")->valuestring, "oft_awq")) impl_oft++;
    if (!strcmp(cJSON_GetObjectItem(r, "impl")->valuestring, "cpu_int4")) {
      impl_cpu++;
      ck_assert(cJSON_GetObjectItem(r, "weight_ratio")->valuedouble == 1.0); /* one pass over the AWQ tensors */
    }
    if (!strcmp(cJSON_GetObjectItem(r, "impl")->valuestring, "fma")) { /* the compute reference */
      impl_fma++;
      ck_assert(cJSON_GetObjectItem(r, "gflops")->valuedouble > 0);
    }
    n++;
  }
  ck_assert_int_eq(impl_oft, 2); /* two token counts */
  ck_assert_int_eq(impl_cpu, 2);
  ck_assert_int_eq(impl_fma, 2);
  ck_assert_int_ge(n, 18);       /* 9+ implementations x 2 points */
  cJSON_Delete(root);
  free(text);
  /* usage errors and a JSON path that cannot be written */
  ck_assert_int_eq(run_cli("bench --runs x 2>/dev/null"), 2);
  ck_assert_int_eq(run_cli("bench --shapes 64x60 2>/dev/null"), 2);
  ck_assert_int_eq(run_cli("bench --json 2>/dev/null"), 2);
  ck_assert_int_eq(run_cli("bench --bogus 1 2>/dev/null"), 2);
  snprintf(args, sizeof args, "bench --shapes 64x64 --group 32 --tokens 1 --runs 1 --json '%s/no/such/b.json' >/dev/null 2>&1",
           tmp);
  ck_assert_int_eq(run_cli(args), 1);
  /* a folder: refused at once, before the device is even opened (nothing measured, nothing printed) */
  snprintf(args, sizeof args, "bench --shapes 4096x4096 --tokens 256 --json '%s' >'%s/out.txt' 2>'%s/err.txt'", tmp, tmp,
           tmp);
  ck_assert_int_eq(run_cli(args), 1);
  snprintf(path, sizeof path, "%s/out.txt", tmp);
  out = fopen(path, "r");
  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_null(fgets(line, sizeof line, out)); /* no benchmark output */
  fclose(out);
  snprintf(path, sizeof path, "%s/err.txt", tmp);
  out = fopen(path, "r");
  ck_assert_ptr_nonnull(fgets(line, sizeof line, out));
  ck_assert_ptr_nonnull(strstr(line, "oftawq: cannot write '"));
  ck_assert_ptr_null(fgets(line, sizeof line, out)); /* one line */
  fclose(out);
  remove(path);
  snprintf(path, sizeof path, "%s/out.txt", tmp);
  remove(path);
  tu_rmdir(tmp);
  free(tmp);
}
END_TEST

START_TEST(info_json_report)
{
  char *tmp = tu_tempdir("info"), args[4400], path[4300], *text;
  cJSON *root, *devs;
  snprintf(path, sizeof path, "%s/info.json", tmp);
  snprintf(args, sizeof args, "info --json --cache-dir '%s' > '%s'", tmp, path);
  ck_assert_int_eq(run_cli(args), 0);
  text = tu_read_file(path, NULL);
  root = cJSON_Parse(text);
  ck_assert_ptr_nonnull(root);
  devs = cJSON_GetObjectItem(root, "devices");
  ck_assert(cJSON_IsArray(devs));
  ck_assert_int_ge(cJSON_GetArraySize(devs), 1);
  ck_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(devs, 0), "opencl_c_version")));
  ck_assert(cJSON_IsArray(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "cache"), "tuned")));
  cJSON_Delete(root);
  free(text);
  remove(path);
  tu_rmdir(tmp);
  free(tmp);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("files");
  TCase *cpu = tcase_create("formats"), *dev = tcase_create("device");
  tcase_add_test(cpu, writer_round_trip);
  tcase_add_test(cpu, parser_checks_in_memory);
  tcase_add_test(cpu, model_folder_listing);
  tcase_add_test(cpu, shards_follow_the_index);
  tcase_add_test(cpu, adapter_defaults_and_legacy_version);
  tcase_set_timeout(dev, 300);
  tcase_add_test(dev, corpus_through_the_library);
  tcase_add_test(dev, forward_reproduces_python_written_files);
  tcase_add_test(dev, forward_reproduces_library_written_files);
  tcase_add_test(dev, bench_json_report);
  tcase_add_test(dev, info_json_report);
  suite_add_tcase(s, cpu);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
