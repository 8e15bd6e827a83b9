/* model_file.c: Hugging Face AWQ model folders - quantization config, weight files, the AWQ modules and their tensors. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "files/configs.h"
#include "files/json.h"
#include "files/model_file.h"
#include "files/safetensors.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
#define SAFETENSORS_SUFFIX ".safetensors"
/* GPT-QModel records itself in its quantization config as meta.quantizer ["gptqmodel:5.6.12", ...]. */
#define GPTQMODEL_TAG "gptqmodel:"
#define AUTOAWQ_TAG "autoawq:"

/* One tensor of the model and the weight file that holds it (the index's word, or the only file's). */
typedef struct entry {
  char *name;
  size_t file;
} entry;

struct oftawq_model_file {
  oftawq_safetensors **files;
  char **file_names;
  size_t n_files;
  entry *entries;            /* sorted by name */
  size_t n_entries;
  int group_size;
  char **modules;
  size_t n_modules;
  char **skip;               /* modules_to_not_convert substrings */
  size_t n_skip;
  char *model_type;          /* config.json's model_type, or NULL */
  char *producer;            /* "gptqmodel" / "autoawq" from meta.quantizer, or NULL */
  char *producer_version;
};

void oftawq_model_file_close(oftawq_model_file *m)
{
  size_t i;
  if (!m) return;
  for (i = 0; i < m->n_files; i++) {
    oftawq_safetensors_close(m->files[i]);
    free(m->file_names[i]);
  }
  for (i = 0; i < m->n_entries; i++) free(m->entries[i].name);
  for (i = 0; i < m->n_modules; i++) free(m->modules[i]);
  for (i = 0; i < m->n_skip; i++) free(m->skip[i]);
  free(m->files);
  free(m->file_names);
  free(m->entries);
  free(m->modules);
  free(m->skip);
  free(m->model_type);
  free(m->producer);
  free(m->producer_version);
  free(m);
}

/* The producer GPT-QModel (or another tool) recorded in meta.quantizer; the first known one wins. */
static oftawq_status parse_producer(oftawq_model_file *m, const cJSON *q, char *why, size_t cap)
{
  const cJSON *meta = oftawq__json_item(q, "meta"), *list, *e;
  static const char *const tags[] = {GPTQMODEL_TAG, AUTOAWQ_TAG};
  if (!cJSON_IsObject(meta) || !(list = oftawq__json_item(meta, "quantizer"))) return OFTAWQ_OK;
  if (cJSON_IsString(list)) list = NULL; /* a single string is handled below as a one-entry list */
  for (e = list ? list->child : oftawq__json_item(meta, "quantizer"); e; e = list ? e->next : NULL) {
    size_t t;
    if (!cJSON_IsString(e)) continue;
    for (t = 0; t < sizeof tags / sizeof tags[0]; t++) {
      size_t len = strlen(tags[t]);
      if (strncasecmp(e->valuestring, tags[t], len) != 0) continue;
      m->producer = oftawq__strdup(tags[t]);
      m->producer_version = oftawq__strdup(e->valuestring + len);
      if (!m->producer || !m->producer_version) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      m->producer[len - 1] = '\0'; /* drop the ':' */
      return OFTAWQ_OK;
    }
  }
  return OFTAWQ_OK;
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
  /* AutoAWQ writes the layout as "version", GPT-QModel as "format" */
  if ((j = oftawq__json_item(q, "version")) && cJSON_IsString(j)) version = j->valuestring;
  else if ((j = oftawq__json_item(q, "format")) && cJSON_IsString(j)) version = j->valuestring;
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
  return parse_producer(m, q, why, cap);
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
  if (status == OFTAWQ_OK) {
    const cJSON *type = oftawq__json_item(root, "model_type");
    q = oftawq__json_item(root, "quantization_config");
    if (cJSON_IsString(type) && !(m->model_type = oftawq__strdup(type->valuestring)))
      status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  if (status < 0 && status != OFTAWQ_E_NOT_FOUND) goto done;
  if (!q) { /* older AutoAWQ folders */
    cJSON *legacy_root = NULL;
    char *lpath = oftawq__path_join(dir, "quant_config.json");
    oftawq_status ls = lpath ? oftawq__json_read(lpath, &legacy_root, why, cap) : OFTAWQ_E_OUT_OF_MEMORY;
    free(lpath);
    if (ls == OFTAWQ_E_NOT_FOUND && !root) { /* neither file: not a model folder, or no folder at all */
      struct stat st;
      if (stat(dir, &st) != 0)
        status = oftawq__why(why, cap, errno == ENOENT ? OFTAWQ_E_NOT_FOUND : OFTAWQ_E_IO, "%s: %s", dir,
                             strerror(errno));
      else
        status = oftawq__why(why, cap, OFTAWQ_E_NOT_FOUND,
                             "%s: no config.json (nor an older AutoAWQ quant_config.json): not a model folder", dir);
      goto done;
    }
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
static int cmp_entry(const void *a, const void *b) { return strcmp(((const entry *)a)->name, ((const entry *)b)->name); }

/* Opens the weight files, in the sorted order of `names` (distinct plain file names of `dir`). */
static oftawq_status open_files(oftawq_model_file *m, const char *dir, char **names, size_t n, char *why, size_t cap)
{
  size_t i;
  if (!(m->files = calloc(n ? n : 1, sizeof *m->files)) || !(m->file_names = calloc(n ? n : 1, sizeof *m->file_names)))
    return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < n; i++) {
    char *path = oftawq__path_join(dir, names[i]);
    oftawq_status status;
    if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    status = oftawq_safetensors_open(path, &m->files[m->n_files], why, cap);
    free(path);
    if (status < 0) return status;
    m->file_names[m->n_files++] = names[i];
    names[i] = NULL; /* owned by the model now */
  }
  return OFTAWQ_OK;
}

/* A shard name an index may give: a plain file of the folder. */
static int plain_file_name(const char *s)
{
  return s[0] && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') && !strchr(s, '\\');
}

/* With an index: exactly the tensors of its weight_map, each from the shard it names. */
static oftawq_status weights_from_index(oftawq_model_file *m, const char *dir, const cJSON *index, char *why, size_t cap)
{
  const cJSON *map = oftawq__json_item(index, "weight_map"), *e;
  char **shards = NULL;
  size_t n = 0, n_shards = 0, i;
  oftawq_status status = OFTAWQ_OK;
  if (!cJSON_IsObject(map))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s/" INDEX_NAME ": no weight_map object", dir);
  n = (size_t)cJSON_GetArraySize(map);
  if (!(m->entries = calloc(n ? n : 1, sizeof *m->entries)) || !(shards = calloc(n ? n : 1, sizeof *shards)))
    return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  cJSON_ArrayForEach(e, map)
  {
    if (!cJSON_IsString(e) || !plain_file_name(e->valuestring)) {
      status = oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s/" INDEX_NAME ": '%s' is mapped to %s, not a file of the folder",
                           dir, e->string, cJSON_IsString(e) ? "a path" : "a non-string");
      goto done;
    }
    if (!(m->entries[m->n_entries].name = oftawq__strdup(e->string)) ||
        !(shards[n_shards] = oftawq__strdup(e->valuestring))) {
      status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    m->n_entries++;
    n_shards++;
  }
  if (n_shards == 0) {
    status = oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s/" INDEX_NAME ": the weight_map is empty", dir);
    goto done;
  }
  qsort(m->entries, m->n_entries, sizeof *m->entries, cmp_entry);
  for (i = 1; i < m->n_entries; i++)
    if (!strcmp(m->entries[i - 1].name, m->entries[i].name)) {
      status = oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s/" INDEX_NAME ": tensor '%s' is listed twice", dir,
                           m->entries[i].name);
      goto done;
    }
  /* each entry's shard, as an index into the sorted distinct shard names */
  {
    char **sorted = malloc(n_shards * sizeof *sorted);
    size_t k, distinct = 0;
    cJSON *value;
    if (!sorted) {
      status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    memcpy(sorted, shards, n_shards * sizeof *sorted);
    qsort(sorted, n_shards, sizeof *sorted, cmp_str);
    for (k = 0; k < n_shards; k++)
      if (distinct == 0 || strcmp(sorted[distinct - 1], sorted[k])) sorted[distinct++] = sorted[k];
    for (i = 0; i < m->n_entries; i++) {
      char **hit;
      value = cJSON_GetObjectItemCaseSensitive(map, m->entries[i].name);
      hit = bsearch(&value->valuestring, sorted, distinct, sizeof *sorted, cmp_str);
      m->entries[i].file = (size_t)(hit - sorted);
    }
    /* the distinct names become the model's; the duplicates are freed */
    for (k = 0; k < n_shards; k++) {
      char **hit = bsearch(&shards[k], sorted, distinct, sizeof *sorted, cmp_str);
      if (*hit != shards[k]) free(shards[k]);
    }
    free(shards);
    shards = NULL;
    status = open_files(m, dir, sorted, distinct, why, cap);
    for (k = 0; k < distinct; k++) free(sorted[k]);
    free(sorted);
  }
done:
  if (shards)
    for (i = 0; i < n_shards; i++) free(shards[i]);
  free(shards);
  return status;
}

/* Without an index: model.safetensors, or the folder's only *.safetensors file (several are ambiguous). */
static oftawq_status weights_from_folder(oftawq_model_file *m, const char *dir, char *why, size_t cap)
{
  char *name = NULL, *other = NULL;
  const size_t suffix = sizeof SAFETENSORS_SUFFIX - 1;
  size_t count = 0, i;
  oftawq_status status;
  DIR *d;
  struct dirent *e;
  char *path = oftawq__path_join(dir, SINGLE_NAME);
  int fd = -1;
  uint64_t size;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  status = oftawq__file_open(path, 0, UINT64_MAX, &fd, &size, why, cap);
  free(path);
  if (fd >= 0) close(fd);
  if (status == OFTAWQ_OK) {
    name = oftawq__strdup(SINGLE_NAME);
  } else if (status != OFTAWQ_E_NOT_FOUND) {
    return status;
  } else {
    if (!(d = opendir(dir))) return oftawq__why(why, cap, OFTAWQ_E_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
      size_t len = strlen(e->d_name);
      if (len <= suffix || strcmp(e->d_name + len - suffix, SAFETENSORS_SUFFIX)) continue;
      if (++count == 1) name = oftawq__strdup(e->d_name);
      else if (count == 2) other = oftawq__strdup(e->d_name);
    }
    closedir(d);
    if (count == 0) return oftawq__why(why, cap, OFTAWQ_E_NOT_FOUND, "%s: no .safetensors weights", dir);
    if (count > 1) {
      status = oftawq__why(why, cap, OFTAWQ_E_FORMAT,
                           "%s: %zu .safetensors files (%s, %s, ...) and neither " SINGLE_NAME " nor " INDEX_NAME
                           " to say which holds the weights",
                           dir, count, name ? name : "?", other ? other : "?");
      free(name);
      free(other);
      return status;
    }
  }
  if (!name) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = open_files(m, dir, &name, 1, why, cap)) < 0) {
    free(name);
    return status;
  }
  m->n_entries = oftawq_safetensors_count(m->files[0]);
  if (!(m->entries = calloc(m->n_entries ? m->n_entries : 1, sizeof *m->entries)))
    return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < m->n_entries; i++) {
    oftawq_tensor t;
    oftawq_tensor_init(&t);
    oftawq_safetensors_get(m->files[0], i, &t);
    if (!(m->entries[i].name = oftawq__strdup(t.name))) {
      m->n_entries = i;
      return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    }
  }
  qsort(m->entries, m->n_entries, sizeof *m->entries, cmp_entry);
  return OFTAWQ_OK;
}

/* The weight files: the shards the index names, or model.safetensors (both at once are ambiguous). */
static oftawq_status open_weights(oftawq_model_file *m, const char *dir, char *why, size_t cap)
{
  char *path = oftawq__path_join(dir, INDEX_NAME);
  cJSON *index = NULL;
  oftawq_status status;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  status = oftawq__json_read(path, &index, why, cap); /* an unreadable or malformed index is an error */
  free(path);
  if (status == OFTAWQ_E_NOT_FOUND) return weights_from_folder(m, dir, why, cap);
  if (status < 0) return status;
  if ((path = oftawq__path_join(dir, SINGLE_NAME)) && access(path, F_OK) == 0) {
    status = oftawq__why(why, cap, OFTAWQ_E_FORMAT,
                         "%s: both " SINGLE_NAME " and " INDEX_NAME " are present; which holds the weights is ambiguous",
                         dir);
  } else {
    status = path ? weights_from_index(m, dir, index, why, cap)
                  : oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  free(path);
  cJSON_Delete(index);
  return status;
}

static const entry *find_entry(const oftawq_model_file *m, const char *name)
{
  entry key;
  key.name = (char *)(uintptr_t)name;
  return bsearch(&key, m->entries, m->n_entries, sizeof *m->entries, cmp_entry);
}

oftawq_status oftawq__model_file_tensor(const oftawq_model_file *m, const char *name, oftawq_tensor *t, char *why,
                                        size_t cap)
{
  const entry *e = find_entry(m, name);
  oftawq_tensor_init(t);
  if (!e) return oftawq__why(why, cap, OFTAWQ_E_NOT_FOUND, "no tensor '%s'", name);
  if (oftawq_safetensors_find(m->files[e->file], name, t) < 0)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "the index puts '%s' in %s, which does not hold it", name,
                       m->file_names[e->file]);
  return OFTAWQ_OK;
}

static int skipped(const oftawq_model_file *m, const char *module)
{
  size_t i;
  for (i = 0; i < m->n_skip; i++)
    if (m->skip[i] && strstr(module, m->skip[i])) return 1;
  return 0;
}

int oftawq__model_file_not_converted(const oftawq_model_file *m, const char *module) { return skipped(m, module); }

static oftawq_status list_modules(oftawq_model_file *m, char *why, size_t cap)
{
  static const char suffix[] = ".qweight";
  size_t i;
  m->modules = calloc(m->n_entries + 1, sizeof *m->modules);
  if (!m->modules) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < m->n_entries; i++) {
    const char *name = m->entries[i].name;
    size_t len = strlen(name);
    if (len <= sizeof suffix - 1 || strcmp(name + len - (sizeof suffix - 1), suffix)) continue;
    if (!(m->modules[m->n_modules] = oftawq__strdup(name)))
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

size_t oftawq__model_file_tensor_count(const oftawq_model_file *m) { return m->n_entries; }
const char *oftawq__model_file_tensor_name(const oftawq_model_file *m, size_t i)
{
  return i < m->n_entries ? m->entries[i].name : NULL;
}
const char *oftawq__model_file_model_type(const oftawq_model_file *m) { return m->model_type; }
void oftawq__model_file_producer(const oftawq_model_file *m, const char **producer, const char **version)
{
  *producer = m->producer;
  *version = m->producer_version;
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

static oftawq_status find_tensor(const oftawq_model_file *m, const char *module, const char *part, oftawq_tensor *t,
                                 char *why, size_t cap)
{
  char name[1024];
  oftawq_tensor_init(t);
  if (snprintf(name, sizeof name, "%s.%s", module, part) >= (int)sizeof name) return OFTAWQ_E_NOT_FOUND;
  return oftawq__model_file_tensor(m, name, t, why, cap);
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
  if ((status = find_tensor(m, module, "qweight", &qw, why, cap)) < 0) {
    oftawq_tensor plain;
    if (status != OFTAWQ_E_NOT_FOUND) return status;
    if ((status = find_tensor(m, module, "weight", &plain, why, cap)) == OFTAWQ_OK)
      return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "module '%s' is not quantised (it has a %s weight)", module,
                         oftawq_tensor_dtype_name(plain.dtype));
    if (status != OFTAWQ_E_NOT_FOUND) return status;
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
  if ((status = find_tensor(m, module, "qzeros", &qz, why, cap)) < 0)
    return status != OFTAWQ_E_NOT_FOUND ? status
                                        : oftawq__why(why, cap, OFTAWQ_E_FORMAT, "module '%s' has a qweight but no qzeros", module);
  if ((status = find_tensor(m, module, "scales", &sc, why, cap)) < 0)
    return status != OFTAWQ_E_NOT_FOUND ? status
                                        : oftawq__why(why, cap, OFTAWQ_E_FORMAT, "module '%s' has a qweight but no scales", module);
  if ((status = expect(module, "qzeros", &qz, OFTAWQ_T_I32, 2, groups, N / 8, why, cap)) < 0 ||
      (status = expect(module, "scales", &sc, OFTAWQ_T_F16, 2, groups, N, why, cap)) < 0)
    return status;
  oftawq_awq_tensors_init(out);
  if ((status = find_tensor(m, module, "bias", &bias, why, cap)) == OFTAWQ_OK) {
    if ((status = expect(module, "bias", &bias, OFTAWQ_T_F16, 1, N, 0, why, cap)) < 0) return status;
    out->bias = bias.data;
  } else if (status != OFTAWQ_E_NOT_FOUND) {
    return status;
  }
  out->K = (int)K;
  out->N = (int)N;
  out->G = (int)G;
  out->qweight = qw.data;
  out->qzeros = qz.data;
  out->scales = sc.data;
  return OFTAWQ_OK;
}
