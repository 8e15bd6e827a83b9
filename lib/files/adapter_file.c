/* adapter_file.c: PEFT OFT adapter folders - adapter_config.json with PEFT's defaults, and the oft_R weights. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ref.h"
#include "files/configs.h"
#include "files/json.h"
#include "files/safetensors.h"

#define ADAPTER_KEY_PREFIX "base_model.model."
#define ADAPTER_KEY_SUFFIX ".oft_R.weight"
/* A missing peft_version: PEFT wrote it since 0.18.0, so the adapter is older (PEFT's own stand-in value). */
#define PEFT_VERSION_MISSING "0.0.0"

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
