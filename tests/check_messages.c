/* check_messages.c: what the library says - every message one escaped line whatever a file or caller put in
 * it, and warnings that are true and given once (the Cayley-Neumann divergence, adjusted block sizes). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oftawq.h"
#include "common/ref.h"
#include "testutil.h"

#define WHY 1024

static void expect_escape(const char *in, const char *out)
{
  char buf[256];
  size_t needed = 0;
  ck_assert_int_eq(oftawq_escape(in, buf, sizeof buf, &needed), OFTAWQ_OK);
  ck_assert_str_eq(buf, out);
  ck_assert_uint_eq(needed, strlen(out));
}

START_TEST(escape_rules)
{
  char buf[8], twice[256], once[256];
  size_t needed = 99;
  expect_escape("plain text: a/b.c [1, 2]", "plain text: a/b.c [1, 2]");
  expect_escape("a\nb\rc\td", "a\\nb\\rc\\td");
  expect_escape("\x1b[2J\x7f\x01", "\\x1b[2J\\x7f\\x01");
  expect_escape("caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"); /* printable UTF-8 stays */
  expect_escape("\xff\xc3", "\\xff\\xc3");                             /* invalid, and cut short */
  expect_escape("\xc2\x85\xc2\x9b", "\\u0085\\u009b");                 /* C1 NEL, CSI */
  expect_escape("a\xe2\x80\xa8" "b\xe2\x80\xae" "c", "a\\u2028b\\u202ec"); /* line separator, right-to-left override */
  expect_escape("\xed\xa0\x80", "\\xed\\xa0\\x80");                    /* a surrogate is not UTF-8 */
  /* escaped text escapes to itself */
  oftawq_escape("x\n\x1b\xff\xc2\x85", once, sizeof once, NULL);
  oftawq_escape(once, twice, sizeof twice, NULL);
  ck_assert_str_eq(once, twice);
  /* truncation never splits an escape, and the full length is still reported */
  ck_assert_int_eq(oftawq_escape("ab\ncd", buf, 4, &needed), OFTAWQ_OK);
  ck_assert_str_eq(buf, "ab");
  ck_assert_uint_eq(needed, 6);
  ck_assert_int_eq(oftawq_escape("ab", NULL, 0, &needed), OFTAWQ_OK);
  ck_assert_uint_eq(needed, 2);
  ck_assert_int_eq(oftawq_escape(NULL, buf, sizeof buf, &needed), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_str_eq(buf, "");
  ck_assert_uint_eq(needed, 0);
  ck_assert_int_eq(oftawq_escape("a", NULL, 4, NULL), OFTAWQ_E_INVALID_ARGUMENT);
}
END_TEST

/* A crafted tensor name reaches a message: the `why` of a file function stays one line. */
START_TEST(file_messages_are_one_line)
{
  static const char header[] = "{\"a\\noftawq: all good\\u001b[2J\": {\"dtype\": \"F32\", \"shape\": [3], "
                               "\"data_offsets\": [0, 8]}}";
  char *dir = tu_tempdir("inject"), path[4200], why[WHY];
  unsigned char len[8] = {0};
  oftawq_safetensors *st = NULL;
  FILE *f;
  len[0] = (unsigned char)(sizeof header - 1);
  snprintf(path, sizeof path, "%s/x.safetensors", dir);
  ck_assert_ptr_nonnull(f = fopen(path, "wb"));
  fwrite(len, 1, 8, f);
  fwrite(header, 1, sizeof header - 1, f);
  fwrite("\0\0\0\0\0\0\0\0", 1, 8, f);
  fclose(f);
  ck_assert_int_eq(oftawq_safetensors_open(path, &st, why, sizeof why), OFTAWQ_E_FORMAT);
  ck_assert_ptr_null(strchr(why, '\n'));
  ck_assert_ptr_null(strchr(why, '\x1b'));
  ck_assert_msg(strstr(why, "tensor 'a\\noftawq: all good\\x1b[2J'") != NULL, "%s", why);
  remove(path);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

/* A module name from the caller, in the context's last error; a device selector in the log. */
START_TEST(context_messages_are_one_line)
{
  oftawq_context *ctx = tu_context(NULL), *none = NULL;
  oftawq_context_options opt;
  oftawq_layer *layer = NULL;
  char *model = tu_srcpath("tests/corpus/good/model");
  tu_log log;
  ck_assert_int_eq(oftawq_layer_load(ctx, model, "x\n\x1b[2Joftawq: all good", NULL, NULL, 0, &layer),
                   OFTAWQ_E_NOT_FOUND);
  ck_assert_ptr_null(strchr(oftawq_context_last_error(ctx), '\n'));
  ck_assert_msg(strstr(oftawq_context_last_error(ctx), "no module 'x\\n\\x1b[2Joftawq: all good'") != NULL, "%s",
                oftawq_context_last_error(ctx));
  oftawq_context_destroy(ctx);
  memset(&log, 0, sizeof log);
  oftawq_context_options_init(&opt);
  opt.device = "zz\noftawq: all good";
  opt.log = tu_log_fn;
  opt.log_user = &log;
  ck_assert_int_eq(oftawq_context_create(&opt, &none), OFTAWQ_E_NO_DEVICE);
  ck_assert_int_eq(log.errors, 1);
  ck_assert_ptr_null(strchr(log.last, '\n'));
  ck_assert_msg(strstr(log.last, "selector 'zz\\noftawq: all good'") != NULL, "%s", log.last);
  free(model);
}
END_TEST

/* One 32 x 32 block of N(0, sigma^2) weights (Box-Muller over the test generator). */
static float *gaussian_block(double sigma, uint64_t seed)
{
  const int n = 32 * 31 / 2;
  float *w = malloc(n * sizeof *w);
  tu_rng r;
  int i;
  tu_rng_seed(&r, seed);
  for (i = 0; i < n; i++) {
    double u1 = (tu_rng_u32(&r) + 1.0) / 4294967297.0, u2 = tu_rng_u32(&r) / 4294967296.0;
    w[i] = (float)(sigma * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
  }
  return w;
}

static double frobenius(const float *w, int n)
{
  double ss = 0;
  int i;
  for (i = 0; i < n; i++) ss += (double)w[i] * w[i];
  return sqrt(2 * ss);
}

/* Issue 14 item 7: a random 32 x 32 block with sigma 0.05 has |Q|_F ~ 1.6 (the old warning fired) but |Q|_2 ~ 0.6,
 * where the series converges. The estimate is a lower bound close to |Q|_2 (checked against 2000 iterations). */
START_TEST(spectral_norm_estimate)
{
  float *w = gaussian_block(0.05, 7);
  double scratch[64], estimate, exact;
  ck_assert_double_ge(frobenius(w, 496), 1.4);
  estimate = oftawq__ref_skew_norm2_lower(w, 32, 30, scratch);
  exact = oftawq__ref_skew_norm2_lower(w, 32, 2000, scratch);
  ck_assert_double_le(estimate, exact * (1 + 1e-12));
  ck_assert_double_ge(estimate, 0.97 * exact);
  ck_assert_double_ge(exact, 0.45);
  ck_assert_double_le(exact, 0.7);
  free(w);
}
END_TEST

START_TEST(neumann_warning_is_true_and_once)
{
  oftawq_context *ctx = NULL;
  oftawq_oft_config c;
  oftawq_oft *oft = NULL;
  float *fine = gaussian_block(0.05, 7), *divergent = gaussian_block(0.15, 8);
  tu_log log;
  ctx = tu_context_logged(&log);
  oftawq_oft_config_init(&c); /* b = 32 on in_features 32: one block, Neumann */
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 32, fine, 496, &oft), OFTAWQ_OK);
  ck_assert_msg(log.warnings == 0, "|Q|_F >= 1 but |Q|_2 < 1 warned: %s", log.last);
  ck_assert_int_eq(oftawq_oft_set_weights(oft, divergent, 496), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_msg(strstr(log.last, "OFT block 0: the spectral norm of Q is at least 1.") &&
                  strstr(log.last, "truncated to 5 terms, as PEFT computes and trains it"),
                "%s", log.last);
  ck_assert_int_eq(oftawq_oft_set_weights(oft, divergent, 496), OFTAWQ_OK); /* once per adapter */
  ck_assert_int_eq(log.warnings, 1);
  oftawq_oft_destroy(oft);
  c.use_cayley_neumann = 0; /* exact Cayley converges for every skew Q: no warning */
  ck_assert_int_eq(oftawq_oft_create(ctx, &c, 32, divergent, 496, &oft), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, 1);
  oftawq_oft_destroy(oft);
  oftawq_context_destroy(ctx);
  free(fine);
  free(divergent);
}
END_TEST

/* The "Adjusted" warning came twice through oftawq_layer_load (the loader resolved the config, then the adapter). */
START_TEST(adjusted_warning_once)
{
  oftawq_context *ctx = NULL;
  oftawq_layer *layer = NULL;
  char *model = tu_srcpath("tests/corpus/good/model"), *adapter = tu_srcpath("tests/corpus/adapter_adjusted/adapter");
  const char *dirs[1];
  tu_log log;
  ctx = tu_context_logged(&log);
  dirs[0] = adapter;
  ck_assert_msg(oftawq_layer_load(ctx, model, "model.layers.0.mlp.up_proj", dirs, NULL, 1, &layer) == OFTAWQ_OK, "%s",
                oftawq_context_last_error(ctx));
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_str_eq(log.last, "Invalid `oft_block_size` (10)! Adjusted `oft_block_size` to (8) for in_features 64.");
  oftawq_layer_destroy(layer);
  oftawq_context_destroy(ctx);
  free(model);
  free(adapter);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("messages");
  TCase *text = tcase_create("text"), *dev = tcase_create("device");
  tcase_add_test(text, escape_rules);
  tcase_add_test(text, file_messages_are_one_line);
  tcase_add_test(text, spectral_norm_estimate);
  suite_add_tcase(s, text);
  tcase_set_timeout(dev, 60);
  tcase_add_test(dev, context_messages_are_one_line);
  tcase_add_test(dev, neumann_warning_is_true_and_once);
  tcase_add_test(dev, adjusted_warning_once);
  suite_add_tcase(s, dev);
  return tu_run(s);
}
