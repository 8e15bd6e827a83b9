/* check_model.c: whole models - PEFT's targeting rules, every module against real PEFT + AutoAWQ, memory budget, version gates. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oftawq.h"
#include "common/ref.h"
#include "files/adapter_file.h"
#include "model/pyre.h"
#include "model/target.h"
#include "testutil.h"

#define FIXTURE "tests/fixtures/model"
#define N_ADAPTERS 4
static const char *const adapter_names[N_ADAPTERS] = {"a", "b", "c", "d"};

static cJSON *read_json(const char *relative)
{
  char *path = tu_srcpath(relative), *text = tu_read_file(path, NULL);
  cJSON *j;
  ck_assert_msg(text != NULL, "cannot read %s", path);
  j = cJSON_Parse(text);
  ck_assert_msg(j != NULL, "%s is not JSON", path);
  free(text);
  free(path);
  return j;
}

/* ------------------------------------------------------------------ Python's re (tests/gen/gen_pyre.py) */

START_TEST(regex_matches_python)
{
  cJSON *all = read_json("tests/fixtures/pyre.json"), *c;
  int n = 0, quirks = 0;
  cJSON_ArrayForEach(c, all)
  {
    const char *p = cJSON_GetObjectItem(c, "p")->valuestring, *t = cJSON_GetObjectItem(c, "t")->valuestring;
    const cJSON *g = cJSON_GetObjectItem(c, "g");
    char why[256];
    oftawq__pyre *re = oftawq__pyre_compile(p, why, sizeof why);
    long s = -2, e = -2;
    int full, match;
    ck_assert_msg(re != NULL, "%s: %s", p, why);
    full = oftawq__pyre_match(re, t, 1, 1, NULL, NULL);
    match = oftawq__pyre_match(re, t, 0, 1, &s, &e);
    ck_assert_msg(full == cJSON_IsTrue(cJSON_GetObjectItem(c, "full")), "fullmatch(%s, %s) = %d", p, t, full);
    ck_assert_msg(match == cJSON_IsTrue(cJSON_GetObjectItem(c, "match")), "match(%s, %s) = %d", p, t, match);
    if (match == 1 && oftawq__pyre_groups(re) >= 1) {
      long ws = cJSON_IsArray(g) ? (long)cJSON_GetArrayItem(g, 0)->valuedouble : -1;
      long we = cJSON_IsArray(g) ? (long)cJSON_GetArrayItem(g, 1)->valuedouble : -1;
      /* documented in pyre.h: a repeated group that can match empty may capture differently (never the match) */
      int quirk = !strcmp(p, "(a*)*") || !strcmp(p, "(a*)*b") || !strcmp(p, "(a|b|)+");
      ck_assert_msg((s == ws && e == we) || quirk, "match(%s, %s) group 1 = [%ld, %ld], Python [%ld, %ld]", p, t, s, e,
                    ws, we);
      quirks += s != ws || e != we;
    }
    oftawq__pyre_free(re);
    n++;
  }
  ck_assert_int_ge(n, 1000);
  ck_assert_int_le(quirks, 10);
  cJSON_Delete(all);
}
END_TEST

START_TEST(regex_refusals_and_bounds)
{
  static const char *const refused[] = {
    "(?=a)", "(?!a)", "(?<=a)b", "(?i)a", "(a)\\1", "\\q", "a**", "*a", "a{3,2}", "a{1001}", "(a", "a)", "[a",
    "[b-a]", "a*+", "\\", "(?P=n)", "(?#c)", "a{2}{3}", "^*", "[\\d-z]",
  };
  char why[256], big[OFTAWQ__PYRE_MAX_PATTERN + 2], *text;
  size_t i;
  oftawq__pyre *re;
  for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    why[0] = '\0';
    re = oftawq__pyre_compile(refused[i], why, sizeof why);
    ck_assert_msg(re == NULL, "'%s' was accepted", refused[i]);
    ck_assert_msg(why[0] != '\0', "'%s' refused without a reason", refused[i]);
  }
  ck_assert_ptr_null(oftawq__pyre_compile(NULL, why, sizeof why));
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ck_assert_ptr_null(oftawq__pyre_compile(big, why, sizeof why));
  ck_assert_ptr_null(oftawq__pyre_compile("(a{1000}){1000}", why, sizeof why)); /* too many instructions */
  ck_assert_ptr_nonnull(strstr(why, "complex"));
  /* nested quantifiers stay linear: (a*)*b on 4000 a's answers at once */
  text = malloc(4001);
  memset(text, 'a', 4000);
  text[4000] = '\0';
  ck_assert_ptr_nonnull(re = oftawq__pyre_compile("(a*)*b", why, sizeof why));
  ck_assert_int_eq(oftawq__pyre_match(re, text, 1, 0, NULL, NULL), 0);
  oftawq__pyre_free(re);
  ck_assert_ptr_nonnull(re = oftawq__pyre_compile("(a|aa)*c", why, sizeof why));
  ck_assert_int_eq(oftawq__pyre_match(re, text, 1, 0, NULL, NULL), 0);
  oftawq__pyre_free(re);
  free(text);
  text = malloc(OFTAWQ__PYRE_MAX_TEXT + 2);
  memset(text, 'a', OFTAWQ__PYRE_MAX_TEXT + 1);
  text[OFTAWQ__PYRE_MAX_TEXT + 1] = '\0';
  ck_assert_ptr_nonnull(re = oftawq__pyre_compile("a*", why, sizeof why));
  ck_assert_int_eq(oftawq__pyre_match(re, text, 1, 0, NULL, NULL), -1);
  oftawq__pyre_free(re);
  oftawq__pyre_free(NULL);
  free(text);
}
END_TEST

/* ------------------------------------------------------------------ PEFT's check_target_module_exists (gen_targeting.py) */

static char **strings_of(const cJSON *j, size_t *n)
{
  char **out = calloc((size_t)cJSON_GetArraySize(j) + 1, sizeof *out);
  const cJSON *e;
  *n = 0;
  cJSON_ArrayForEach(e, j) out[(*n)++] = strdup(e->valuestring);
  return out;
}

static void rule_of(const cJSON *j, oftawq__name_rule *r)
{
  memset(r, 0, sizeof *r);
  if (!j || cJSON_IsNull(j)) return;
  r->present = 1;
  if (cJSON_IsString(j)) r->regex = strdup(j->valuestring);
  else r->names = strings_of(j, &r->n_names);
}

static void free_list(char **s, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) free(s[i]);
  free(s);
}

START_TEST(targeting_matches_peft)
{
  cJSON *all = read_json("tests/fixtures/targeting.json"), *keys = cJSON_GetObjectItem(all, "keys"), *c;
  int configs = 0;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(all, "configs"))
  {
    const cJSON *cfg = cJSON_GetObjectItem(c, "config"), *j;
    oftawq__targeting t;
    oftawq__matcher *m = NULL;
    char why[512];
    int k = 0;
    const cJSON *key;
    memset(&t, 0, sizeof t);
    rule_of(cJSON_GetObjectItem(cfg, "target_modules"), &t.target_modules);
    rule_of(cJSON_GetObjectItem(cfg, "exclude_modules"), &t.exclude_modules);
    if ((j = cJSON_GetObjectItem(cfg, "modules_to_save"))) t.modules_to_save = strings_of(j, &t.n_modules_to_save);
    if ((j = cJSON_GetObjectItem(cfg, "layers_to_transform"))) {
      const cJSON *e;
      t.layers_present = 1;
      t.layers_is_int = cJSON_IsNumber(j);
      t.layers = calloc(16, sizeof *t.layers);
      if (t.layers_is_int) t.layers[t.n_layers++] = (int)j->valuedouble;
      else cJSON_ArrayForEach(e, j) t.layers[t.n_layers++] = (int)e->valuedouble;
    }
    if ((j = cJSON_GetObjectItem(cfg, "layers_pattern"))) {
      if (cJSON_IsString(j)) {
        t.layers_patterns = calloc(1, sizeof *t.layers_patterns);
        t.layers_patterns[0] = strdup(j->valuestring);
        t.n_layers_patterns = 1;
        t.layers_pattern_is_string = 1;
      } else {
        t.layers_patterns = strings_of(j, &t.n_layers_patterns);
      }
    }
    ck_assert_msg(oftawq__matcher_create(&t, "llama", &m, why, sizeof why) == OFTAWQ_OK, "%s", why);
    cJSON_ArrayForEach(key, keys)
    {
      const char *want = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "result"), k++)->valuestring;
      int got = oftawq__matcher_check(m, key->valuestring, why, sizeof why);
      const char *text = got < 0 ? "error" : got == OFTAWQ__TARGETED ? "targeted" : got == OFTAWQ__EXCLUDED ? "excluded" : "no";
      char *printed = cJSON_PrintUnformatted(cfg);
      ck_assert_msg(!strcmp(text, want), "%s on '%s': %s, PEFT %s", printed, key->valuestring, text, want);
      free(printed);
    }
    oftawq__matcher_free(m);
    free(t.target_modules.regex);
    free_list(t.target_modules.names, t.target_modules.n_names);
    free(t.exclude_modules.regex);
    free_list(t.exclude_modules.names, t.exclude_modules.n_names);
    free_list(t.modules_to_save, t.n_modules_to_save);
    free(t.layers);
    free_list(t.layers_patterns, t.n_layers_patterns);
    configs++;
  }
  ck_assert_int_ge(configs, 20);
  cJSON_Delete(all);
}
END_TEST

START_TEST(targeting_defaults_and_refusals)
{
  oftawq__targeting t;
  oftawq__matcher *m = NULL;
  char why[512], all_linear[] = "ALL-LINEAR", lookahead[] = "(?=q).*";
  memset(&t, 0, sizeof t);
  /* target_modules null: PEFT's default for the model type */
  ck_assert_int_eq(oftawq__matcher_create(&t, "llama", &m, why, sizeof why), OFTAWQ_OK);
  ck_assert_int_eq(oftawq__matcher_check(m, "model.layers.0.self_attn.q_proj", why, sizeof why), OFTAWQ__TARGETED);
  ck_assert_int_eq(oftawq__matcher_check(m, "model.layers.0.self_attn.v_proj", why, sizeof why), OFTAWQ__TARGETED);
  ck_assert_int_eq(oftawq__matcher_check(m, "model.layers.0.self_attn.k_proj", why, sizeof why), OFTAWQ__NOT_TARGETED);
  oftawq__matcher_targets_text(m, why, sizeof why);
  ck_assert_str_eq(why, "{'q_proj', 'v_proj'}");
  oftawq__matcher_free(m);
  ck_assert_int_eq(oftawq__matcher_create(&t, "nosuchmodel", &m, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_str_eq(why, "Please specify `target_modules` in `peft_config`");
  ck_assert_int_eq(oftawq__matcher_create(&t, NULL, &m, why, sizeof why), OFTAWQ_E_INVALID_ARGUMENT);
  t.target_modules.present = 1;
  t.target_modules.regex = all_linear;
  ck_assert_int_eq(oftawq__matcher_create(&t, "llama", &m, why, sizeof why), OFTAWQ_E_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(why, "all-linear"));
  t.target_modules.regex = lookahead;
  ck_assert_int_eq(oftawq__matcher_create(&t, "llama", &m, why, sizeof why), OFTAWQ_E_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(why, "target_modules"));
  oftawq__matcher_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------ the real model: PEFT 0.18.1 + AutoAWQ 0.2.9 */

static oftawq_model *open_fixture(oftawq_context *ctx, const oftawq_model_options *opt, int n_adapters)
{
  char *dir = tu_srcpath(FIXTURE "/model"), path[4200];
  oftawq_model *m = NULL;
  int a;
  ck_assert_msg(oftawq_model_open(ctx, dir, opt, &m) == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
  for (a = 0; a < n_adapters; a++) {
    char *adir;
    snprintf(path, sizeof path, FIXTURE "/adapter_%s", adapter_names[a]);
    adir = tu_srcpath(path);
    ck_assert_msg(oftawq_model_load_adapter(m, adir, adapter_names[a]) == OFTAWQ_OK, "%s: %s", adir,
                  oftawq_context_last_error(ctx));
    free(adir);
  }
  free(dir);
  return m;
}

/* The dequantised weight column n of an AWQ module: |W[k][n]| for the error bound. */
static double abs_w(const oftawq_awq_tensors *t, int k, int n)
{
  int g = k / t->G;
  double q = oftawq__awq_nibble((uint32_t)t->qweight[(size_t)k * (t->N / 8) + n / 8], (unsigned)n & 7u);
  double z = oftawq__awq_nibble((uint32_t)t->qzeros[(size_t)g * (t->N / 8) + n / 8], (unsigned)n & 7u);
  return fabs((q - z) * oftawq__half_to_float(t->scales[(size_t)g * t->N + n]));
}

static float to_float(const uint16_t *v, size_t i, int bf16)
{
  return bf16 ? oftawq__bf16_to_float(v[i]) : oftawq__half_to_float(v[i]);
}

/* Runs one fixture case through the model and checks every AWQ module against PEFT's output. Returns the worst
 * error as a fraction of the bound; *separated counts modules whose output is far (> 4 bounds) from `other`. */
static double check_case(oftawq_context *ctx, oftawq_model *m, const char *input, const char *yfile, const char *other, int *separated)
{
  char path[4200], name[512], why[512];
  char *xp, *yp, *op;
  oftawq_safetensors *xs = NULL, *ys = NULL, *os = NULL;
  oftawq_model_file *mf = NULL;
  double worst = 0;
  size_t i;
  snprintf(path, sizeof path, FIXTURE "/%s.safetensors", input);
  xp = tu_srcpath(path);
  snprintf(path, sizeof path, FIXTURE "/y_%s.safetensors", yfile);
  yp = tu_srcpath(path);
  snprintf(path, sizeof path, FIXTURE "/y_%s.safetensors", other);
  op = tu_srcpath(path);
  ck_assert_int_eq(oftawq_safetensors_open(xp, &xs, why, sizeof why), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_open(yp, &ys, why, sizeof why), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_safetensors_open(op, &os, why, sizeof why), OFTAWQ_OK);
  {
    char *md = tu_srcpath(FIXTURE "/model");
    ck_assert_int_eq(oftawq_model_file_open(md, &mf, why, sizeof why), OFTAWQ_OK);
    free(md);
  }
  *separated = 0;
  for (i = 0; i < oftawq_model_module_count(m); i++) {
    oftawq_model_module mod;
    oftawq_tensor x, y, o;
    oftawq_awq_tensors t;
    int bf16, far = 0;
    size_t rows, r;
    int n, k;
    uint16_t *out;
    oftawq_model_module_init(&mod);
    ck_assert_int_eq(oftawq_model_module_get(m, i, &mod), OFTAWQ_OK);
    if (mod.kind != OFTAWQ_TARGET_AWQ_GEMM) continue;
    oftawq_tensor_init(&x);
    oftawq_tensor_init(&y);
    oftawq_tensor_init(&o);
    snprintf(name, sizeof name, "%s.x", mod.name);
    ck_assert_int_eq(oftawq_safetensors_find(xs, name, &x), OFTAWQ_OK);
    snprintf(name, sizeof name, "%s.y", mod.name);
    ck_assert_int_eq(oftawq_safetensors_find(ys, name, &y), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_safetensors_find(os, name, &o), OFTAWQ_OK);
    ck_assert_int_eq(o.dtype, y.dtype);
    bf16 = x.dtype == OFTAWQ_T_BF16;
    rows = (size_t)x.shape[0];
    ck_assert_int_eq(x.shape[1], mod.K);
    out = malloc(rows * (size_t)mod.N * 2);
    ck_assert_msg(oftawq_model_forward(m, mod.name, bf16 ? OFTAWQ_BF16 : OFTAWQ_F16, x.data, out, rows) == OFTAWQ_OK,
                  "%s: %s", mod.name, oftawq_context_last_error(ctx));
    oftawq_awq_tensors_init(&t);
    ck_assert_int_eq(oftawq_model_file_module(mf, mod.name, &t, why, sizeof why), OFTAWQ_OK);
    for (r = 0; r < rows; r++)
      for (n = 0; n < mod.N; n++) {
        /* Bound: AutoAWQ rounds each dequantised weight to fp16 (2^-11 of |x W| per term) and the rotated x
         * may round the other way than PEFT's einsum in a few places (one ulp of the activation dtype: 2^-11
         * for fp16, 2^-8 for bf16, of |x W|), plus one ulp of the output dtype. */
        double sum = 0, bound, got = to_float(out, r * (size_t)mod.N + (size_t)n, bf16), want, alt, err;
        for (k = 0; k < mod.K; k++)
          sum += fabs(to_float((const uint16_t *)x.data, r * (size_t)mod.K + (size_t)k, bf16)) * abs_w(&t, k, n);
        want = to_float((const uint16_t *)y.data, r * (size_t)mod.N + (size_t)n, bf16);
        alt = to_float((const uint16_t *)o.data, r * (size_t)mod.N + (size_t)n, bf16);
        bound = sum * (bf16 ? 1.0 / 256 : 1.0 / 1024) + fabs(want) * (bf16 ? 1.0 / 128 : 1.0 / 1024) + 1e-6;
        err = fabs(got - want) / bound;
        ck_assert_msg(err <= 1.0, "%s [%zu][%d]: %g vs PEFT %g (bound %g)", mod.name, r, n, got, want, bound);
        if (err > worst) worst = err;
        if (fabs(alt - want) > 4 * bound) far = 1;
      }
    *separated += far;
    free(out);
  }
  oftawq_model_file_close(mf);
  oftawq_safetensors_close(xs);
  oftawq_safetensors_close(ys);
  oftawq_safetensors_close(os);
  free(xp);
  free(yp);
  free(op);
  return worst;
}

/* A case of the same dtype that differs from `name` in some modules (the bound must tell them apart). */
static const char *neighbour(const char *name)
{
  static const char *const pairs[][2] = {{"disabled", "a"}, {"a", "disabled"}, {"ab", "a"}, {"ba", "disabled"},
                                         {"cd", "disabled"}, {"ab_bf16", "abcd_bf16"}, {"abcd_bf16", "ab_bf16"}};
  size_t i;
  for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    if (!strcmp(pairs[i][0], name)) return pairs[i][1];
  ck_abort_msg("no neighbour for case %s", name);
  return NULL;
}

START_TEST(every_module_matches_peft)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_model *m = open_fixture(ctx, NULL, N_ADAPTERS);
  char *path = tu_srcpath(FIXTURE "/cases.tsv"), *text = tu_read_file(path, NULL), *line, *save = NULL;
  int cases = 0;
  ck_assert_ptr_nonnull(text);
  for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char name[64], input[64], active[128], *tok, *s2 = NULL;
    const char *list[N_ADAPTERS];
    size_t n = 0;
    int separated = 0;
    double worst;
    if (line[0] == '#' || sscanf(line, "%63s %63s %127s", name, input, active) != 3) continue;
    if (!strcmp(active, "disabled")) {
      ck_assert_int_eq(oftawq_model_enable_adapters(m, 0), OFTAWQ_OK);
    } else {
      for (tok = strtok_r(active, ",", &s2); tok && n < N_ADAPTERS; tok = strtok_r(NULL, ",", &s2)) list[n++] = tok;
      ck_assert_int_eq(oftawq_model_enable_adapters(m, 1), OFTAWQ_OK);
      ck_assert_int_eq(oftawq_model_set_active(m, list, n), OFTAWQ_OK);
    }
    worst = check_case(ctx, m, input, name, neighbour(name), &separated);
    fprintf(stderr, "model case %s: worst error %.2f of the bound, %d modules apart from the other case\n", name,
            worst, separated);
    /* the bound is tight enough to tell the case from a neighbour: the adapters did change those modules */
    ck_assert_int_ge(separated, 2);
    cases++;
  }
  ck_assert_int_ge(cases, 7);
  free(text);
  free(path);
  oftawq_model_destroy(m);
  oftawq_context_destroy(ctx);
}
END_TEST

static Suite *model_suite(void)
{
  Suite *s = suite_create("model");
  TCase *cpu = tcase_create("rules"), *dev = tcase_create("device");
  tcase_add_test(cpu, regex_matches_python);
  tcase_add_test(cpu, regex_refusals_and_bounds);
  tcase_add_test(cpu, targeting_matches_peft);
  tcase_add_test(cpu, targeting_defaults_and_refusals);
  tcase_set_timeout(dev, 300);
  tcase_add_test(dev, every_module_matches_peft);
  suite_add_tcase(s, cpu);
  suite_add_tcase(s, dev);
  return s;
}

int main(void) { return tu_run(model_suite()); }
