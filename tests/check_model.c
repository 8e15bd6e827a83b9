/* check_model.c: whole models - PEFT's targeting rules, every module against real PEFT + AutoAWQ, memory budget, version gates. */
#define _DEFAULT_SOURCE /* realpath */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
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

/* Module i when it is an AWQ GEMM module (else 0), with tensor <module>.x of xs and <module>.y of ys (ys may be NULL). */
static int module_tensors(const oftawq_model *m, size_t i, oftawq_safetensors *xs, oftawq_safetensors *ys,
                          oftawq_model_module *mod, oftawq_tensor *x, oftawq_tensor *y)
{
  char name[512];
  oftawq_model_module_init(mod);
  ck_assert_int_eq(oftawq_model_module_get(m, i, mod), OFTAWQ_OK);
  if (mod->kind != OFTAWQ_TARGET_AWQ_GEMM) return 0;
  oftawq_tensor_init(x);
  oftawq_tensor_init(y);
  snprintf(name, sizeof name, "%s.x", mod->name);
  ck_assert_int_eq(oftawq_safetensors_find(xs, name, x), OFTAWQ_OK);
  snprintf(name, sizeof name, "%s.y", mod->name);
  if (ys) ck_assert_int_eq(oftawq_safetensors_find(ys, name, y), OFTAWQ_OK);
  return 1;
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
    if (!module_tensors(m, i, xs, ys, &mod, &x, &y)) continue;
    oftawq_tensor_init(&o);
    snprintf(name, sizeof name, "%s.y", mod.name);
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

/* ------------------------------------------------------------------ helpers for folders made by the tests */

static void write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
  fclose(f);
}

static void copy_file(const char *from, const char *to)
{
  size_t n;
  char *data = tu_read_file(from, &n);
  FILE *f;
  ck_assert_msg(data != NULL, "cannot read %s", from);
  ck_assert_ptr_nonnull(f = fopen(to, "wb"));
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
  free(data);
}

/* A copy of the fixture model whose quantization_config also carries `extra` (JSON members, may be ""). */
static char *model_copy(const char *tag, const char *extra)
{
  static const char *const files[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                      "model.safetensors.index.json"};
  char *dir = tu_tempdir(tag), from[4200], to[4200], *src, *config, *at;
  size_t i;
  for (i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(from, sizeof from, FIXTURE "/model/%s", files[i]);
    src = tu_srcpath(from);
    snprintf(to, sizeof to, "%s/%s", dir, files[i]);
    copy_file(src, to);
    free(src);
  }
  src = tu_srcpath(FIXTURE "/model/config.json");
  config = tu_read_file(src, NULL);
  ck_assert_ptr_nonnull(at = strstr(config, "\"quantization_config\": {"));
  at += strlen("\"quantization_config\": {");
  snprintf(to, sizeof to, "%s/config.json", dir);
  {
    FILE *f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%.*s%s%s%s", (int)(at - config), config, extra, *extra ? ", " : "", at);
    fclose(f);
  }
  free(config);
  free(src);
  return dir;
}

/* An adapter folder with the given adapter_config.json and the weights of fixture adapter `weights_of`. */
static char *adapter_copy(const char *tag, const char *config, const char *weights_of)
{
  char *dir = tu_tempdir(tag), from[4200], to[4200], *src;
  snprintf(to, sizeof to, "%s/adapter_config.json", dir);
  write_text(to, config);
  snprintf(from, sizeof from, FIXTURE "/adapter_%s/adapter_model.safetensors", weights_of);
  src = tu_srcpath(from);
  snprintf(to, sizeof to, "%s/adapter_model.safetensors", dir);
  copy_file(src, to);
  free(src);
  return dir;
}

static size_t module_index(const oftawq_model *m, const char *name)
{
  size_t i = 0;
  ck_assert_msg(oftawq_model_module_find(m, name, &i) == OFTAWQ_OK, "no module %s", name);
  return i;
}

static oftawq_model_outcome outcome_of(const oftawq_model *m, const char *module, size_t adapter)
{
  oftawq_model_outcome o;
  oftawq_model_outcome_init(&o);
  ck_assert_int_eq(oftawq_model_outcome_get(m, module_index(m, module), adapter, &o), OFTAWQ_OK);
  return o;
}

/* A context whose log callback counts into `log`. */
static oftawq_context *context_with_log(tu_log *log)
{
  oftawq_context_options opt;
  oftawq_context *ctx = NULL;
  memset(log, 0, sizeof *log);
  oftawq_context_options_init(&opt);
  opt.log = tu_log_fn;
  opt.log_user = log;
  ck_assert_int_eq(oftawq_context_create(&opt, &ctx), OFTAWQ_OK);
  return ctx;
}

/* ------------------------------------------------------------------ what inspect shows, against PEFT's own list */

START_TEST(outcomes_match_peft_wrapped_list)
{
  tu_log log;
  oftawq_context *ctx = context_with_log(&log);
  cJSON *w = read_json(FIXTURE "/wrapped.json"), *wrapped = cJSON_GetObjectItem(w, "wrapped"), *e;
  oftawq_model *m;
  size_t i, awq = 0;
  int a, n_wrapped = 0;
  oftawq_layer *layer;
  char desc[2048];
  const char *ab[] = {"a", "b"};
  m = open_fixture(ctx, NULL, N_ADAPTERS);
  for (i = 0; i < oftawq_model_module_count(m); i++) {
    oftawq_model_module mod;
    const cJSON *list;
    oftawq_model_module_init(&mod);
    ck_assert_int_eq(oftawq_model_module_get(m, i, &mod), OFTAWQ_OK);
    list = cJSON_GetObjectItem(wrapped, mod.name);
    if (mod.kind == OFTAWQ_TARGET_AWQ_GEMM) awq++;
    for (a = 0; a < N_ADAPTERS; a++) {
      oftawq_model_outcome o;
      int peft = 0;
      oftawq_model_outcome_init(&o);
      ck_assert_int_eq(oftawq_model_outcome_get(m, i, (size_t)a, &o), OFTAWQ_OK);
      cJSON_ArrayForEach(e, list) peft |= !strcmp(e->valuestring, adapter_names[a]);
      ck_assert_msg((o.outcome == OFTAWQ_OUTCOME_WRAPPED) == peft, "%s / %s: outcome %d, PEFT %s", mod.name,
                    adapter_names[a], (int)o.outcome, peft ? "wrapped" : "not wrapped");
      n_wrapped += peft;
    }
  }
  ck_assert_uint_eq(awq, (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(w, "awq_modules")));
  ck_assert_int_ge(n_wrapped, 12);
  /* the other outcomes and what they carry */
  ck_assert_int_eq(outcome_of(m, "model.layers.1.mlp.down_proj", 0).outcome, OFTAWQ_OUTCOME_EXCLUDED);
  ck_assert_int_eq(outcome_of(m, "model.layers.1.mlp.gate_proj", 2).outcome, OFTAWQ_OUTCOME_NOT_TARGETED); /* layer 0 only */
  ck_assert_int_eq(outcome_of(m, "model.layers.0.mlp.gate_proj", 3).shape.r, 4);
  ck_assert_int_eq(outcome_of(m, "model.layers.0.mlp.gate_proj", 3).shape.block_size, 32);
  ck_assert_int_eq(outcome_of(m, "model.layers.0.mlp.down_proj", 0).shape.block_size, 16);
  ck_assert_int_eq(outcome_of(m, "model.layers.0.mlp.down_proj", 0).shape.r, 16);
  ck_assert_int_eq(outcome_of(m, "model.layers.0.mlp.down_proj", 0).has_weights, 1);
  ck_assert_int_eq(outcome_of(m, "model.layers.0.self_attn.q_proj", 1).outcome, OFTAWQ_OUTCOME_NOT_TARGETED);
  {
    oftawq_model_module mod;
    oftawq_model_module_init(&mod);
    ck_assert_int_eq(oftawq_model_module_get(m, module_index(m, "lm_head"), &mod), OFTAWQ_OK);
    ck_assert_int_eq(mod.kind, OFTAWQ_TARGET_LINEAR_F16);
    ck_assert_int_eq(mod.N, 128);
    ck_assert_int_eq(mod.K, 128);
    ck_assert_int_eq(oftawq_model_module_get(m, module_index(m, "model.norm"), &mod), OFTAWQ_OK);
    ck_assert_int_eq(mod.kind, OFTAWQ_TARGET_OTHER);
    ck_assert_int_eq(oftawq_model_module_get(m, module_index(m, "model.layers.0.self_attn.q_proj"), &mod), OFTAWQ_OK);
    /* 128 x 128 at group 64: qweight 8 KiB, qzeros 128 B, scales 512 B, no bias; R of a: 8 blocks of 16 x 16 */
    ck_assert_uint_eq(mod.device_bytes, 128 * 16 * 4 + 2 * 16 * 4 + 2 * 128 * 2 + 8 * 16 * 16 * 4);
    ck_assert_int_eq(mod.G, 64);
    ck_assert_int_eq(mod.has_bias, 0);
    ck_assert_int_eq(mod.uploaded, 0);
  }
  /* adapter b: module_dropout 0.1 is warned about once, though b wraps three modules */
  ck_assert_int_ge(log.warnings, 1);
  {
    oftawq_oft_config c;
    oftawq_oft_config_init(&c);
    ck_assert_int_eq(oftawq_model_adapter_config(m, 1, &c), OFTAWQ_OK);
    ck_assert(c.module_dropout == 0.1);
    ck_assert_int_eq(c.use_cayley_neumann, 0);
    ck_assert_str_eq(c.peft_version, "0.18.1");
  }
  /* a module that b wraps and a does not: a is skipped there, and the description says so */
  ck_assert_int_eq(oftawq_model_set_active(m, ab, 2), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.1.self_attn.k_proj", &layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_layer_describe(layer, desc, sizeof desc, NULL), OFTAWQ_OK);
  ck_assert_msg(strstr(desc, "b(r=4, block_size=32, cayley=exact") && strstr(desc, "skipped=[a])"), "%s", desc);
  ck_assert_uint_eq(oftawq_layer_adapter_count(layer), 1);
  oftawq_model_destroy(m);
  cJSON_Delete(w);
  oftawq_context_destroy(ctx);
}
END_TEST

/* module_dropout: warned once per adapter, not per module or per upload. */
START_TEST(warnings_once_per_model)
{
  tu_log log;
  oftawq_context *ctx = context_with_log(&log);
  oftawq_model *m;
  char *dir = tu_srcpath(FIXTURE "/model"), *bdir = tu_srcpath(FIXTURE "/adapter_b");
  oftawq_layer *layer;
  int before;
  ck_assert_int_eq(oftawq_model_open(ctx, dir, NULL, &m), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_load_adapter(m, bdir, NULL), OFTAWQ_OK);
  ck_assert_str_eq(oftawq_model_adapter_name(m, 0), "default");
  ck_assert_int_eq(log.warnings, 1);
  ck_assert_ptr_nonnull(strstr(log.last, "module_dropout"));
  before = log.warnings;
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.1.self_attn.k_proj", &layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.1.self_attn.o_proj", &layer), OFTAWQ_OK);
  ck_assert_int_eq(log.warnings, before);
  oftawq_model_destroy(m);
  free(dir);
  free(bdir);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ memory budget */

static uint16_t **run_all(oftawq_model *m, oftawq_safetensors *xs)
{
  uint16_t **out = calloc(oftawq_model_module_count(m), sizeof *out);
  size_t i;
  for (i = 0; i < oftawq_model_module_count(m); i++) {
    oftawq_model_module mod;
    oftawq_tensor x, unused;
    if (!module_tensors(m, i, xs, NULL, &mod, &x, &unused)) continue;
    out[i] = malloc((size_t)x.shape[0] * (size_t)mod.N * 2);
    ck_assert_int_eq(oftawq_model_forward(m, mod.name, OFTAWQ_F16, x.data, out[i], (size_t)x.shape[0]), OFTAWQ_OK);
  }
  return out;
}

static void free_outputs(uint16_t **out, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) free(out[i]);
  free(out);
}

START_TEST(memory_budget_evicts_and_outputs_stay)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_model_options opt;
  oftawq_model *full, *tight;
  oftawq_model_stats st;
  oftawq_safetensors *xs = NULL;
  char *xp = tu_srcpath(FIXTURE "/x.safetensors"), why[256];
  const char *abcd[] = {"a", "b", "c", "d"};
  uint16_t **want, **got, *y0, *y1;
  uint64_t largest = 0;
  size_t i, n, rows;
  oftawq_layer *layer;
  oftawq_tensor x;
  float *w;
  oftawq_oft_shape shape;
  ck_assert_int_eq(oftawq_safetensors_open(xp, &xs, why, sizeof why), OFTAWQ_OK);
  full = open_fixture(ctx, NULL, N_ADAPTERS);
  ck_assert_int_eq(oftawq_model_set_active(full, abcd, 4), OFTAWQ_OK);
  want = run_all(full, xs);
  n = oftawq_model_module_count(full);
  oftawq_model_stats_init(&st);
  ck_assert_int_eq(oftawq_model_get_stats(full, &st), OFTAWQ_OK);
  ck_assert_uint_eq(st.evictions, 0);
  ck_assert_uint_eq(st.layers_uploaded, 14);
  ck_assert_uint_eq(st.device_bytes, st.total_bytes);
  for (i = 0; i < n; i++) {
    oftawq_model_module mod;
    oftawq_model_module_init(&mod);
    oftawq_model_module_get(full, i, &mod);
    if (mod.device_bytes > largest) largest = mod.device_bytes;
  }
  /* room for about two layers: every pass evicts */
  oftawq_model_options_init(&opt);
  opt.memory_budget = 2 * largest;
  tight = open_fixture(ctx, &opt, N_ADAPTERS);
  ck_assert_int_eq(oftawq_model_set_active(tight, abcd, 4), OFTAWQ_OK);
  for (i = 0; i < 2; i++) {
    size_t k;
    got = run_all(tight, xs);
    for (k = 0; k < n; k++)
      if (want[k]) {
        oftawq_model_module mod;
        oftawq_model_module_init(&mod);
        oftawq_model_module_get(tight, k, &mod);
        ck_assert_msg(!memcmp(got[k], want[k], 3 * (size_t)mod.N * 2), "%s differs after evictions", mod.name);
      }
    free_outputs(got, n);
  }
  oftawq_model_stats_init(&st);
  ck_assert_int_eq(oftawq_model_get_stats(tight, &st), OFTAWQ_OK);
  ck_assert_uint_ge(st.evictions, 20);
  ck_assert_uint_le(st.device_bytes, opt.memory_budget);
  ck_assert_uint_lt(st.layers_uploaded, 14);
  ck_assert_uint_eq(st.uploads, st.evictions + st.layers_uploaded);
  ck_assert_uint_eq(st.memory_budget, 2 * largest);
  /* weights changed through a layer survive its eviction */
  ck_assert_int_eq(oftawq_model_layer(tight, "model.layers.0.self_attn.q_proj", &layer), OFTAWQ_OK);
  oftawq_oft_shape_init(&shape);
  ck_assert_int_eq(oftawq_oft_get_shape(oftawq_layer_adapter(layer, "a"), &shape), OFTAWQ_OK);
  w = tu_random_floats((size_t)shape.weight_rows * (size_t)shape.n_elements, 0.05f, 99);
  ck_assert_int_eq(oftawq_layer_set_adapter_weights(layer, "a", w, (size_t)shape.weight_rows * (size_t)shape.n_elements),
                   OFTAWQ_OK);
  oftawq_tensor_init(&x);
  ck_assert_int_eq(oftawq_safetensors_find(xs, "model.layers.0.self_attn.q_proj.x", &x), OFTAWQ_OK);
  rows = (size_t)x.shape[0];
  y0 = malloc(rows * 128 * 2);
  y1 = malloc(rows * 128 * 2);
  ck_assert_int_eq(oftawq_model_forward(tight, "model.layers.0.self_attn.q_proj", OFTAWQ_F16, x.data, y0, rows), OFTAWQ_OK);
  ck_assert_int_ne(memcmp(y0, want[module_index(tight, "model.layers.0.self_attn.q_proj")], rows * 128 * 2), 0);
  free_outputs(run_all(tight, xs), n); /* evicts it again */
  ck_assert_int_eq(oftawq_model_forward(tight, "model.layers.0.self_attn.q_proj", OFTAWQ_F16, x.data, y1, rows), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(y0, y1, rows * 128 * 2), 0);
  free(y0);
  free(y1);
  free(w);
  /* a budget smaller than any layer still runs, one layer at a time */
  oftawq_model_destroy(tight);
  opt.memory_budget = 1;
  tight = open_fixture(ctx, &opt, N_ADAPTERS);
  ck_assert_int_eq(oftawq_model_set_active(tight, abcd, 4), OFTAWQ_OK);
  got = run_all(tight, xs);
  oftawq_model_stats_init(&st);
  ck_assert_int_eq(oftawq_model_get_stats(tight, &st), OFTAWQ_OK);
  ck_assert_uint_eq(st.layers_uploaded, 1);
  ck_assert_uint_eq(st.evictions, 13);
  free_outputs(got, n);
  oftawq_model_destroy(tight);
  free_outputs(want, n);
  oftawq_model_destroy(full);
  oftawq_safetensors_close(xs);
  free(xp);
  oftawq_context_destroy(ctx);
}
END_TEST

/* An adapter loaded after a layer was uploaded reaches it: the layer is made again on its next use. */
START_TEST(loading_reaches_uploaded_layers)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_model *m = open_fixture(ctx, NULL, 1);
  char *cdir = tu_srcpath(FIXTURE "/adapter_c");
  oftawq_layer *layer;
  oftawq_model_stats st;
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.0.self_attn.o_proj", &layer), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.0.self_attn.q_proj", &layer), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_layer_adapter_count(layer), 1);
  ck_assert_int_eq(oftawq_model_load_adapter(m, cdir, "c"), OFTAWQ_OK);
  oftawq_model_stats_init(&st);
  ck_assert_int_eq(oftawq_model_get_stats(m, &st), OFTAWQ_OK);
  ck_assert_uint_eq(st.evictions, 1);          /* o_proj (c wraps it); q_proj stays */
  ck_assert_uint_eq(st.layers_uploaded, 1);
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.0.self_attn.o_proj", &layer), OFTAWQ_OK);
  ck_assert_ptr_nonnull(oftawq_layer_adapter(layer, "c"));
  ck_assert_int_eq(oftawq_model_get_stats(m, &st), OFTAWQ_OK);
  {
    oftawq_model_module q, o;
    oftawq_model_module_init(&q);
    oftawq_model_module_init(&o);
    oftawq_model_module_get(m, module_index(m, "model.layers.0.self_attn.q_proj"), &q);
    oftawq_model_module_get(m, module_index(m, "model.layers.0.self_attn.o_proj"), &o);
    ck_assert_uint_eq(st.device_bytes, q.device_bytes + o.device_bytes);
    ck_assert(q.uploaded && o.uploaded);
  }
  oftawq_model_destroy(m);
  free(cdir);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ the factory's version gates */

static oftawq_status load_a(oftawq_context *ctx, const char *dir, const oftawq_model_options *opt, oftawq_model **out)
{
  char *adir = tu_srcpath(FIXTURE "/adapter_a");
  oftawq_status st;
  ck_assert_msg(oftawq_model_open(ctx, dir, opt, out) == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
  st = oftawq_model_load_adapter(*out, adir, "a");
  free(adir);
  return st;
}

START_TEST(producer_version_gates)
{
  static const struct {
    const char *meta, *producer_version;
    oftawq_awq_producer producer;
    oftawq_status want;
    const char *message;
  } cases[] = {
    /* GPT-QModel's record in the checkpoint: at, below, above its gate */
    {"\"meta\": {\"quantizer\": [\"gptqmodel:5.6.12\"], \"uri\": \"x\"}", NULL, 0, OFTAWQ_OK, NULL},
    {"\"meta\": {\"quantizer\": [\"gptqmodel:5.6.11\"]}", NULL, 0, OFTAWQ_E_INCOMPATIBLE_VERSION,
     "Found an incompatible version of gptqmodel. Found version 5.6.11, but only versions above 5.6.12 are supported."},
    {"\"meta\": {\"quantizer\": [\"optimum:1.2\", \"gptqmodel:6.0.0.dev1\"]}", NULL, 0, OFTAWQ_OK, NULL},
    {"\"meta\": {\"quantizer\": \"gptqmodel:4.2\"}", NULL, 0, OFTAWQ_E_INCOMPATIBLE_VERSION, "gptqmodel"},
    {"\"meta\": {\"quantizer\": [\"gptqmodel:latest\"]}", NULL, 0, OFTAWQ_E_INVALID_ARGUMENT, "not a PEP 440 version"},
    {"\"meta\": {\"quantizer\": [\"otherquant:0.1\"]}", NULL, 0, OFTAWQ_OK, NULL}, /* unknown: accepted */
    /* AutoAWQ given by the caller: at, below, above */
    {"", "0.2.0", OFTAWQ_PRODUCER_AUTOAWQ, OFTAWQ_OK, NULL},
    {"", "0.1.8", OFTAWQ_PRODUCER_AUTOAWQ, OFTAWQ_E_INCOMPATIBLE_VERSION,
     "Found an incompatible version of auto-awq. Found version 0.1.8, but only versions above 0.2.0 are supported."},
    {"", "0.2.9", OFTAWQ_PRODUCER_AUTOAWQ, OFTAWQ_OK, NULL},
    {"", "5.6.12", OFTAWQ_PRODUCER_GPTQMODEL, OFTAWQ_OK, NULL},
    {"", "5.6.12rc1", OFTAWQ_PRODUCER_GPTQMODEL, OFTAWQ_E_INCOMPATIBLE_VERSION, "5.6.12rc1"},
    /* the caller's word wins over the checkpoint's */
    {"\"meta\": {\"quantizer\": [\"gptqmodel:1.0\"]}", "0.2.5", OFTAWQ_PRODUCER_AUTOAWQ, OFTAWQ_OK, NULL},
    {"\"meta\": {\"quantizer\": [\"gptqmodel:9.0\"]}", "0.1", OFTAWQ_PRODUCER_AUTOAWQ, OFTAWQ_E_INCOMPATIBLE_VERSION, "auto-awq"},
  };
  oftawq_context *ctx = tu_context(NULL);
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *dir = model_copy("gate", cases[i].meta);
    oftawq_model_options opt;
    oftawq_model *m = NULL;
    oftawq_status st;
    oftawq_model_options_init(&opt);
    opt.producer = cases[i].producer;
    opt.producer_version = cases[i].producer_version;
    st = load_a(ctx, dir, &opt, &m);
    ck_assert_msg(st == cases[i].want, "case %zu: %s (%s)", i, oftawq_status_name(st), oftawq_context_last_error(ctx));
    if (cases[i].message)
      ck_assert_msg(strstr(oftawq_context_last_error(ctx), cases[i].message) != NULL, "case %zu: %s", i,
                    oftawq_context_last_error(ctx));
    ck_assert_uint_eq(oftawq_model_adapter_count(m), st == OFTAWQ_OK ? 1 : 0);
    if (st == OFTAWQ_E_INCOMPATIBLE_VERSION) {
      /* with record_refusals the load goes through and every AWQ module it targets shows the refusal */
      oftawq_layer *layer;
      oftawq_model_outcome o;
      oftawq_model_destroy(m);
      opt.record_refusals = 1;
      ck_assert_int_eq(load_a(ctx, dir, &opt, &m), OFTAWQ_OK);
      o = outcome_of(m, "model.layers.0.self_attn.q_proj", 0);
      ck_assert_int_eq(o.outcome, OFTAWQ_OUTCOME_REFUSED);
      ck_assert_int_eq(o.status, OFTAWQ_E_INCOMPATIBLE_VERSION);
      ck_assert_ptr_nonnull(strstr(o.reason, cases[i].message));
      ck_assert_int_eq(outcome_of(m, "model.layers.0.self_attn.k_proj", 0).outcome, OFTAWQ_OUTCOME_NOT_TARGETED);
      /* a refused module runs as its base layer */
      ck_assert_int_eq(oftawq_model_layer(m, "model.layers.0.self_attn.q_proj", &layer), OFTAWQ_OK);
      ck_assert_uint_eq(oftawq_layer_adapter_count(layer), 0);
    }
    oftawq_model_destroy(m);
    tu_rmdir(dir);
    free(dir);
  }
  oftawq_context_destroy(ctx);
}
END_TEST

START_TEST(dispatch_gate_per_producer)
{
  oftawq_context *ctx = tu_context(NULL);
  char *dir = tu_srcpath(FIXTURE "/model"), why[256];
  oftawq_model_file *mf = NULL;
  oftawq_target t;
  oftawq_oft_config c;
  oftawq_layer *layer = NULL;
  ck_assert_int_eq(oftawq_model_file_open(dir, &mf, why, sizeof why), OFTAWQ_OK);
  oftawq_target_init(&t);
  ck_assert_int_eq(t.producer, OFTAWQ_PRODUCER_UNKNOWN);
  ck_assert_int_eq(oftawq_model_file_module(mf, "model.layers.0.self_attn.q_proj", &t.tensors, why, sizeof why), OFTAWQ_OK);
  oftawq_oft_config_init(&c);
  t.producer = OFTAWQ_PRODUCER_GPTQMODEL;
  t.awq_version = "5.6.11";
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_E_INCOMPATIBLE_VERSION);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "gptqmodel"));
  ck_assert_ptr_null(layer);
  t.awq_version = "5.6.12.post1";
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_OK);
  oftawq_layer_destroy(layer);
  /* a caller built against the header without `producer`: read as unknown, so the AutoAWQ gate */
  t.size = offsetof(oftawq_target, producer);
  t.awq_version = "5.6.11";
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_OK);
  oftawq_layer_destroy(layer);
  t.size = offsetof(oftawq_target, producer) - 1;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_E_INVALID_ARGUMENT);
  t.size = sizeof t;
  t.producer = (oftawq_awq_producer)7;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_E_INVALID_ARGUMENT);
  t.producer = OFTAWQ_PRODUCER_AUTOAWQ;
  t.awq_version = NULL; /* unknown: accepted */
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_OK);
  oftawq_layer_destroy(layer);
  t.kind = OFTAWQ_TARGET_LINEAR_BF16;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_NOT_APPLICABLE);
  t.kind = OFTAWQ_TARGET_OTHER;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_NOT_APPLICABLE);
  t.kind = (oftawq_target_kind)8;
  ck_assert_int_eq(oftawq_dispatch(ctx, &t, "x", &c, NULL, 0, &layer), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_model_file_close(mf);
  free(dir);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ what PEFT refuses (and what it accepts) */

START_TEST(targeting_errors_as_peft)
{
  static const struct {
    const char *config, *weights;
    oftawq_status want;
    const char *message;
  } cases[] = {
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"nope\"]}", "a", OFTAWQ_E_NOT_FOUND,
     "Target modules {'nope'} not found in the base model. Please check the target modules and try again."},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"nope\"], \"layers_to_transform\": [1]}",
     "a", OFTAWQ_E_NOT_FOUND, "Note: You specified 'layers_to_transform'"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": []}", "a", OFTAWQ_E_NOT_FOUND,
     "No `target_modules` passed"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": \".*_proj\", \"exclude_modules\": \".*\"}",
     "a", OFTAWQ_E_NOT_FOUND, "All modules were excluded."},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"q_proj\"], \"exclude_modules\": [\"q_proj\"]}",
     "a", OFTAWQ_E_NOT_FOUND, "No modules were targeted for adaptation"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"self_attn\"]}", "a", OFTAWQ_E_UNSUPPORTED,
     "Target module model.layers.0.self_attn is not supported"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"norm\"]}", "a", OFTAWQ_E_UNSUPPORTED,
     "Target module model.norm is not supported"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"q_proj\"], \"layers_to_transform\": [0],"
     " \"layers_pattern\": \"(layers)\"}", "a", OFTAWQ_E_UNSUPPORTED, "not a layer index"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": \"(?i)q_proj\"}", "a", OFTAWQ_E_UNSUPPORTED,
     "target_modules"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": \"all-linear\"}", "a", OFTAWQ_E_UNSUPPORTED,
     "all-linear"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"k_proj\"], \"init_weights\": false}", "a",
     OFTAWQ_E_FORMAT, "no weights for module 'model.layers.0.self_attn.k_proj'"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 32, \"target_modules\": [\"q_proj\"]}", "a", OFTAWQ_E_FORMAT,
     "is [8, 120], expected [4, 496]"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": 3}", "a", OFTAWQ_E_FORMAT,
     "target_modules"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"q_proj\"], \"layers_to_transform\": \"0\"}",
     "a", OFTAWQ_E_FORMAT, "layers_to_transform"},
    /* huge r / oft_block_size are adjusted to in_features as PEFT does, then checked against the file (fast) */
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 1000000000, \"target_modules\": [\"q_proj\"]}", "a",
     OFTAWQ_E_FORMAT, "expected [1, 8128]"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 0, \"r\": 1000000000, \"target_modules\": [\"q_proj\"]}", "a",
     OFTAWQ_E_FORMAT, "expected [128, 0]"},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"num_cayley_neumann_terms\": 1000000000, "
     "\"target_modules\": [\"q_proj\"]}", "a", OFTAWQ_E_INVALID_ARGUMENT, "exceeds the supported 256"},
    /* accepted: R = I where the file has no weights (init_weights true), a full-precision module, the default */
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"k_proj\", \"q_proj\"]}", "a", OFTAWQ_OK,
     NULL},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16, \"target_modules\": [\"lm_head\", \"q_proj\"]}", "a", OFTAWQ_OK,
     NULL},
    {"{\"peft_type\": \"OFT\", \"oft_block_size\": 16}", "a", OFTAWQ_OK, NULL},
  };
  oftawq_context *ctx = tu_context(NULL);
  char *mdir = tu_srcpath(FIXTURE "/model");
  size_t i, checked = 0;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *adir = adapter_copy("targeting", cases[i].config, cases[i].weights);
    oftawq_model *m = NULL;
    oftawq_status st;
    ck_assert_int_eq(oftawq_model_open(ctx, mdir, NULL, &m), OFTAWQ_OK);
    st = oftawq_model_load_adapter(m, adir, "t");
    ck_assert_msg(st == cases[i].want, "case %zu: %s (%s)", i, oftawq_status_name(st), oftawq_context_last_error(ctx));
    if (cases[i].message)
      ck_assert_msg(strstr(oftawq_context_last_error(ctx), cases[i].message) != NULL, "case %zu: %s", i,
                    oftawq_context_last_error(ctx));
    ck_assert_uint_eq(oftawq_model_adapter_count(m), st == OFTAWQ_OK ? 1 : 0); /* a failed load changes nothing */
    checked += st == OFTAWQ_OK && i >= 17;
    if (st == OFTAWQ_OK && i == 17) {
      oftawq_model_outcome o = outcome_of(m, "model.layers.1.self_attn.k_proj", 0);
      ck_assert_int_eq(o.outcome, OFTAWQ_OUTCOME_WRAPPED);
      ck_assert_int_eq(o.has_weights, 0);
      ck_assert_ptr_nonnull(strstr(o.reason, "R = I"));
      ck_assert_int_eq(outcome_of(m, "model.layers.1.self_attn.q_proj", 0).has_weights, 1);
    }
    if (st == OFTAWQ_OK && i == 18) {
      oftawq_model_outcome o = outcome_of(m, "lm_head", 0);
      ck_assert_int_eq(o.outcome, OFTAWQ_OUTCOME_NOT_APPLICABLE);
      ck_assert_int_eq(o.status, OFTAWQ_NOT_APPLICABLE);
      ck_assert_ptr_nonnull(strstr(o.reason, "not an AWQ GEMM layer"));
    }
    if (st == OFTAWQ_OK && i == 19) { /* llama's default: q_proj and v_proj */
      ck_assert_int_eq(outcome_of(m, "model.layers.1.self_attn.v_proj", 0).outcome, OFTAWQ_OUTCOME_WRAPPED);
      ck_assert_int_eq(outcome_of(m, "model.layers.1.self_attn.k_proj", 0).outcome, OFTAWQ_OUTCOME_NOT_TARGETED);
    }
    oftawq_model_destroy(m);
    tu_rmdir(adir);
    free(adir);
  }
  ck_assert_uint_eq(checked, 3);
  free(mdir);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ API misuse */

START_TEST(api_misuse)
{
  oftawq_context *ctx = tu_context(NULL);
  char *mdir = tu_srcpath(FIXTURE "/model"), *adir = tu_srcpath(FIXTURE "/adapter_a"), long_name[200];
  oftawq_model_options opt;
  oftawq_model_module mod;
  oftawq_model_outcome o;
  oftawq_model_stats st;
  oftawq_oft_config c;
  oftawq_model *m = (oftawq_model *)1;
  oftawq_layer *layer = (oftawq_layer *)1;
  size_t index = 0;
  const char *names[2] = {"a", NULL};
  float x[128], y[128];
  oftawq_model_options_init(NULL);
  oftawq_model_module_init(NULL);
  oftawq_model_outcome_init(NULL);
  oftawq_model_stats_init(NULL);
  oftawq_model_destroy(NULL);
  oftawq_model_options_init(&opt);
  ck_assert_uint_eq(opt.size, sizeof opt);
  /* open */
  ck_assert_int_eq(oftawq_model_open(NULL, mdir, NULL, &m), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_open(ctx, mdir, NULL, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_open(ctx, NULL, NULL, &m), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(m);
  opt.size = sizeof opt - 1;
  ck_assert_int_eq(oftawq_model_open(ctx, mdir, &opt, &m), OFTAWQ_E_INVALID_ARGUMENT);
  opt.size = sizeof opt;
  opt.producer = (oftawq_awq_producer)3;
  ck_assert_int_eq(oftawq_model_open(ctx, mdir, &opt, &m), OFTAWQ_E_INVALID_ARGUMENT);
  opt.producer = (oftawq_awq_producer)-1;
  ck_assert_int_eq(oftawq_model_open(ctx, mdir, &opt, &m), OFTAWQ_E_INVALID_ARGUMENT);
  /* a missing folder, and one with neither config.json nor quant_config.json, say so (not "not quantised") */
  ck_assert_int_eq(oftawq_model_open(ctx, "/nonexistent/model", NULL, &m), OFTAWQ_E_NOT_FOUND);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(oftawq_context_last_error(ctx), "/nonexistent/model: No such file or directory") != NULL, "%s",
                oftawq_context_last_error(ctx));
  ck_assert_int_eq(oftawq_model_open(ctx, adir, NULL, &m), OFTAWQ_E_NOT_FOUND);
  ck_assert_msg(strstr(oftawq_context_last_error(ctx), "no config.json") != NULL, "%s", oftawq_context_last_error(ctx));
  ck_assert_int_eq(oftawq_model_open(ctx, mdir, NULL, &m), OFTAWQ_OK);
  /* modules */
  ck_assert_uint_eq(oftawq_model_module_count(NULL), 0);
  oftawq_model_module_init(&mod);
  ck_assert_int_eq(oftawq_model_module_get(NULL, 0, &mod), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_module_get(m, 0, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_module_get(m, oftawq_model_module_count(m), &mod), OFTAWQ_E_INVALID_ARGUMENT);
  mod.size = sizeof mod - 1;
  ck_assert_int_eq(oftawq_model_module_get(m, 0, &mod), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_module_find(NULL, "lm_head", &index), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_module_find(m, NULL, &index), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_module_find(m, "lm_head", NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_module_find(m, "model.layers", &index), OFTAWQ_E_NOT_FOUND); /* a container */
  /* adapters */
  ck_assert_int_eq(oftawq_model_load_adapter(NULL, adir, "a"), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_load_adapter(m, NULL, "a"), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_load_adapter(m, adir, ""), OFTAWQ_E_INVALID_ARGUMENT);
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  ck_assert_int_eq(oftawq_model_load_adapter(m, adir, long_name), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "199 bytes"));
  ck_assert_int_eq(oftawq_model_load_adapter(m, "/nonexistent/adapter", "a"), OFTAWQ_E_NOT_FOUND);
  ck_assert_uint_eq(oftawq_model_adapter_count(m), 0);
  ck_assert_int_eq(oftawq_model_load_adapter(m, adir, "a"), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_load_adapter(m, adir, "a"), OFTAWQ_E_EXISTS);
  ck_assert_uint_eq(oftawq_model_adapter_count(m), 1);
  ck_assert_uint_eq(oftawq_model_adapter_count(NULL), 0);
  ck_assert_ptr_null(oftawq_model_adapter_name(NULL, 0));
  ck_assert_ptr_null(oftawq_model_adapter_name(m, 1));
  oftawq_oft_config_init(&c);
  ck_assert_int_eq(oftawq_model_adapter_config(NULL, 0, &c), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_adapter_config(m, 0, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_adapter_config(m, 1, &c), OFTAWQ_E_INVALID_ARGUMENT);
  c.size = sizeof c - 1;
  ck_assert_int_eq(oftawq_model_adapter_config(m, 0, &c), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_model_outcome_init(&o);
  ck_assert_int_eq(oftawq_model_outcome_get(NULL, 0, 0, &o), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_outcome_get(m, 0, 0, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_outcome_get(m, oftawq_model_module_count(m), 0, &o), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_outcome_get(m, 0, 1, &o), OFTAWQ_E_INVALID_ARGUMENT);
  o.size = sizeof o - 1;
  ck_assert_int_eq(oftawq_model_outcome_get(m, 0, 0, &o), OFTAWQ_E_INVALID_ARGUMENT);
  /* active */
  ck_assert_int_eq(oftawq_model_set_active(NULL, names, 1), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_set_active(m, NULL, 1), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_set_active(m, names, 2), OFTAWQ_E_INVALID_ARGUMENT);
  names[1] = "nope";
  ck_assert_int_eq(oftawq_model_set_active(m, names, 2), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_model_set_active(m, NULL, 0), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_enable_adapters(NULL, 1), OFTAWQ_E_INVALID_ARGUMENT);
  /* layers */
  ck_assert_int_eq(oftawq_model_layer(NULL, "lm_head", &layer), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.0.self_attn.q_proj", NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_layer(m, NULL, &layer), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(layer);
  ck_assert_int_eq(oftawq_model_layer(m, "model.layers.9.self_attn.q_proj", &layer), OFTAWQ_E_NOT_FOUND);
  ck_assert_int_eq(oftawq_model_layer(m, "lm_head", &layer), OFTAWQ_E_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "not quantised"));
  ck_assert_int_eq(oftawq_model_layer(m, "model.norm", &layer), OFTAWQ_E_UNSUPPORTED);
  ck_assert_int_eq(oftawq_model_forward(NULL, "lm_head", OFTAWQ_F32, x, y, 1), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_forward(m, "model.layers.0.self_attn.q_proj", (oftawq_dtype)3, x, y, 1),
                   OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_forward(m, "model.layers.0.self_attn.q_proj", OFTAWQ_F32, NULL, y, 1),
                   OFTAWQ_E_INVALID_ARGUMENT);
  memset(x, 0, sizeof x);
  ck_assert_int_eq(oftawq_model_forward(m, "model.layers.0.self_attn.q_proj", OFTAWQ_F32, x, y, 1), OFTAWQ_OK);
  /* stats */
  oftawq_model_stats_init(&st);
  ck_assert_int_eq(oftawq_model_get_stats(NULL, &st), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_get_stats(m, NULL), OFTAWQ_E_INVALID_ARGUMENT);
  st.size = sizeof st - 1;
  ck_assert_int_eq(oftawq_model_get_stats(m, &st), OFTAWQ_E_INVALID_ARGUMENT);
  oftawq_model_destroy(m);
  free(mdir);
  free(adir);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ saving an adapter of the model */

START_TEST(save_adapter_round_trip)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_model *m = open_fixture(ctx, NULL, 2), *again = NULL, *none = NULL;
  char *tmp = tu_tempdir("saved"), *mdir = tu_srcpath(FIXTURE "/model"), path[4200];
  const char *q0 = "model.layers.0.self_attn.q_proj", *v1 = "model.layers.1.self_attn.v_proj";
  oftawq_layer *layer;
  oftawq_oft_shape shape;
  oftawq_oft_config c;
  float x[3 * 128], *w;
  float y0[3 * 128], y1[3 * 128], v0[3 * 64], v2[3 * 64];
  size_t i, count;
  tu_fill_random(x, 3 * 128, 1.0f, 5);
  /* change a's weights on one module through its layer, as training would */
  ck_assert_int_eq(oftawq_model_layer(m, q0, &layer), OFTAWQ_OK);
  oftawq_oft_shape_init(&shape);
  ck_assert_int_eq(oftawq_oft_get_shape(oftawq_layer_adapter(layer, "a"), &shape), OFTAWQ_OK);
  count = (size_t)shape.weight_rows * (size_t)shape.n_elements;
  w = tu_random_floats(count, 0.02f, 17);
  ck_assert_int_eq(oftawq_layer_set_adapter_weights(layer, "a", w, count), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_forward(m, q0, OFTAWQ_F32, x, y0, 3), OFTAWQ_OK);
  ck_assert_int_eq(oftawq_model_forward(m, v1, OFTAWQ_F32, x, v0, 3), OFTAWQ_OK);
  snprintf(path, sizeof path, "%s/a", tmp);
  ck_assert_msg(oftawq_model_save_adapter(m, "a", path) == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
  /* loaded again: the same modules, the same outputs */
  ck_assert_int_eq(oftawq_model_open(ctx, mdir, NULL, &again), OFTAWQ_OK);
  ck_assert_msg(oftawq_model_load_adapter(again, path, "a") == OFTAWQ_OK, "%s", oftawq_context_last_error(ctx));
  for (i = 0; i < oftawq_model_module_count(m); i++) {
    oftawq_model_outcome o1, o2;
    oftawq_model_outcome_init(&o1);
    oftawq_model_outcome_init(&o2);
    ck_assert_int_eq(oftawq_model_outcome_get(m, i, 0, &o1), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_model_outcome_get(again, i, 0, &o2), OFTAWQ_OK);
    ck_assert_int_eq(o1.outcome == OFTAWQ_OUTCOME_WRAPPED, o2.outcome == OFTAWQ_OUTCOME_WRAPPED);
  }
  ck_assert_int_eq(oftawq_model_forward(again, q0, OFTAWQ_F32, x, y1, 3), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(y0, y1, sizeof y0), 0);
  ck_assert_int_eq(oftawq_model_forward(again, v1, OFTAWQ_F32, x, v2, 3), OFTAWQ_OK);
  ck_assert_int_eq(memcmp(v0, v2, sizeof v0), 0);
  oftawq_oft_config_init(&c);
  ck_assert_int_eq(oftawq_model_adapter_config(again, 0, &c), OFTAWQ_OK);
  ck_assert_int_eq(c.oft_block_size, 16);
  ck_assert_int_eq(c.num_cayley_neumann_terms, 5);
  /* errors */
  ck_assert_int_eq(oftawq_model_save_adapter(NULL, "a", path), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_save_adapter(m, NULL, path), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_save_adapter(m, "a", NULL), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_model_save_adapter(m, "zz", path), OFTAWQ_E_NOT_FOUND);
  snprintf(path, sizeof path, "%s/no/such/folder", tmp);
  ck_assert_int_eq(oftawq_model_save_adapter(m, "a", path), OFTAWQ_E_IO);
  {
    oftawq_model_options opt;
    char *adir = tu_srcpath(FIXTURE "/adapter_a");
    oftawq_model_options_init(&opt);
    opt.record_refusals = 1;
    opt.producer = OFTAWQ_PRODUCER_GPTQMODEL;
    opt.producer_version = "5.0";
    ck_assert_int_eq(oftawq_model_open(ctx, mdir, &opt, &none), OFTAWQ_OK);
    ck_assert_int_eq(oftawq_model_load_adapter(none, adir, "a"), OFTAWQ_OK);
    snprintf(path, sizeof path, "%s/none", tmp);
    ck_assert_int_eq(oftawq_model_save_adapter(none, "a", path), OFTAWQ_E_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(oftawq_context_last_error(ctx), "wraps no module"));
    free(adir);
  }
  snprintf(path, sizeof path, "%s/a", tmp);
  tu_rmdir(path);
  oftawq_model_destroy(none);
  oftawq_model_destroy(again);
  oftawq_model_destroy(m);
  free(w);
  free(mdir);
  tu_rmdir(tmp);
  free(tmp);
  oftawq_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------ the CLI: inspect and forward */

/* A fresh temporary folder as an absolute path (the CLI runs from the fixture folder). */
static char *abs_tempdir(const char *tag)
{
  char *rel = tu_tempdir(tag), *abs = realpath(rel, NULL);
  ck_assert_ptr_nonnull(abs);
  free(rel);
  return abs;
}

/* Runs the CLI from the fixture folder with stdout to `out` and stderr to `err` (either may be NULL). */
static int run_cli(const char *args, const char *out, const char *err)
{
  const char *b = getenv("OFTAWQ_TEST_BUILDDIR");
  char *fixture = tu_srcpath(FIXTURE), cmd[8192], builddir[4096];
  int rc;
  if (!b || !*b) b = ".";
  if (b[0] == '/') snprintf(builddir, sizeof builddir, "%s", b);
  else ck_assert_ptr_nonnull(getcwd(builddir, sizeof builddir));
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s/tools/oftawq' %s >'%s' 2>'%s'", fixture, builddir, args,
           out ? out : "/dev/null", err ? err : "/dev/null");
  rc = system(cmd);
  free(fixture);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

START_TEST(cli_inspect_matches_peft_wrapped_list)
{
  char *tmp = abs_tempdir("inspect"), out[4200], err[4200], *text;
  cJSON *doc, *w = read_json(FIXTURE "/wrapped.json"), *mod;
  int modules = 0;
  snprintf(out, sizeof out, "%s/out.json", tmp);
  snprintf(err, sizeof err, "%s/err", tmp);
  ck_assert_int_eq(run_cli("inspect --json --model model --adapter adapter_a:a --adapter adapter_b:b --adapter "
                           "adapter_c:c --adapter adapter_d:d --active b,a",
                           out, err),
                   0);
  ck_assert_ptr_nonnull(text = tu_read_file(out, NULL));
  ck_assert_msg((doc = cJSON_Parse(text)) != NULL, "not JSON: %s", text);
  cJSON_ArrayForEach(mod, cJSON_GetObjectItem(doc, "modules"))
  {
    const char *name = cJSON_GetObjectItem(mod, "name")->valuestring;
    const cJSON *peft = cJSON_GetObjectItem(cJSON_GetObjectItem(w, "wrapped"), name), *e, *ours;
    int a;
    if (strcmp(cJSON_GetObjectItem(mod, "kind")->valuestring, "awq_gemm")) continue;
    modules++;
    for (a = 0; a < N_ADAPTERS; a++) {
      int in_peft = 0;
      const char *outcome;
      cJSON_ArrayForEach(e, peft) in_peft |= !strcmp(e->valuestring, adapter_names[a]);
      ours = cJSON_GetObjectItem(cJSON_GetObjectItem(mod, "adapters"), adapter_names[a]);
      outcome = cJSON_GetObjectItem(ours, "outcome")->valuestring;
      ck_assert_msg((strcmp(outcome, "wrapped") == 0) == in_peft, "%s / %s: %s", name, adapter_names[a], outcome);
    }
    /* b before a where both apply; a skipped where only b wraps */
    if (!strcmp(name, "model.layers.1.self_attn.k_proj")) {
      const cJSON *applies = cJSON_GetObjectItem(mod, "applies");
      ck_assert_int_eq(cJSON_GetArraySize(applies), 1);
      ck_assert_str_eq(cJSON_GetArrayItem(applies, 0)->valuestring, "b");
    }
    if (!strcmp(name, "model.layers.0.mlp.gate_proj"))
      ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(mod, "applies")), 0); /* c, d not active */
  }
  ck_assert_int_eq(modules, 14);
  ck_assert_int_eq((int)cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "totals"), "wrapped"), "a")
                     ->valuedouble, 5);
  cJSON_Delete(doc);
  free(text);
  /* the text table, and a refusal shown rather than fatal */
  ck_assert_int_eq(run_cli("inspect --model model --adapter adapter_a:a --producer gptqmodel:5.6.11", out, err), 0);
  ck_assert_ptr_nonnull(text = tu_read_file(out, NULL));
  ck_assert_msg(strstr(text, "REFUSED") && strstr(text, "total: 14 AWQ modules, a wraps 0") &&
                strstr(text, "Found an incompatible version of gptqmodel. Found version 5.6.11"), "%s", text);
  free(text);
  ck_assert_int_eq(run_cli("inspect --model model --adapter adapter_a:a --producer autoawq:0.2.9", out, err), 0);
  ck_assert_ptr_nonnull(text = tu_read_file(out, NULL));
  ck_assert_msg(strstr(text, "model.layers.1.mlp.down_proj") && strstr(text, "excl") && strstr(text, "a wraps 5"), "%s",
                text);
  free(text);
  /* usage and errors */
  ck_assert_int_eq(run_cli("inspect", out, err), 2);
  ck_assert_int_eq(run_cli("inspect --model model --producer nothing:1", out, err), 1);
  ck_assert_int_eq(run_cli("inspect --model model --adapter adapter_a:a --active zz", out, err), 1);
  ck_assert_int_eq(run_cli("inspect --model model --bogus", out, err), 2);
  ck_assert_int_eq(run_cli("inspect --help", out, err), 0);
  cJSON_Delete(w);
  tu_rmdir(tmp);
  free(tmp);
}
END_TEST

START_TEST(cli_forward_modules_and_all)
{
  oftawq_context *ctx = tu_context(NULL);
  oftawq_model *m = open_fixture(ctx, NULL, N_ADAPTERS);
  char *tmp = abs_tempdir("fwd"), args[8192], out[4200], err[4200], why[256], *xp;
  const char *ab[] = {"a", "b"};
  oftawq_safetensors *ys = NULL, *xs = NULL;
  size_t i, checked = 0;
  int bf16;
  ck_assert_int_eq(oftawq_model_set_active(m, ab, 2), OFTAWQ_OK);
  snprintf(err, sizeof err, "%s/err", tmp);
  for (bf16 = 0; bf16 < 2; bf16++) {
    snprintf(out, sizeof out, "%s/y.safetensors", tmp);
    snprintf(args, sizeof args, "forward --model model --module all --input %s --output '%s' --adapter adapter_a:a "
             "--adapter adapter_b:b --adapter adapter_c:c --adapter adapter_d:d --active a,b",
             bf16 ? "x_bf16.safetensors" : "x.safetensors", out);
    ck_assert_int_eq(run_cli(args, NULL, err), 0);
    ck_assert_int_eq(oftawq_safetensors_open(out, &ys, why, sizeof why), OFTAWQ_OK);
    ck_assert_uint_eq(oftawq_safetensors_count(ys), 14);
    xp = tu_srcpath(bf16 ? FIXTURE "/x_bf16.safetensors" : FIXTURE "/x.safetensors");
    ck_assert_int_eq(oftawq_safetensors_open(xp, &xs, why, sizeof why), OFTAWQ_OK);
    for (i = 0; i < oftawq_model_module_count(m); i++) {
      oftawq_model_module mod;
      oftawq_tensor x, y;
      uint16_t *want;
      if (!module_tensors(m, i, xs, ys, &mod, &x, &y)) continue;
      ck_assert_int_eq(y.dtype, x.dtype);
      ck_assert_int_eq(y.shape[1], mod.N);
      want = malloc((size_t)x.shape[0] * (size_t)mod.N * 2);
      ck_assert_int_eq(oftawq_model_forward(m, mod.name, bf16 ? OFTAWQ_BF16 : OFTAWQ_F16, x.data, want, (size_t)x.shape[0]),
                       OFTAWQ_OK);
      ck_assert_msg(!memcmp(want, y.data, y.nbytes), "%s: the CLI and the library differ", mod.name);
      free(want);
      checked++;
    }
    oftawq_safetensors_close(ys);
    oftawq_safetensors_close(xs);
    free(xp);
  }
  ck_assert_uint_eq(checked, 28);
  /* a list of two; one module reads <module>.x when there is no 'x' */
  snprintf(args, sizeof args, "forward --model model --module model.layers.0.self_attn.q_proj,model.layers.1.mlp.up_proj "
           "--input x.safetensors --output '%s' --adapter adapter_a:a --adapter adapter_b:b", out);
  ck_assert_int_eq(run_cli(args, NULL, err), 0);
  ck_assert_int_eq(oftawq_safetensors_open(out, &ys, why, sizeof why), OFTAWQ_OK);
  ck_assert_uint_eq(oftawq_safetensors_count(ys), 2);
  oftawq_safetensors_close(ys);
  snprintf(args, sizeof args, "forward --model model --module model.layers.0.self_attn.q_proj --input x.safetensors "
           "--output '%s'", out);
  ck_assert_int_eq(run_cli(args, NULL, err), 0);
  ck_assert_int_eq(oftawq_safetensors_open(out, &ys, why, sizeof why), OFTAWQ_OK);
  {
    oftawq_tensor y;
    oftawq_tensor_init(&y);
    ck_assert_int_eq(oftawq_safetensors_find(ys, "model.layers.0.self_attn.q_proj.y", &y), OFTAWQ_OK);
  }
  oftawq_safetensors_close(ys);
  /* errors: a module missing from the input, a non-AWQ module, a producer below the gate; no output left */
  remove(out);
  snprintf(args, sizeof args, "forward --model model --module model.layers.0.self_attn.q_proj,lm_head --input "
           "x.safetensors --output '%s'", out);
  ck_assert_int_eq(run_cli(args, NULL, err), 1);
  snprintf(args, sizeof args, "forward --model model --module all --input x.safetensors --output '%s' --adapter "
           "adapter_a:a --producer gptqmodel:5.6.11", out);
  ck_assert_int_eq(run_cli(args, NULL, err), 1);
  {
    char *e = tu_read_file(err, NULL);
    ck_assert_msg(e && strstr(e, "oftawq: ") == e && strstr(e, "gptqmodel") && !strchr(e, '\n')[1], "%s", e);
    free(e);
  }
  ck_assert_int_ne(access(out, F_OK), 0);
  oftawq_model_destroy(m);
  tu_rmdir(tmp);
  free(tmp);
  oftawq_context_destroy(ctx);
}
END_TEST

/* README's worked inspect: its command, run here, prints exactly the table README shows, and only the warning it
 * names on stderr (README is part of the product: a change of the table must change README too). */
START_TEST(readme_inspect_example_is_true)
{
  static const char command[] = "inspect --model model --adapter adapter_a:a --adapter adapter_b:b --active a,b";
  static const char warning[] =
    "oftawq: warning: module_dropout = 0.1 has no effect: PEFT has not applied it since 0.16\n";
  char *readme_path = tu_srcpath("README.md"), *readme = tu_read_file(readme_path, NULL), *tmp = abs_tempdir("readme");
  char out[4200], err[4200], *shown, *end, *got, *got_err;
  ck_assert_ptr_nonnull(readme);
  ck_assert_msg(strstr(readme, "cd tests/fixtures/model\n../../../tools/oftawq inspect --model model --adapter "
                               "adapter_a:a --adapter adapter_b:b --active a,b\n") != NULL,
                "README's worked inspect command changed: update this test");
  ck_assert_ptr_nonnull(shown = strstr(readme, "```\nmodel model: "));
  shown += 4;
  ck_assert_ptr_nonnull(end = strstr(shown, "\n```"));
  end[1] = '\0';
  snprintf(out, sizeof out, "%s/out", tmp);
  snprintf(err, sizeof err, "%s/err", tmp);
  ck_assert_int_eq(run_cli(command, out, err), 0);
  ck_assert_ptr_nonnull(got = tu_read_file(out, NULL));
  ck_assert_ptr_nonnull(got_err = tu_read_file(err, NULL));
  ck_assert_msg(!strcmp(got, shown), "README shows:\n%s\nthe command prints:\n%s", shown, got);
  ck_assert_str_eq(got_err, warning);
  free(got);
  free(got_err);
  free(readme);
  free(readme_path);
  tu_rmdir(tmp);
  free(tmp);
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
  tcase_add_test(dev, outcomes_match_peft_wrapped_list);
  tcase_add_test(dev, warnings_once_per_model);
  tcase_add_test(dev, memory_budget_evicts_and_outputs_stay);
  tcase_add_test(dev, loading_reaches_uploaded_layers);
  tcase_add_test(dev, producer_version_gates);
  tcase_add_test(dev, dispatch_gate_per_producer);
  tcase_add_test(dev, targeting_errors_as_peft);
  tcase_add_test(dev, api_misuse);
  tcase_add_test(dev, save_adapter_round_trip);
  tcase_add_test(dev, cli_inspect_matches_peft_wrapped_list);
  tcase_add_test(dev, cli_forward_modules_and_all);
  tcase_add_test(dev, readme_inspect_example_is_true);
  suite_add_tcase(s, cpu);
  suite_add_tcase(s, dev);
  return s;
}

int main(void) { return tu_run(model_suite()); }
