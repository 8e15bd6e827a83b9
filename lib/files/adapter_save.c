/* adapter_save.c: writing PEFT OFT adapter folders (adapter_config.json + adapter_model.safetensors), all or nothing. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/version.h"
#include "files/json.h"

#define CONFIG_NAME "adapter_config.json"
#define WEIGHTS_NAME "adapter_model.safetensors"
#define KEY_PREFIX "base_model.model."
#define KEY_SUFFIX ".oft_R.weight"
/* Room for the ".tmp-<pid>" decoration of a temporary name. */
#define TAG_LEN 48

void oftawq_adapter_module_init(oftawq_adapter_module *m)
{
  if (!m) return;
  memset(m, 0, sizeof *m);
  m->size = sizeof *m;
}

void oftawq_adapter_save_options_init(oftawq_adapter_save_options *o)
{
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
}

/* adapter_config.json as PEFT's OFTConfig.save_pretrained writes it (keys sorted), without a device. */
static char *config_json(const oftawq_oft_config *c, const oftawq_adapter_module *modules, size_t n,
                         const oftawq_adapter_save_options *o, const char *peft_version)
{
  cJSON *root = cJSON_CreateObject(), *targets;
  char *text = NULL;
  size_t i;
  int ok = root != NULL;
  if (!ok) return NULL;
  ok = cJSON_AddNullToObject(root, "auto_mapping") &&
       (o && o->base_model_name_or_path
          ? cJSON_AddStringToObject(root, "base_model_name_or_path", o->base_model_name_or_path) != NULL
          : cJSON_AddNullToObject(root, "base_model_name_or_path") != NULL) &&
       cJSON_AddStringToObject(root, "bias", "none") && cJSON_AddBoolToObject(root, "block_share", c->block_share) &&
       cJSON_AddBoolToObject(root, "coft", c->coft) && cJSON_AddNumberToObject(root, "eps", c->eps) &&
       cJSON_AddNullToObject(root, "exclude_modules") &&
       cJSON_AddBoolToObject(root, "fan_in_fan_out", c->fan_in_fan_out) &&
       cJSON_AddBoolToObject(root, "inference_mode", 1) &&
       cJSON_AddBoolToObject(root, "init_weights", c->init_weights) && cJSON_AddNullToObject(root, "layers_pattern") &&
       cJSON_AddNullToObject(root, "layers_to_transform") &&
       cJSON_AddNumberToObject(root, "module_dropout", c->module_dropout) &&
       cJSON_AddNullToObject(root, "modules_to_save") &&
       cJSON_AddNumberToObject(root, "num_cayley_neumann_terms", c->num_cayley_neumann_terms) &&
       cJSON_AddNumberToObject(root, "oft_block_size", c->oft_block_size) &&
       cJSON_AddStringToObject(root, "peft_type", "OFT") &&
       cJSON_AddStringToObject(root, "peft_version", peft_version) && cJSON_AddNumberToObject(root, "r", c->r) &&
       cJSON_AddNullToObject(root, "revision") && (targets = cJSON_AddArrayToObject(root, "target_modules")) != NULL;
  for (i = 0; ok && o && o->target_modules && i < o->n_target_modules; i++)
    ok = cJSON_AddItemToArray(targets, cJSON_CreateString(o->target_modules[i]));
  for (i = 0; ok && !(o && o->target_modules) && i < n; i++)
    ok = cJSON_AddItemToArray(targets, cJSON_CreateString(modules[i].module));
  ok = ok && cJSON_AddNullToObject(root, "task_type") &&
       cJSON_AddBoolToObject(root, "use_cayley_neumann", c->use_cayley_neumann);
  if (ok) text = cJSON_Print(root);
  cJSON_Delete(root);
  return text;
}

/* Everything the caller gave, checked before anything is allocated or written. */
static oftawq_status check_input(const char *dir, const oftawq_oft_config *c, const oftawq_adapter_module *modules,
                                 size_t n, const oftawq_adapter_save_options *o, char *why, size_t cap)
{
  size_t i, j, k, count;
  if (!dir || !*dir || !c || (n && !modules))
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL folder, config or modules");
  if (c->size < sizeof *c || (o && o->size < sizeof *o))
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "uninitialised config or options (size field)");
  if (o && o->n_target_modules && !o->target_modules)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL target_modules with a count");
  for (i = 0; o && o->target_modules && i < o->n_target_modules; i++)
    if (!o->target_modules[i]) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "target_modules[%zu] is NULL", i);
  if (n == 0) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "no modules to save");
  if ((c->r == 0) == (c->oft_block_size == 0) || c->r < 0 || c->oft_block_size < 0)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "exactly one of r (%d) and oft_block_size (%d) must be set",
                       c->r, c->oft_block_size);
  if (!isfinite(c->eps) || !isfinite(c->module_dropout) || c->num_cayley_neumann_terms < 1)
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "eps, module_dropout or num_cayley_neumann_terms is invalid");
  for (i = 0; i < n; i++) {
    const oftawq_adapter_module *m = &modules[i];
    if (m->size < sizeof *m || !m->module || !*m->module || (!m->weights && m->rows && m->cols))
      return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "module %zu: uninitialised, no name or no weights", i);
    if (!oftawq__mul_size(m->rows, m->cols, &count) || !oftawq__mul_size(count, sizeof(float), &count))
      return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "module '%s': %zu x %zu weights overflow", m->module,
                         m->rows, m->cols);
    for (k = 0; k < m->rows * m->cols; k++)
      if (!isfinite(m->weights[k]))
        return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "module '%s': weight %zu is not finite", m->module, k);
    for (j = 0; j < i; j++)
      if (!strcmp(modules[j].module, m->module))
        return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "module '%s' is listed twice", m->module);
  }
  return OFTAWQ_OK;
}

/* Writes the safetensors file of the modules to `path` (itself atomic). */
static oftawq_status write_weights(const char *path, const oftawq_adapter_module *modules, size_t n, char *why,
                                   size_t cap)
{
  oftawq_tensor *t = calloc(n, sizeof *t);
  char **names = calloc(n, sizeof *names);
  oftawq_status status = OFTAWQ_OK;
  size_t i;
  if (!t || !names) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (i = 0; i < n; i++) {
    size_t len = strlen(KEY_PREFIX) + strlen(modules[i].module) + strlen(KEY_SUFFIX) + 1;
    if (!(names[i] = malloc(len))) {
      status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    snprintf(names[i], len, KEY_PREFIX "%s" KEY_SUFFIX, modules[i].module);
    oftawq_tensor_init(&t[i]);
    t[i].name = names[i];
    t[i].dtype = OFTAWQ_T_F32;
    t[i].ndim = 2;
    t[i].shape[0] = (int64_t)modules[i].rows;
    t[i].shape[1] = (int64_t)modules[i].cols;
    t[i].data = modules[i].weights;
    t[i].nbytes = modules[i].rows * modules[i].cols * sizeof(float);
  }
  status = oftawq_safetensors_write(path, t, n, why, cap);
done:
  for (i = 0; names && i < n; i++) free(names[i]);
  free(names);
  free(t);
  return status;
}

static char *tmp_name(const char *dir, const char *name, long pid)
{
  size_t len = strlen(dir) + strlen(name) + TAG_LEN;
  char *p = malloc(len);
  if (p) snprintf(p, len, "%s/.%s.tmp-%ld", dir, name, pid);
  return p;
}

oftawq_status oftawq_adapter_write(const char *dir, const oftawq_oft_config *config,
                                   const oftawq_adapter_module *modules, size_t n,
                                   const oftawq_adapter_save_options *options, char *why, size_t cap)
{
  static const char *const names[2] = {WEIGHTS_NAME, CONFIG_NAME};
  char *json = NULL, *final[2] = {NULL, NULL}, *tmp[2] = {NULL, NULL};
  const char *version = OFTAWQ_PEFT_VERSION_CURRENT;
  oftawq_status status;
  int created = 0, legacy = 0, i;
  struct stat st;
  long pid = (long)getpid();

  if (why && cap) why[0] = '\0';
  if ((status = check_input(dir, config, modules, n, options, why, cap)) < 0) return status;
  if (config->use_cayley_neumann && config->peft_version) {
    int ok = oftawq__peft_legacy_neumann(config->peft_version, &legacy);
    if (ok < 0) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    if (!ok)
      return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "peft_version '%s' is not a PEP 440 version",
                         config->peft_version);
    if (legacy) version = OFTAWQ_PEFT_VERSION_LEGACY;
  }
  if (!(json = config_json(config, modules, n, options, version))) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < 2; i++) {
    if (!(final[i] = oftawq__path_join(dir, names[i])) || !(tmp[i] = tmp_name(dir, names[i], pid))) {
      status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    if (stat(final[i], &st) == 0 && !S_ISREG(st.st_mode)) { /* a rename onto it would fail half-way */
      status = oftawq__why(why, cap, OFTAWQ_E_IO, "%s exists and is not a regular file", final[i]);
      goto done;
    }
  }
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      status = oftawq__why(why, cap, OFTAWQ_E_IO, "%s exists and is not a folder", dir);
      goto done;
    }
  } else if (mkdir(dir, 0777) == 0) {
    created = 1;
  } else {
    status = oftawq__why(why, cap, OFTAWQ_E_IO, "cannot create the folder %s: %s", dir, strerror(errno));
    goto done;
  }
  if ((status = write_weights(tmp[0], modules, n, why, cap)) < 0) goto done;
  if (oftawq__write_file_atomic(tmp[1], json, strlen(json), "\n", 1, NULL, 0) != 0) {
    status = oftawq__why(why, cap, OFTAWQ_E_IO, "cannot write %s in %s", CONFIG_NAME, dir);
    goto done;
  }
  /* both files are complete: move them into place, the weights first */
  for (i = 0; i < 2; i++)
    if (rename(tmp[i], final[i]) != 0) {
      status = oftawq__why(why, cap, OFTAWQ_E_IO, "cannot move %s into %s: %s", names[i], dir, strerror(errno));
      goto done;
    }
done:
  if (status < 0) {
    for (i = 0; i < 2; i++)
      if (tmp[i]) remove(tmp[i]);
    if (created) rmdir(dir);
  }
  for (i = 0; i < 2; i++) {
    free(final[i]);
    free(tmp[i]);
  }
  free(json);
  return status;
}
