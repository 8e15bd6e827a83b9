/* model_file.c: Hugging Face AWQ model folders - quantization config, weight files, the AWQ modules and their tensors. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "files/configs.h"
#include "files/json.h"
#include "files/safetensors.h"

struct oftawq_model_file {
  oftawq_safetensors **files;
  size_t n_files;
  int group_size;
  char **modules;
  size_t n_modules;
  char **skip;               /* modules_to_not_convert substrings */
  size_t n_skip;
};

void oftawq_model_file_close(oftawq_model_file *m)
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
static oftawq_status parse_quant(oftawq_model_file *m, const cJSON *q, int legacy, const char *where, char *why, size_t cap)
{
  const cJSON *j;
  int bits = 4, zero_point = 1;
  const char *method = "awq", *version = "gemm";
  if (!cJSON_IsObject(q)) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: quantization_config is not an object", where);
  if ((j = oftawq__json_item(q, "quant_method")) && cJSON_IsString(j)) method = j->valuestring;
  if (strcasecmp(method, "awq") != 0)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: quantised with '%s', not AWQ", where, method);
  m->group_size = 128;
  if (!oftawq__json_int(q, legacy ? "w_bit" : "bits", &bits) || !oftawq__json_int(q, legacy ? "q_group_size" : "group_size", &m->group_size) ||
      !oftawq__json_bool(q, "zero_point", &zero_point) || (legacy && (!oftawq__json_int(q, "bits", &bits) || !oftawq__json_int(q, "group_size", &m->group_size))))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: bits, group_size or zero_point has the wrong type", where);
  if ((j = oftawq__json_item(q, "version")) && cJSON_IsString(j)) version = j->valuestring;
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
  if ((j = oftawq__json_item(q, "modules_to_not_convert")) && cJSON_IsArray(j)) {
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
static oftawq_status read_quant_config(oftawq_model_file *m, const char *dir, char *why, size_t cap)
{
  char *path = oftawq__path_join(dir, "config.json");
  cJSON *root = NULL;
  const cJSON *q = NULL;
  oftawq_status status;
  int legacy = 0;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  status = oftawq__json_read(path, &root, why, cap);
  free(path);
  if (status == OFTAWQ_OK) q = oftawq__json_item(root, "quantization_config");
  if (status < 0 && status != OFTAWQ_E_NOT_FOUND) goto done;
  if (!q) { /* older AutoAWQ folders */
    cJSON *legacy_root = NULL;
    char *lpath = oftawq__path_join(dir, "quant_config.json");
    oftawq_status ls = lpath ? oftawq__json_read(lpath, &legacy_root, why, cap) : OFTAWQ_E_OUT_OF_MEMORY;
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
  oftawq_model_file m;
  oftawq_status status;
  size_t i;
  memset(&m, 0, sizeof m);
  if (!root) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "not valid JSON");
  status = parse_quant(&m, legacy ? root : oftawq__json_item(root, "quantization_config"), legacy, "config", why, cap);
  if (status == OFTAWQ_OK) *group_size = m.group_size;
  for (i = 0; i < m.n_skip; i++) free(m.skip[i]);
  free(m.skip);
  cJSON_Delete(root);
  return status;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static oftawq_status add_file(oftawq_model_file *m, const char *dir, const char *name, char *why, size_t cap)
{
  char *path = oftawq__path_join(dir, name);
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
static oftawq_status open_weights(oftawq_model_file *m, const char *dir, char *why, size_t cap)
{
  char *path = oftawq__path_join(dir, "model.safetensors.index.json");
  cJSON *index = NULL;
  oftawq_status status;
  char **names = NULL;
  size_t n = 0, i;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  status = oftawq__json_read(path, &index, why, cap);
  free(path);
  if (status == OFTAWQ_OK) {
    const cJSON *map = oftawq__json_item(index, "weight_map"), *e;
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

static int skipped(const oftawq_model_file *m, const char *module)
{
  size_t i;
  for (i = 0; i < m->n_skip; i++)
    if (m->skip[i] && strstr(module, m->skip[i])) return 1;
  return 0;
}

static oftawq_status list_modules(oftawq_model_file *m, char *why, size_t cap)
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

oftawq_status oftawq_model_file_open(const char *dir, oftawq_model_file **out, char *why, size_t cap)
{
  oftawq_model_file *m;
  oftawq_status status;
  if (!out) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL output");
  *out = NULL;
  if (!dir) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL folder");
  if (!(m = calloc(1, sizeof *m))) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = read_quant_config(m, dir, why, cap)) < 0 || (status = open_weights(m, dir, why, cap)) < 0 ||
      (status = list_modules(m, why, cap)) < 0) {
    oftawq_model_file_close(m);
    return status;
  }
  *out = m;
  return OFTAWQ_OK;
}

int oftawq_model_file_group_size(const oftawq_model_file *m) { return m ? m->group_size : 0; }
size_t oftawq_model_file_module_count(const oftawq_model_file *m) { return m ? m->n_modules : 0; }

const char *oftawq_model_file_module_name(const oftawq_model_file *m, size_t i)
{
  return (m && i < m->n_modules) ? m->modules[i] : NULL;
}

static oftawq_status find_tensor(const oftawq_model_file *m, const char *module, const char *part, oftawq_tensor *t)
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

oftawq_status oftawq_model_file_module(const oftawq_model_file *m, const char *module, oftawq_awq_tensors *out, char *why,
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
