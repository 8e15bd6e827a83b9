/* checkpoint.c: Hugging Face AWQ model folders, PEFT OFT adapter folders, and building a layer from them. */
#include "config.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ref.h"
#include "checkpoint.h"
#include "safetensors.h"

#define WHY 512
#define ADAPTER_KEY_PREFIX "base_model.model."
#define ADAPTER_KEY_SUFFIX ".oft_R.weight"
/* A missing peft_version: PEFT wrote it since 0.18.0, so the adapter is older (PEFT's own stand-in value). */
#define PEFT_VERSION_MISSING "0.0.0"

/* --------------------------------------------------------------- helpers */

static char *join(const char *dir, const char *name)
{
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Reads and parses a JSON file: OFTAWQ_E_NOT_FOUND if it does not exist. */
static oftawq_status read_json(const char *path, cJSON **out, char *why, size_t cap)
{
  FILE *f = fopen(path, "rb");
  long n;
  char *text;
  *out = NULL;
  if (!f) return oftawq__why(why, cap, OFTAWQ_E_NOT_FOUND, "%s: not found", path);
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 || !(text = malloc((size_t)n + 1))) {
    fclose(f);
    return oftawq__why(why, cap, OFTAWQ_E_IO, "%s: cannot read", path);
  }
  if (fread(text, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(text);
    return oftawq__why(why, cap, OFTAWQ_E_IO, "%s: cannot read", path);
  }
  fclose(f);
  *out = cJSON_ParseWithLength(text, (size_t)n);
  free(text);
  if (!*out) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: not valid JSON", path);
  if (!cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    *out = NULL;
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: the JSON is not an object", path);
  }
  return OFTAWQ_OK;
}

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* Integer field: absent keeps *out; present must be an integral number. */
static int get_int(const cJSON *o, const char *key, int *out)
{
  const cJSON *j = item(o, key);
  if (!j || cJSON_IsNull(j)) return 1;
  if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || fabs(j->valuedouble) > 1e9) return 0;
  *out = (int)j->valuedouble;
  return 1;
}

static int get_bool(const cJSON *o, const char *key, int *out)
{
  const cJSON *j = item(o, key);
  if (!j || cJSON_IsNull(j)) return 1;
  if (!cJSON_IsBool(j)) return 0;
  *out = cJSON_IsTrue(j);
  return 1;
}

static int get_double(const cJSON *o, const char *key, double *out)
{
  const cJSON *j = item(o, key);
  if (!j || cJSON_IsNull(j)) return 1;
  if (!cJSON_IsNumber(j)) return 0;
  *out = j->valuedouble;
  return 1;
}

/* --------------------------------------------------------------- model folders */

struct oftawq_model {
  oftawq_safetensors **files;
  size_t n_files;
  int group_size;
  char **modules;
  size_t n_modules;
  char **skip;               /* modules_to_not_convert substrings */
  size_t n_skip;
};

void oftawq_model_close(oftawq_model *m)
{
  size_t i;
  if (!m) return;
  for (i = 0; i < m->n_files; i++) oftawq_safetensors_close(m->files[i]);
  for (i = 0; i < m->n_modules; i++) free(m->modules[i]);
  for (i = 0; i < m->n_skip; i++) free(m->skip[i]);
  free(m->files);
  free(m->modules);
  free(m->skip);
  free(m);
}

/* Checks a quantization_config object (legacy: quant_config.json's key names) and keeps what we need. */
static oftawq_status parse_quant(oftawq_model *m, const cJSON *q, int legacy, const char *where, char *why, size_t cap)
{
  const cJSON *j;
  int bits = 4, zero_point = 1;
  const char *method = "awq", *version = "gemm";
  if (!cJSON_IsObject(q)) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: quantization_config is not an object", where);
  if ((j = item(q, "quant_method")) && cJSON_IsString(j)) method = j->valuestring;
  if (strcasecmp(method, "awq") != 0)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: quantised with '%s', not AWQ", where, method);
  m->group_size = 128;
  if (!get_int(q, legacy ? "w_bit" : "bits", &bits) || !get_int(q, legacy ? "q_group_size" : "group_size", &m->group_size) ||
      !get_bool(q, "zero_point", &zero_point) || (legacy && (!get_int(q, "bits", &bits) || !get_int(q, "group_size", &m->group_size))))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: bits, group_size or zero_point has the wrong type", where);
  if ((j = item(q, "version")) && cJSON_IsString(j)) version = j->valuestring;
  if (bits != 4)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: AWQ with %d-bit weights; only 4-bit is supported", where,
                       bits);
  if (strcasecmp(version, "gemm") != 0)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                       "%s: AWQ version '%s' is not the GEMM layout (GEMV, GEMV_fast and Marlin pack differently)",
                       where, version);
  if (!zero_point)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: AWQ GEMM without zero points is not a layout AutoAWQ writes",
                       where);
  if (m->group_size == 0 || m->group_size < -1)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: group_size %d is invalid", where, m->group_size);
  if ((j = item(q, "modules_to_not_convert")) && cJSON_IsArray(j)) {
    const cJSON *e;
    m->skip = calloc((size_t)cJSON_GetArraySize(j) + 1, sizeof *m->skip);
    if (!m->skip) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    cJSON_ArrayForEach(e, j)
    {
      if (!cJSON_IsString(e)) continue;
      if (!(m->skip[m->n_skip] = oftawq__strdup(e->valuestring)))
        return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      m->n_skip++;
    }
  }
  return OFTAWQ_OK;
}

/* The quantisation settings, from config.json's quantization_config or a legacy quant_config.json. */
static oftawq_status read_quant_config(oftawq_model *m, const char *dir, char *why, size_t cap)
{
  char *path = join(dir, "config.json");
  cJSON *root = NULL;
  const cJSON *q = NULL;
  oftawq_status status;
  int legacy = 0;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  status = read_json(path, &root, why, cap);
  free(path);
  if (status == OFTAWQ_OK) q = item(root, "quantization_config");
  if (status < 0 && status != OFTAWQ_E_NOT_FOUND) goto done;
  if (!q) { /* older AutoAWQ folders */
    cJSON *legacy_root = NULL;
    char *lpath = join(dir, "quant_config.json");
    oftawq_status ls = lpath ? read_json(lpath, &legacy_root, why, cap) : OFTAWQ_E_OUT_OF_MEMORY;
    free(lpath);
    if (ls == OFTAWQ_E_NOT_FOUND) {
      status = oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                           "%s: no quantization_config in config.json and no quant_config.json: the model is not "
                           "quantised (a plain fp16/bf16 checkpoint), not AWQ",
                           dir);
      goto done;
    }
    if (ls < 0) {
      status = ls;
      goto done;
    }
    cJSON_Delete(root);
    root = legacy_root;
    q = root;
    legacy = 1;
  }
  status = parse_quant(m, q, legacy, dir, why, cap);
done:
  cJSON_Delete(root);
  return status;
}

oftawq_status oftawq__quant_config_parse(const char *text, size_t len, int legacy, int *group_size, char *why,
                                         size_t cap)
{
  cJSON *root = cJSON_ParseWithLength(text, len);
  oftawq_model m;
  oftawq_status status;
  size_t i;
  memset(&m, 0, sizeof m);
  if (!root) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "not valid JSON");
  status = parse_quant(&m, legacy ? root : item(root, "quantization_config"), legacy, "config", why, cap);
  if (status == OFTAWQ_OK) *group_size = m.group_size;
  for (i = 0; i < m.n_skip; i++) free(m.skip[i]);
  free(m.skip);
  cJSON_Delete(root);
  return status;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static oftawq_status add_file(oftawq_model *m, const char *dir, const char *name, char *why, size_t cap)
{
  char *path = join(dir, name);
  oftawq_safetensors **grown;
  oftawq_status status;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  grown = realloc(m->files, (m->n_files + 1) * sizeof *grown);
  if (!grown) {
    free(path);
    return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  m->files = grown;
  status = oftawq_safetensors_open(path, &m->files[m->n_files], why, cap);
  free(path);
  if (status == OFTAWQ_OK) m->n_files++;
  return status;
}

/* The weight files: model.safetensors, the shards of an index, or every *.safetensors. */
static oftawq_status open_weights(oftawq_model *m, const char *dir, char *why, size_t cap)
{
  char *path = join(dir, "model.safetensors.index.json");
  cJSON *index = NULL;
  oftawq_status status;
  char **names = NULL;
  size_t n = 0, i;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  status = read_json(path, &index, why, cap);
  free(path);
  if (status == OFTAWQ_OK) {
    const cJSON *map = item(index, "weight_map"), *e;
    if (!cJSON_IsObject(map)) {
      cJSON_Delete(index);
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: the index has no weight_map", dir);
    }
    names = calloc((size_t)cJSON_GetArraySize(map) + 1, sizeof *names);
    cJSON_ArrayForEach(e, map)
    {
      if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
        status = oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: the index maps '%s' to a bad file name", dir, e->string);
        break;
      }
      for (i = 0; i < n && strcmp(names[i], e->valuestring); i++) continue;
      if (i == n && names) names[n++] = oftawq__strdup(e->valuestring);
    }
    cJSON_Delete(index);
    if (status < 0) goto done;
  } else if (status == OFTAWQ_E_NOT_FOUND) {
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap_names = 0;
    status = OFTAWQ_OK;
    if (!d) return oftawq__why(why, cap, OFTAWQ_E_IO, "%s: cannot open the folder", dir);
    while ((e = readdir(d)) != NULL) {
      size_t len = strlen(e->d_name);
      if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors")) continue;
      if (n == cap_names) {
        char **g = realloc(names, (cap_names = cap_names * 2 + 8) * sizeof *g);
        if (!g) break;
        names = g;
      }
      names[n++] = oftawq__strdup(e->d_name);
    }
    closedir(d);
  } else {
    return status;
  }
  if (n == 0) {
    status = oftawq__why(why, cap, OFTAWQ_E_NOT_FOUND, "%s: no .safetensors weights", dir);
    goto done;
  }
  qsort(names, n, sizeof *names, cmp_str);
  for (i = 0; i < n && status == OFTAWQ_OK; i++) status = add_file(m, dir, names[i], why, cap);
done:
  for (i = 0; i < n; i++) free(names[i]);
  free(names);
  return status;
}

static int skipped(const oftawq_model *m, const char *module)
{
  size_t i;
  for (i = 0; i < m->n_skip; i++)
    if (m->skip[i] && strstr(module, m->skip[i])) return 1;
  return 0;
}

static oftawq_status list_modules(oftawq_model *m, char *why, size_t cap)
{
  static const char suffix[] = ".qweight";
  size_t f, i, total = 0;
  for (f = 0; f < m->n_files; f++) total += oftawq_safetensors_count(m->files[f]);
  m->modules = calloc(total + 1, sizeof *m->modules);
  if (!m->modules) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (f = 0; f < m->n_files; f++)
    for (i = 0; i < oftawq_safetensors_count(m->files[f]); i++) {
      oftawq_tensor t;
      size_t len;
      oftawq_tensor_init(&t);
      oftawq_safetensors_get(m->files[f], i, &t);
      len = strlen(t.name);
      if (len <= sizeof suffix - 1 || strcmp(t.name + len - (sizeof suffix - 1), suffix)) continue;
      if (!(m->modules[m->n_modules] = oftawq__strdup(t.name)))
        return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      m->modules[m->n_modules][len - (sizeof suffix - 1)] = '\0';
      if (skipped(m, m->modules[m->n_modules]))
        free(m->modules[m->n_modules]);
      else
        m->n_modules++;
    }
  qsort(m->modules, m->n_modules, sizeof *m->modules, cmp_str);
  return OFTAWQ_OK;
}

oftawq_status oftawq_model_open(const char *dir, oftawq_model **out, char *why, size_t cap)
{
  oftawq_model *m;
  oftawq_status status;
  if (!out) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL output");
  *out = NULL;
  if (!dir) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL folder");
  if (!(m = calloc(1, sizeof *m))) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = read_quant_config(m, dir, why, cap)) < 0 || (status = open_weights(m, dir, why, cap)) < 0 ||
      (status = list_modules(m, why, cap)) < 0) {
    oftawq_model_close(m);
    return status;
  }
  *out = m;
  return OFTAWQ_OK;
}

int oftawq_model_group_size(const oftawq_model *m) { return m ? m->group_size : 0; }
size_t oftawq_model_module_count(const oftawq_model *m) { return m ? m->n_modules : 0; }

const char *oftawq_model_module_name(const oftawq_model *m, size_t i)
{
  return (m && i < m->n_modules) ? m->modules[i] : NULL;
}

static oftawq_status find_tensor(const oftawq_model *m, const char *module, const char *part, oftawq_tensor *t)
{
  char name[1024];
  size_t f;
  if (snprintf(name, sizeof name, "%s.%s", module, part) >= (int)sizeof name) return OFTAWQ_E_NOT_FOUND;
  oftawq_tensor_init(t);
  for (f = 0; f < m->n_files; f++)
    if (oftawq_safetensors_find(m->files[f], name, t) == OFTAWQ_OK) return OFTAWQ_OK;
  return OFTAWQ_E_NOT_FOUND;
}

/* "[a, b]" of a tensor's shape, for messages. */
static const char *shape_text(const oftawq_tensor *t, char *buf, size_t cap)
{
  size_t len = 0;
  int k;
  len += (size_t)snprintf(buf, cap, "%s [", oftawq_tensor_dtype_name(t->dtype));
  for (k = 0; k < t->ndim && len < cap; k++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
  if (len < cap) snprintf(buf + len, cap - len, "]");
  return buf;
}

static oftawq_status expect(const char *module, const char *part, const oftawq_tensor *t, oftawq_tensor_dtype dtype,
                            int ndim, int64_t d0, int64_t d1, char *why, size_t cap)
{
  char have[96], want[96];
  oftawq_tensor w;
  if (t->dtype == dtype && t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1)) return OFTAWQ_OK;
  oftawq_tensor_init(&w);
  w.dtype = dtype;
  w.ndim = ndim;
  w.shape[0] = d0;
  w.shape[1] = d1;
  return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s.%s is %s, expected %s", module, part,
                     shape_text(t, have, sizeof have), shape_text(&w, want, sizeof want));
}

oftawq_status oftawq_model_module(const oftawq_model *m, const char *module, oftawq_awq_tensors *out, char *why,
                                  size_t cap)
{
  oftawq_tensor qw, qz, sc, bias;
  int64_t K, N, G, groups;
  oftawq_status status;
  if (!m || !module || !out || out->size < sizeof *out)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "bad arguments");
  if (find_tensor(m, module, "qweight", &qw) < 0) {
    oftawq_tensor plain;
    if (find_tensor(m, module, "weight", &plain) == OFTAWQ_OK)
      return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "module '%s' is not quantised (it has a %s weight)", module,
                         oftawq_tensor_dtype_name(plain.dtype));
    return oftawq__why(why, cap, OFTAWQ_E_NOT_FOUND, "no module '%s' in the model (no %s.qweight)", module, module);
  }
  if (skipped(m, module))
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "module '%s' is listed in modules_to_not_convert", module);
  if (qw.dtype != OFTAWQ_T_I32 || qw.ndim != 2 || qw.shape[0] < 1 || qw.shape[1] < 1)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s.qweight is %s, expected I32 [K, N/8]", module,
                       shape_text(&qw, (char[96]){0}, 96));
  K = qw.shape[0];
  N = qw.shape[1] * 8;
  if (K > INT32_MAX || N > INT32_MAX)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: K = %lld, N = %lld are too large", module, (long long)K,
                       (long long)N);
  G = m->group_size == -1 ? K : m->group_size;
  if (K % G != 0)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: group size %lld does not divide in_features %lld", module,
                       (long long)G, (long long)K);
  groups = K / G;
  if (find_tensor(m, module, "qzeros", &qz) < 0)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "module '%s' has a qweight but no qzeros", module);
  if (find_tensor(m, module, "scales", &sc) < 0)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "module '%s' has a qweight but no scales", module);
  if ((status = expect(module, "qzeros", &qz, OFTAWQ_T_I32, 2, groups, N / 8, why, cap)) < 0 ||
      (status = expect(module, "scales", &sc, OFTAWQ_T_F16, 2, groups, N, why, cap)) < 0)
    return status;
  oftawq_awq_tensors_init(out);
  if (find_tensor(m, module, "bias", &bias) == OFTAWQ_OK) {
    if ((status = expect(module, "bias", &bias, OFTAWQ_T_F16, 1, N, 0, why, cap)) < 0) return status;
    out->bias = bias.data;
  }
  out->K = (int)K;
  out->N = (int)N;
  out->G = (int)G;
  out->qweight = qw.data;
  out->qzeros = qz.data;
  out->scales = sc.data;
  return OFTAWQ_OK;
}

/* --------------------------------------------------------------- adapter folders */

struct oftawq_adapter_file {
  oftawq_oft_config config;
  char *peft_version;
  oftawq_safetensors *weights;
  float *converted;          /* the last F16/BF16 weight converted to floats */
};

void oftawq_adapter_close(oftawq_adapter_file *a)
{
  if (!a) return;
  oftawq_safetensors_close(a->weights);
  free(a->peft_version);
  free(a->converted);
  free(a);
}

static oftawq_status parse_adapter_config(oftawq_adapter_file *a, const cJSON *root, const char *path, char *why,
                                          size_t cap)
{
  oftawq_oft_config *c = &a->config;
  const cJSON *j = item(root, "peft_type");
  const char *type = cJSON_IsString(j) ? j->valuestring : "(missing)";
  if (strcmp(type, "OFT") != 0)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: peft_type is '%s', not 'OFT'", path, type);
  if (!item(root, "oft_block_size"))
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                       "%s: no oft_block_size - this adapter was saved by PEFT before 0.14.0, whose OFT weights are "
                       "incompatible (retrain with PEFT >= 0.16)",
                       path);
  oftawq_oft_config_init(c);
  if (!get_int(root, "r", &c->r) || !get_int(root, "oft_block_size", &c->oft_block_size) ||
      !get_double(root, "module_dropout", &c->module_dropout) || !get_bool(root, "coft", &c->coft) ||
      !get_double(root, "eps", &c->eps) || !get_bool(root, "block_share", &c->block_share) ||
      !get_bool(root, "use_cayley_neumann", &c->use_cayley_neumann) ||
      !get_int(root, "num_cayley_neumann_terms", &c->num_cayley_neumann_terms) ||
      !get_bool(root, "fan_in_fan_out", &c->fan_in_fan_out))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: a field has the wrong JSON type", path);
  j = item(root, "init_weights");
  if (j && !cJSON_IsBool(j))
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: init_weights must be true or false", path);
  if (j) c->init_weights = cJSON_IsTrue(j);
  j = item(root, "peft_version");
  a->peft_version = oftawq__strdup(cJSON_IsString(j) ? j->valuestring : PEFT_VERSION_MISSING);
  if (!a->peft_version) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  c->peft_version = a->peft_version;
  return OFTAWQ_OK;
}

oftawq_status oftawq__adapter_config_parse(const char *text, size_t len, oftawq_oft_config *config, char *why,
                                           size_t cap)
{
  cJSON *root = cJSON_ParseWithLength(text, len);
  oftawq_adapter_file a;
  oftawq_status status;
  memset(&a, 0, sizeof a);
  if (!root) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "not valid JSON");
  status = cJSON_IsObject(root) ? parse_adapter_config(&a, root, "adapter_config.json", why, cap)
                                : oftawq__why(why, cap, OFTAWQ_E_FORMAT, "the JSON is not an object");
  cJSON_Delete(root);
  free(a.peft_version);
  if (status == OFTAWQ_OK) {
    *config = a.config;
    config->peft_version = NULL; /* freed above; callers of this entry use the other fields */
  }
  return status;
}

oftawq_status oftawq_adapter_open(const char *dir, oftawq_adapter_file **out, char *why, size_t cap)
{
  oftawq_adapter_file *a;
  cJSON *root = NULL;
  char *path;
  oftawq_status status;
  size_t i;
  if (!out) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL output");
  *out = NULL;
  if (!dir) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL folder");
  if (!(a = calloc(1, sizeof *a))) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if (!(path = join(dir, "adapter_config.json"))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  status = read_json(path, &root, why, cap);
  if (status == OFTAWQ_OK) status = parse_adapter_config(a, root, path, why, cap);
  cJSON_Delete(root);
  free(path);
  if (status < 0) goto fail;
  if (!(path = join(dir, "adapter_model.safetensors"))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  status = oftawq_safetensors_open(path, &a->weights, why, cap);
  free(path);
  if (status < 0) goto fail;
  for (i = 0; i < oftawq_safetensors_count(a->weights); i++) {
    oftawq_tensor t;
    size_t len;
    oftawq_tensor_init(&t);
    oftawq_safetensors_get(a->weights, i, &t);
    len = strlen(t.name);
    if ((len > 6 && (!strcmp(t.name + len - 6, ".oft_r") || !strcmp(t.name + len - 6, ".oft_s"))) ||
        strstr(t.name, ".oft_r.") || strstr(t.name, ".oft_s.")) {
      status = oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                           "%s: weight '%s' is in the format of PEFT 0.14-0.15 (oft_r / oft_s), which PEFT 0.16 "
                           "replaced; retrain or convert the adapter",
                           dir, t.name);
      goto fail;
    }
  }
  *out = a;
  return OFTAWQ_OK;
fail:
  oftawq_adapter_close(a);
  return status;
}

oftawq_status oftawq_adapter_config(const oftawq_adapter_file *a, oftawq_oft_config *c)
{
  if (!a || !c || c->size < sizeof *c) return OFTAWQ_E_INVALID_ARGUMENT;
  *c = a->config;
  return OFTAWQ_OK;
}

oftawq_status oftawq_adapter_weights(oftawq_adapter_file *a, const char *module, const float **w, size_t *rows,
                                     size_t *cols, char *why, size_t cap)
{
  char name[1024];
  oftawq_tensor t;
  size_t n, i;
  if (!a || !module || !w || !rows || !cols) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "bad arguments");
  *w = NULL;
  *rows = *cols = 0;
  if (snprintf(name, sizeof name, ADAPTER_KEY_PREFIX "%s" ADAPTER_KEY_SUFFIX, module) >= (int)sizeof name)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "module name too long");
  oftawq_tensor_init(&t);
  if (oftawq_safetensors_find(a->weights, name, &t) < 0)
    return oftawq__why(why, cap, OFTAWQ_E_NOT_FOUND, "the adapter has no weights for module '%s' (no %s)", module,
                       name);
  if (t.ndim != 2 || (t.dtype != OFTAWQ_T_F32 && t.dtype != OFTAWQ_T_F16 && t.dtype != OFTAWQ_T_BF16))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s must be a 2-D F32, F16 or BF16 tensor", name);
  n = (size_t)t.shape[0] * (size_t)t.shape[1];
  free(a->converted);
  if (!(a->converted = malloc((n ? n : 1) * sizeof *a->converted)))
    return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < n; i++) { /* the data may be unaligned: read bytes */
    const unsigned char *p = (const unsigned char *)t.data;
    if (t.dtype == OFTAWQ_T_F32) {
      memcpy(&a->converted[i], p + 4 * i, 4);
    } else {
      uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
      if (t.dtype == OFTAWQ_T_F16) {
        a->converted[i] = oftawq__half_to_float(h);
      } else {
        uint32_t u = (uint32_t)h << 16;
        memcpy(&a->converted[i], &u, 4);
      }
    }
  }
  *w = a->converted;
  *rows = (size_t)t.shape[0];
  *cols = (size_t)t.shape[1];
  return OFTAWQ_OK;
}

/* --------------------------------------------------------------- one call */

/* The last component of a folder path ("a/b/" gives "b"). */
static void base_name(const char *dir, char *out, size_t cap)
{
  size_t end = strlen(dir), start;
  while (end > 1 && dir[end - 1] == '/') end--;
  for (start = end; start > 0 && dir[start - 1] != '/'; start--) continue;
  snprintf(out, cap, "%.*s", (int)(end - start), dir + start);
}

/* Adds one adapter folder's weights for `module` to the layer (or makes the layer with it). */
static oftawq_status load_adapter(oftawq_context *ctx, const oftawq_awq_tensors *base, const char *module,
                                  const char *dir, const char *name, oftawq_layer **layer)
{
  oftawq_adapter_file *a = NULL;
  oftawq_oft_config c;
  oftawq_oft_shape s;
  const float *w;
  size_t rows, cols;
  char why[WHY];
  oftawq_status status;
  if ((status = oftawq_adapter_open(dir, &a, why, sizeof why)) < 0) return oftawq__fail(ctx, status, "%s", why);
  oftawq_oft_config_init(&c);
  oftawq_adapter_config(a, &c);
  oftawq_oft_shape_init(&s);
  if ((status = oftawq_oft_resolve(&c, base->K, ctx->log, ctx->log_user, &s, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", dir, why);
    goto done;
  }
  if ((status = oftawq_adapter_weights(a, module, &w, &rows, &cols, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", dir, why);
    goto done;
  }
  if (rows != (size_t)s.weight_rows || cols != (size_t)s.n_elements) {
    status = oftawq__fail(ctx, OFTAWQ_E_FORMAT,
                          "%s: oft_R.weight of '%s' is [%zu, %zu], expected [%d, %d] for in_features %d (r %d, "
                          "block size %d%s)",
                          dir, module, rows, cols, s.weight_rows, s.n_elements, base->K, s.r, s.block_size,
                          c.block_share ? ", block_share" : "");
    goto done;
  }
  if (!*layer) {
    oftawq_target t;
    oftawq_target_init(&t);
    t.tensors = *base;
    status = oftawq_dispatch(ctx, &t, name, &c, w, rows * cols, layer);
  } else {
    status = oftawq_layer_add_adapter(*layer, name, &c, w, rows * cols);
  }
done:
  oftawq_adapter_close(a);
  return status;
}

oftawq_status oftawq_layer_load(oftawq_context *ctx, const char *model_dir, const char *module,
                                const char *const *adapter_dirs, const char *const *adapter_names, size_t n,
                                oftawq_layer **out)
{
  oftawq_model *m = NULL;
  oftawq_awq_tensors base;
  oftawq_layer *layer = NULL;
  oftawq_status status;
  char why[WHY];
  size_t i;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out || !model_dir || !module || (n && !adapter_dirs))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_layer_load: NULL argument");
  *out = NULL;
  if ((status = oftawq_model_open(model_dir, &m, why, sizeof why)) < 0) return oftawq__fail(ctx, status, "%s", why);
  oftawq_awq_tensors_init(&base);
  if ((status = oftawq_model_module(m, module, &base, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", model_dir, why);
    goto done;
  }
  if (n == 0) {
    status = oftawq_layer_create(ctx, &base, &layer);
  }
  for (i = 0; i < n && status >= 0; i++) {
    char name[OFTAWQ_MAX_ADAPTER_NAME];
    if (adapter_names && adapter_names[i])
      snprintf(name, sizeof name, "%s", adapter_names[i]);
    else if (i == 0)
      snprintf(name, sizeof name, "default");
    else
      base_name(adapter_dirs[i], name, sizeof name);
    status = load_adapter(ctx, &base, module, adapter_dirs[i], name, &layer);
  }
done:
  if (status < 0) {
    oftawq_layer_destroy(layer);
    layer = NULL;
  }
  oftawq_model_close(m);
  *out = layer;
  return status;
}
