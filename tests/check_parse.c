/* check_parse.c: the safetensors reader and writer against crafted input - near-linear work for huge headers
 * (counted, not timed), the format's strictness beyond JSON's, and a writer that writes only what it reads back. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oftawq.h"
#include "files/safetensors.h"
#include "testutil.h"

#define WHY 1024

/* A safetensors image of `header` (padded with spaces to `pad` extra bytes) and `data_len` zero bytes. */
static unsigned char *image(const char *header, size_t pad, size_t data_len, size_t *len)
{
  size_t h = strlen(header) + pad, i;
  unsigned char *buf = calloc(8 + h + data_len + 1, 1);
  ck_assert_ptr_nonnull(buf);
  for (i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(buf + 8, header, strlen(header));
  memset(buf + 8 + strlen(header), ' ', pad);
  *len = 8 + h + data_len;
  return buf;
}

static unsigned ceil_log2(size_t n)
{
  unsigned k = 0;
  while (((size_t)1 << k) < n) k++;
  return k;
}

/* n tensors named in the worst order for a naive index (descending), each of one F32 at a descending offset;
 * `metadata` keys as many. Returns the header text. */
static char *big_header(size_t n, size_t metadata)
{
  size_t cap = (n + metadata) * 96 + 64, len = 0, i;
  char *h = malloc(cap);
  ck_assert_ptr_nonnull(h);
  len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\": {");
  for (i = 0; i < metadata; i++)
    len += (size_t)snprintf(h + len, cap - len, "%s\"k%08zu\": \"v\"", i ? ", " : "", metadata - i);
  len += (size_t)snprintf(h + len, cap - len, "}");
  for (i = 0; i < n; i++)
    len += (size_t)snprintf(h + len, cap - len,
                            ", \"model.layers.%zu.weight\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [%zu, %zu]}",
                            n - i, 4 * (n - 1 - i), 4 * (n - i));
  snprintf(h + len, cap - len, "}");
  return h;
}

/* Issue 14 item 4: 100k tensors took over 20 s (a quadratic repeated-name check and lookups). Now the work is
 * counted: the comparisons of the name index, the repeated-name check and the overlap check stay within
 * 2 n ceil(log2 n) plus the metadata's share, and every lookup is a binary search. */
START_TEST(hundred_thousand_tensors_parse_in_near_linear_work)
{
  const size_t n = 100000, meta = 20000;
  char *header = big_header(n, meta), name[64], why[WHY];
  size_t len, i, bound = 2 * n * ceil_log2(n) + meta * ceil_log2(meta);
  unsigned char *buf = image(header, 0, 4 * n, &len);
  oftawq_safetensors *st = NULL;
  oftawq_tensor t;
  ck_assert_msg(oftawq__safetensors_parse(buf, len, &st, why, sizeof why) == OFTAWQ_OK, "%s", why);
  ck_assert_uint_eq(oftawq_safetensors_count(st), n);
  ck_assert_msg(oftawq__safetensors_comparisons(st) <= bound, "%zu comparisons for %zu tensors (bound %zu)",
                oftawq__safetensors_comparisons(st), n, bound);
  for (i = 1; i <= n; i += 997) {
    snprintf(name, sizeof name, "model.layers.%zu.weight", i);
    oftawq_tensor_init(&t);
    ck_assert_int_eq(oftawq_safetensors_find(st, name, &t), OFTAWQ_OK);
    ck_assert_str_eq(t.name, name);
    ck_assert_ptr_eq(t.data, buf + 8 + strlen(header) + 4 * (i - 1));
  }
  ck_assert_str_eq(oftawq_safetensors_metadata(st, "k00000001"), "v");
  ck_assert_ptr_null(oftawq_safetensors_metadata(st, "k"));
  oftawq_tensor_init(&t);
  ck_assert_int_eq(oftawq_safetensors_find(st, "model.layers.0.weight", &t), OFTAWQ_E_NOT_FOUND);
  oftawq_safetensors_close(st);
  free(buf);
  free(header);
}
END_TEST

/* The repeated-name check is part of the same sort: the last of 100k names repeating the first is found. */
START_TEST(repeated_name_among_many)
{
  const size_t n = 100000;
  char *header = big_header(n, 0), *end, why[WHY];
  size_t len;
  unsigned char *buf;
  oftawq_safetensors *st = NULL;
  end = strrchr(header, '}');
  snprintf(end, 160, ", \"model.layers.%zu.weight\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}}", n);
  buf = image(header, 0, 4 * n, &len);
  ck_assert_int_eq(oftawq__safetensors_parse(buf, len, &st, why, sizeof why), OFTAWQ_E_FORMAT);
  ck_assert_ptr_null(st);
  ck_assert_msg(strstr(why, "names 'model.layers.100000.weight' twice") != NULL, "%s", why);
  free(buf);
  free(header);
}
END_TEST

/* What the format allows stays allowed: padding with spaces (or JSON's other whitespace), escaped quotes and
 * backslashes in names, UTF-8 names, a literal "\\u0000" text (an escaped backslash, not a NUL). */
START_TEST(valid_headers_still_accepted)
{
  static const char *const headers[] = {
    "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
    "{\"a\\\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}\n\r\t",
    "{\"a\\\\u0000\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
    "{\"\xc3\xa9t\xc3\xa9\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"extra\": 1}}",
    "{\"a\\nb\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
  };
  static const char *const names[] = {"a", "a\"b", "a\\u0000", "\xc3\xa9t\xc3\xa9", "a\nb"};
  size_t i, len;
  for (i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    unsigned char *buf = image(headers[i], 5, 4, &len);
    oftawq_safetensors *st = NULL;
    oftawq_tensor t;
    char why[WHY];
    ck_assert_msg(oftawq__safetensors_parse(buf, len, &st, why, sizeof why) == OFTAWQ_OK, "%zu: %s", i, why);
    oftawq_tensor_init(&t);
    ck_assert_int_eq(oftawq_safetensors_get(st, 0, &t), OFTAWQ_OK);
    ck_assert_str_eq(t.name, names[i]);
    oftawq_safetensors_close(st);
    free(buf);
  }
}
END_TEST

/* Item 9, in memory (the corpus has each as a file): garbage or NUL padding after the object, a NUL inside a
 * name, a control byte, invalid UTF-8, a repeated field, a header that does not start with '{'. */
START_TEST(malformed_headers_refused)
{
  static const struct {
    const char *header, *expect;
  } cases[] = {
    {"{} garbage", "bytes after its JSON object that are not padding"},
    {"{}\0\0\0", "control byte 0x00"},
    {"{\"x\\u0000evil\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}}", "NUL character"},
    {"{\"x\\u0000\": 1}", "NUL character"},
    {"{\"a\x01\": 1}", "control byte 0x01 at offset 3, inside a string"},
    {"{\"\xff\": 1}", "not valid UTF-8"},
    {"{\"\xed\xa0\x80\": 1}", "not valid UTF-8"}, /* a surrogate */
    {"{\"\xc0\xaf\": 1}", "not valid UTF-8"},     /* an overlong '/' */
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"shape\": [2], \"data_offsets\": [0, 4]}}", "'shape' given twice"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", "two non-negative integers"},
    {"[{}]", "does not start with '{'"},
    {"{}{}", "bytes after its JSON object"},
    {"{\"__metadata__\": {}, \"__metadata__\": {}}", "'__metadata__' twice"},
  };
  size_t i, len;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    /* "{}\0\0\0" has NULs: its length is spelled out */
    size_t hlen = i == 1 ? 5 : strlen(cases[i].header);
    unsigned char *buf = calloc(8 + hlen + 8, 1);
    oftawq_safetensors *st = (oftawq_safetensors *)1;
    char why[WHY];
    size_t k;
    for (k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    memcpy(buf + 8, cases[i].header, hlen);
    len = 8 + hlen + 8;
    ck_assert_int_eq(oftawq__safetensors_parse(buf, len, &st, why, sizeof why), OFTAWQ_E_FORMAT);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(why, cases[i].expect) != NULL, "case %zu: '%s' lacks '%s'", i, why, cases[i].expect);
    free(buf);
  }
}
END_TEST

static void tensor(oftawq_tensor *t, const char *name, const float *data, int ndim)
{
  int k;
  oftawq_tensor_init(t);
  t->name = name;
  t->dtype = OFTAWQ_T_F32;
  t->ndim = ndim;
  for (k = 0; k < ndim && k < OFTAWQ_MAX_DIMS; k++) t->shape[k] = 1;
  t->data = data;
  t->nbytes = 4;
}

/* Item 6: ndim 9 read past the shape array; repeated names were written although the reader refuses them.
 * Each refusal happens before anything is written. */
START_TEST(writer_refuses_what_the_reader_would)
{
  char *dir = tu_tempdir("writer"), path[4200], why[WHY];
  float v = 1;
  oftawq_tensor t[2], back;
  oftawq_safetensors *st = NULL;
  snprintf(path, sizeof path, "%s/w.safetensors", dir);

  tensor(&t[0], "a", &v, 9);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 1, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "ndim 9 is outside 0..8") != NULL, "%s", why);
  tensor(&t[0], "a", &v, -1);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 1, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  tensor(&t[0], "a", &v, 1);
  tensor(&t[1], "a", &v, 1);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 2, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "two tensors are named 'a'") != NULL, "%s", why);
  tensor(&t[1], "__metadata__", &v, 1);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 2, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "reserved") != NULL, "%s", why);
  tensor(&t[1], "b\xff", &v, 1);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 2, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "not valid UTF-8") != NULL, "%s", why);
  tensor(&t[1], "b", &v, 1);
  t[1].size = 8; /* an older, smaller struct: the array's stride is not ours */
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 2, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  tensor(&t[1], "b", NULL, 2);
  t[1].shape[0] = (int64_t)1 << 54; /* beyond what a JSON number holds exactly */
  t[1].shape[1] = 0;
  t[1].nbytes = 0;
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 2, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_ne(access(path, F_OK), 0);

  /* a name with a newline is valid: written and read back as it was */
  tensor(&t[1], "b\nc", &v, 1);
  ck_assert_int_eq(oftawq_safetensors_write(path, t, 2, why, sizeof why), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_open(path, &st, why, sizeof why), OFTAWQ_OK);
  oftawq_tensor_init(&back);
  ck_assert_int_eq(oftawq_safetensors_find(st, "b\nc", &back), OFTAWQ_OK);
  oftawq_safetensors_close(st);
  remove(path);
  tu_rmdir(dir);
  free(dir);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("parse");
  TCase *tc = tcase_create("safetensors");
  tcase_set_timeout(tc, 60); /* the 100k-tensor headers under the sanitizers */
  tcase_add_test(tc, hundred_thousand_tensors_parse_in_near_linear_work);
  tcase_add_test(tc, repeated_name_among_many);
  tcase_add_test(tc, valid_headers_still_accepted);
  tcase_add_test(tc, malformed_headers_refused);
  tcase_add_test(tc, writer_refuses_what_the_reader_would);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
