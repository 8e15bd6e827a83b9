/* adapter_file.c: PEFT OFT adapter folders - adapter_config.json with PEFT's defaults, and the oft_R weights. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ref.h"
#include "files/adapter_file.h"
#include "files/configs.h"
#include "files/json.h"
#include "files/safetensors.h"

#define ADAPTER_KEY_PREFIX "base_model.model."
#define ADAPTER_KEY_SUFFIX ".oft_R.weight"
/* Layer indices beyond this are not a model's (and stay exact as JSON doubles and C ints). */
#define MAX_LAYER_INDEX 1000000000
/* A missing peft_version: PEFT wrote it since 0.18.0, so the adapter is older (PEFT's own stand-in value). */
#define PEFT_VERSION_MISSING "0.0.0"

struct oftawq_adapter_file {
  oftawq_oft_config config;
  oftawq__targeting targeting;
  char *peft_version;
  oftawq_safetensors *weights;
  float *converted;          /* the last F16/BF16 weight converted to floats */
};

static void free_targeting(oftawq__targeting *t)
{
  free(t->target_modules.regex);
  oftawq__strings_free(t->target_modules.names, t->target_modules.n_names);
  free(t->exclude_modules.regex);
  oftawq__strings_free(t->exclude_modules.names, t->exclude_modules.n_names);
  oftawq__strings_free(t->modules_to_save, t->n_modules_to_save);
  free(t->layers);
  oftawq__strings_free(t->layers_patterns, t->n_layers_patterns);
  free(t->bias);
  memset(t, 0, sizeof *t);
}

/* A JSON array of strings as a heap copy; 0 when it is not one (or out of memory: *oom set). */
static int string_list(const cJSON *j, char ***out, size_t *n, int *oom)
{
  const cJSON *e;
  size_t i = 0;
  *out = NULL;
  *n = 0;
  if (!cJSON_IsArray(j)) return 0;
  cJSON_ArrayForEach(e, j) if (!cJSON_IsString(e)) return 0;
  if (!(*out = calloc((size_t)cJSON_GetArraySize(j) + 1, sizeof **out))) return !(*oom = 1);
  cJSON_ArrayForEach(e, j)
  {
    if (!((*out)[i] = oftawq__strdup(e->valuestring))) {
      *n = i;
      return !(*oom = 1);
    }
    i++;
  }
  *n = i;
  return 1;
}

/* A list-or-regex field: absent or null, a string, or a list of strings. */
static int name_rule(const cJSON *root, const char *key, oftawq__name_rule *rule, int *oom)
{
  const cJSON *j = oftawq__json_item(root, key);
  if (!j || cJSON_IsNull(j)) return 1;
  rule->present = 1;
  if (cJSON_IsString(j)) return (rule->regex = oftawq__strdup(j->valuestring)) != NULL || !(*oom = 1);
  return string_list(j, &rule->names, &rule->n_names, oom);
}

/* PEFT's module-selection fields. */
static oftawq_status parse_targeting(oftawq__targeting *t, const cJSON *root, const char *path, char *why, size_t cap)
{
  const cJSON *j;
  int oom = 0;
  if (!name_rule(root, "target_modules", &t->target_modules, &oom) ||
      !name_rule(root, "exclude_modules", &t->exclude_modules, &oom))
    return oom ? oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory")
               : oftawq__why(why, cap, OFTAWQ_E_FORMAT,
                             "%s: target_modules and exclude_modules must be a string, a list of strings or null", path);
  j = oftawq__json_item(root, "modules_to_save");
  if (j && !cJSON_IsNull(j) && !string_list(j, &t->modules_to_save, &t->n_modules_to_save, &oom))
    return oom ? oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory")
               : oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: modules_to_save must be a list of strings or null", path);
  j = oftawq__json_item(root, "layers_to_transform");
  if (j && !cJSON_IsNull(j)) {
    const cJSON *e;
    t->layers_present = 1;
    t->layers_is_int = cJSON_IsNumber(j);
    if (!t->layers_is_int && !cJSON_IsArray(j))
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: layers_to_transform must be an integer or a list of integers",
                         path);
    if (!(t->layers = calloc(t->layers_is_int ? 1 : (size_t)cJSON_GetArraySize(j) + 1, sizeof *t->layers)))
      return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    for (e = t->layers_is_int ? j : j->child; e; e = t->layers_is_int ? NULL : e->next) {
      if (!cJSON_IsNumber(e) || floor(e->valuedouble) != e->valuedouble || fabs(e->valuedouble) > MAX_LAYER_INDEX)
        return oftawq__why(why, cap, OFTAWQ_E_FORMAT,
                           "%s: layers_to_transform must be an integer or a list of integers (|i| <= %d)", path,
                           MAX_LAYER_INDEX);
      t->layers[t->n_layers++] = (int)e->valuedouble;
    }
  }
  j = oftawq__json_item(root, "layers_pattern");
  if (j && !cJSON_IsNull(j)) {
    if (cJSON_IsString(j)) {
      if (!(t->layers_patterns = calloc(1, sizeof *t->layers_patterns)) ||
          !(t->layers_patterns[0] = oftawq__strdup(j->valuestring)))
        return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      t->n_layers_patterns = 1;
      t->layers_pattern_is_string = 1;
    } else if (!string_list(j, &t->layers_patterns, &t->n_layers_patterns, &oom)) {
      return oom ? oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory")
                 : oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: layers_pattern must be a string, a list of strings or null",
                               path);
    }
  }
  j = oftawq__json_item(root, "bias");
  if (j && !cJSON_IsNull(j) && !cJSON_IsString(j))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: bias must be a string", path);
  if (!(t->bias = oftawq__strdup(j && cJSON_IsString(j) ? j->valuestring : "none")))
    return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  return OFTAWQ_OK;
}

const oftawq__targeting *oftawq__adapter_targeting(const oftawq_adapter_file *a) { return &a->targeting; }

void oftawq_adapter_close(oftawq_adapter_file *a)
{
  if (!a) return;
  free_targeting(&a->targeting);
  oftawq_safetensors_close(a->weights);
  free(a->peft_version);
  free(a->converted);
  free(a);
}

static oftawq_status parse_adapter_config(oftawq_adapter_file *a, const cJSON *root, const char *path, char *why,
                                          size_t cap)
{
  oftawq_oft_config *c = &a->config;
  const cJSON *j = oftawq__json_item(root, "peft_type");
  const char *type = cJSON_IsString(j) ? j->valuestring : "(missing)";
  if (strcmp(type, "OFT") != 0)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: peft_type is '%s', not 'OFT'", path, type);
  if (!oftawq__json_item(root, "oft_block_size"))
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                       "%s: no oft_block_size - this adapter was saved by PEFT before 0.14.0, whose OFT weights are "
                       "incompatible (retrain with PEFT >= 0.16)",
                       path);
  oftawq_oft_config_init(c);
  if (!oftawq__json_int(root, "r", &c->r) || !oftawq__json_int(root, "oft_block_size", &c->oft_block_size) ||
      !oftawq__json_double(root, "module_dropout", &c->module_dropout) || !oftawq__json_bool(root, "coft", &c->coft) ||
      !oftawq__json_double(root, "eps", &c->eps) || !oftawq__json_bool(root, "block_share", &c->block_share) ||
      !oftawq__json_bool(root, "use_cayley_neumann", &c->use_cayley_neumann) ||
      !oftawq__json_int(root, "num_cayley_neumann_terms", &c->num_cayley_neumann_terms) ||
      !oftawq__json_bool(root, "fan_in_fan_out", &c->fan_in_fan_out))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: a field has the wrong JSON type", path);
  j = oftawq__json_item(root, "init_weights");
  if (j && !cJSON_IsBool(j))
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s: init_weights must be true or false", path);
  if (j) c->init_weights = cJSON_IsTrue(j);
  j = oftawq__json_item(root, "peft_version");
  a->peft_version = oftawq__strdup(cJSON_IsString(j) ? j->valuestring : PEFT_VERSION_MISSING);
  if (!a->peft_version) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  c->peft_version = a->peft_version;
  return parse_targeting(&a->targeting, root, path, why, cap);
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
  free_targeting(&a.targeting);
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
  if (!(path = oftawq__path_join(dir, "adapter_config.json"))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  status = oftawq__json_read(path, &root, why, cap);
  if (status == OFTAWQ_OK) status = parse_adapter_config(a, root, path, why, cap);
  cJSON_Delete(root);
  free(path);
  if (status < 0) goto fail;
  if (!(path = oftawq__path_join(dir, "adapter_model.safetensors"))) {
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
