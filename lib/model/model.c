/* model.c: a model's modules, adapters applied by PEFT's targeting rules, layers uploaded on use and evicted by LRU. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"
#include "engines/dispatch.h"
#include "files/adapter_file.h"
#include "files/model_file.h"
#include "model/model.h"
#include "model/target.h"
#include "runtime/context.h"

#define WHY 1024
#define DEFAULT_ADAPTER "default"
/* Warnings already passed on (each once per model): their hashes. */
#define MAX_WARNINGS_KEPT 256

/* One adapter on one module. */
typedef struct slot {
  oftawq_outcome outcome;
  oftawq_status status;
  char *reason;              /* NULL: "" */
  oftawq_oft_shape shape;
  float *weights;            /* WRAPPED: weight_rows x n_elements (zeros when the file has none) */
  size_t count;
  int has_weights;
  uint64_t upload_hash;      /* of the weights as the layer took them, to notice changes made through it */
} slot;

typedef struct module {
  char *name;
  oftawq_target_kind kind;
  oftawq_awq_tensors tensors; /* AWQ GEMM: pointers into the mapped files */
  int K, N;                   /* others: a 2-D weight's shape */
  oftawq_tensor_dtype dtype;
  uint64_t base_bytes;
  oftawq_layer *layer;        /* NULL until uploaded */
  uint64_t last_use;
} module;

typedef struct adapter {
  char name[OFTAWQ_MAX_ADAPTER_NAME];
  oftawq_oft_config config;
  char *peft_version;
  slot *slots;                /* one per module */
} adapter;

struct oftawq_model {
  oftawq_context *ctx;
  oftawq_model_file *file;
  oftawq_model_options options;
  oftawq_awq_producer producer;
  char *producer_version;
  module *modules;
  size_t n_modules;
  char **containers;          /* names that only hold other modules ("model.layers.0") */
  size_t n_containers;
  adapter *adapters;
  size_t n_adapters;
  char **active;
  size_t n_active;
  int enabled;
  uint64_t clock, used_bytes, uploads, evictions;
  uint64_t warned[MAX_WARNINGS_KEPT];
  size_t n_warned;
  oftawq_log_fn user_log;     /* the context's callback, while the model's de-duplicating one is installed */
  void *user_log_data;
};

/* ------------------------------------------------------------------ small helpers */

void oftawq_model_options_init(oftawq_model_options *o)
{
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->producer = OFTAWQ_PRODUCER_UNKNOWN;
}

void oftawq_model_module_init(oftawq_model_module *m)
{
  if (!m) return;
  memset(m, 0, sizeof *m);
  m->size = sizeof *m;
}

void oftawq_model_outcome_init(oftawq_model_outcome *o)
{
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->reason = "";
  oftawq_oft_shape_init(&o->shape);
}

void oftawq_model_stats_init(oftawq_model_stats *s)
{
  if (!s) return;
  memset(s, 0, sizeof *s);
  s->size = sizeof *s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_module(const void *a, const void *b) { return strcmp(((const module *)a)->name, ((const module *)b)->name); }

static module *find_module(const oftawq_model *m, const char *name)
{
  module key;
  key.name = (char *)(uintptr_t)name;
  return name ? bsearch(&key, m->modules, m->n_modules, sizeof *m->modules, cmp_module) : NULL;
}

static adapter *find_adapter(const oftawq_model *m, const char *name)
{
  size_t i;
  for (i = 0; name && i < m->n_adapters; i++)
    if (!strcmp(m->adapters[i].name, name)) return &m->adapters[i];
  return NULL;
}

/* Passes each distinct warning on once per model (PEFT-style warnings repeat per module and per upload). */
static void dedup_log(void *user, oftawq_log_level level, const char *message)
{
  oftawq_model *m = user;
  uint64_t h = oftawq__fnv1a(OFTAWQ__FNV_OFFSET, message, strlen(message));
  size_t i;
  if (!m->user_log) return;
  if (level == OFTAWQ_LOG_WARNING) {
    for (i = 0; i < m->n_warned; i++)
      if (m->warned[i] == h) return;
    if (m->n_warned < MAX_WARNINGS_KEPT) m->warned[m->n_warned++] = h;
  }
  m->user_log(m->user_log_data, level, message);
}

/* Routes the context's log through dedup_log for the length of one model call. */
static void quiet_begin(oftawq_model *m)
{
  m->user_log = m->ctx->log;
  m->user_log_data = m->ctx->log_user;
  m->ctx->log = dedup_log;
  m->ctx->log_user = m;
}

static void quiet_end(oftawq_model *m)
{
  m->ctx->log = m->user_log;
  m->ctx->log_user = m->user_log_data;
}

static uint64_t hash_floats(const float *w, size_t n)
{
  return oftawq__fnv1a(OFTAWQ__FNV_OFFSET, w, n * sizeof *w);
}

static uint64_t rotation_bytes(const oftawq_oft_shape *s)
{
  return (uint64_t)s->weight_rows * (uint64_t)s->block_size * (uint64_t)s->block_size * sizeof(float);
}

static uint64_t module_bytes(const oftawq_model *m, size_t index)
{
  uint64_t bytes = m->modules[index].base_bytes;
  size_t a;
  for (a = 0; a < m->n_adapters; a++)
    if (m->adapters[a].slots[index].outcome == OFTAWQ_OUTCOME_WRAPPED)
      bytes += rotation_bytes(&m->adapters[a].slots[index].shape);
  return bytes;
}

static void free_slots(slot *slots, size_t n)
{
  size_t i;
  if (!slots) return;
  for (i = 0; i < n; i++) {
    free(slots[i].reason);
    free(slots[i].weights);
  }
  free(slots);
}

/* ------------------------------------------------------------------ open */

/* The module a tensor belongs to: its name without the last component (NULL for a top-level tensor). */
static char *module_of(const char *tensor)
{
  const char *dot = strrchr(tensor, '.');
  char *name;
  if (!dot || dot == tensor) return NULL;
  if (!(name = malloc((size_t)(dot - tensor) + 1))) return NULL;
  memcpy(name, tensor, (size_t)(dot - tensor));
  name[dot - tensor] = '\0';
  return name;
}

/* Reads what kind of module `mod` is, and for AWQ modules their checked tensors. */
static oftawq_status classify(oftawq_model *m, module *mod, char *why, size_t cap)
{
  char name[1100];
  oftawq_tensor t;
  oftawq_status status;
  snprintf(name, sizeof name, "%s.qweight", mod->name);
  if (oftawq__model_file_tensor(m->file, name, &t, NULL, 0) == OFTAWQ_OK &&
      !oftawq__model_file_not_converted(m->file, mod->name)) {
    int G;
    oftawq_awq_tensors_init(&mod->tensors);
    if ((status = oftawq_model_file_module(m->file, mod->name, &mod->tensors, why, cap)) < 0) return status;
    mod->kind = OFTAWQ_TARGET_AWQ_GEMM;
    G = mod->tensors.G;
    mod->base_bytes = (uint64_t)mod->tensors.K * (uint64_t)(mod->tensors.N / 8) * 4 +
                      (uint64_t)(mod->tensors.K / G) * (uint64_t)(mod->tensors.N / 8) * 4 +
                      (uint64_t)(mod->tensors.K / G) * (uint64_t)mod->tensors.N * 2 +
                      (mod->tensors.bias ? (uint64_t)mod->tensors.N * 2 : 0);
    mod->K = mod->tensors.K;
    mod->N = mod->tensors.N;
    return OFTAWQ_OK;
  }
  snprintf(name, sizeof name, "%s.weight", mod->name);
  mod->kind = OFTAWQ_TARGET_OTHER;
  if ((status = oftawq__model_file_tensor(m->file, name, &t, why, cap)) == OFTAWQ_E_NOT_FOUND) return OFTAWQ_OK;
  if (status < 0) return status;
  mod->dtype = t.dtype;
  if (t.ndim == 2 && (t.dtype == OFTAWQ_T_F16 || t.dtype == OFTAWQ_T_F32 || t.dtype == OFTAWQ_T_BF16) &&
      t.shape[0] <= INT32_MAX && t.shape[1] <= INT32_MAX) {
    mod->kind = t.dtype == OFTAWQ_T_F16 ? OFTAWQ_TARGET_LINEAR_F16
                : t.dtype == OFTAWQ_T_F32 ? OFTAWQ_TARGET_LINEAR_F32 : OFTAWQ_TARGET_LINEAR_BF16;
    mod->N = (int)t.shape[0];
    mod->K = (int)t.shape[1];
  }
  return OFTAWQ_OK;
}

/* The modules (every name that holds tensors) and the containers (names that only hold modules). */
static oftawq_status list_modules(oftawq_model *m, char *why, size_t cap)
{
  size_t n = oftawq__model_file_tensor_count(m->file), i, j, k;
  char **names = calloc(n + 1, sizeof *names), **prefixes = NULL;
  size_t n_names = 0, n_prefixes = 0, cap_prefixes = 0;
  oftawq_status status = OFTAWQ_OK;
  if (!names) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < n; i++) {
    char *name = module_of(oftawq__model_file_tensor_name(m->file, i));
    if (name) names[n_names++] = name;
  }
  qsort(names, n_names, sizeof *names, cmp_str);
  for (i = j = 0; i < n_names; i++) { /* unique */
    if (j && !strcmp(names[j - 1], names[i])) {
      free(names[i]);
      continue;
    }
    names[j++] = names[i];
  }
  n_names = j;
  if (!(m->modules = calloc(n_names + 1, sizeof *m->modules))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (i = 0; i < n_names; i++) {
    m->modules[i].name = names[i];
    names[i] = NULL;
    m->n_modules++;
    if ((status = classify(m, &m->modules[i], why, cap)) < 0) goto done;
    /* every proper prefix at a '.' is a container, unless it is a module itself */
    for (k = 0; m->modules[i].name[k]; k++) {
      char *prefix;
      if (m->modules[i].name[k] != '.') continue;
      if (n_prefixes == cap_prefixes) {
        char **grown = realloc(prefixes, (cap_prefixes = 2 * cap_prefixes + 16) * sizeof *grown);
        if (!grown) {
          status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
          goto done;
        }
        prefixes = grown;
      }
      if (!(prefix = malloc(k + 1))) {
        status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
        goto done;
      }
      memcpy(prefix, m->modules[i].name, k);
      prefix[k] = '\0';
      prefixes[n_prefixes++] = prefix;
    }
  }
  if (n_prefixes) qsort(prefixes, n_prefixes, sizeof *prefixes, cmp_str);
  if (!(m->containers = calloc(n_prefixes + 1, sizeof *m->containers))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (i = 0; i < n_prefixes; i++) {
    if ((m->n_containers && !strcmp(m->containers[m->n_containers - 1], prefixes[i])) || find_module(m, prefixes[i])) {
      free(prefixes[i]);
    } else {
      m->containers[m->n_containers++] = prefixes[i];
    }
    prefixes[i] = NULL;
  }
done:
  for (i = 0; i < n_names; i++) free(names[i]);
  for (i = 0; i < n_prefixes; i++) free(prefixes[i]);
  free(names);
  free(prefixes);
  return status;
}

oftawq_status oftawq_model_open(oftawq_context *ctx, const char *dir, const oftawq_model_options *options,
                                oftawq_model **out)
{
  oftawq_model *m = NULL;
  oftawq_status status;
  char why[WHY];
  const char *producer = NULL, *version = NULL;
  oftawq__version parsed;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_open: NULL output");
  *out = NULL;
  if (!dir) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_open: NULL folder");
  if (options && options->size < sizeof *options)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_open: options of an unknown (older) size");
  if (options && ((int)options->producer < (int)OFTAWQ_PRODUCER_UNKNOWN ||
                  (int)options->producer > (int)OFTAWQ_PRODUCER_GPTQMODEL))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_open: unknown producer %d", (int)options->producer);
  if (options && options->producer_version && !oftawq__version_parse(options->producer_version, &parsed))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_open: the producer version '%s' is not a PEP 440 version",
                        options->producer_version);
  if (!(m = calloc(1, sizeof *m))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  m->ctx = ctx;
  m->enabled = 1;
  oftawq_model_options_init(&m->options);
  if (options) m->options = *options;
  m->options.producer_version = NULL; /* copied below */
  if ((status = oftawq_model_file_open(dir, &m->file, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s", why);
    goto fail;
  }
  /* the version gate: the caller's word, else the checkpoint's record */
  if (options && (options->producer != OFTAWQ_PRODUCER_UNKNOWN || options->producer_version)) {
    m->producer = options->producer;
    version = options->producer_version;
  } else {
    oftawq__model_file_producer(m->file, &producer, &version);
    m->producer = !producer ? OFTAWQ_PRODUCER_UNKNOWN
                  : !strcmp(producer, "gptqmodel") ? OFTAWQ_PRODUCER_GPTQMODEL : OFTAWQ_PRODUCER_AUTOAWQ;
  }
  if (version && !(m->producer_version = oftawq__strdup(version))) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  if ((status = list_modules(m, why, sizeof why)) < 0) {
    status = oftawq__fail(ctx, status, "%s: %s", dir, why);
    goto fail;
  }
  *out = m;
  return OFTAWQ_OK;
fail:
  oftawq_model_destroy(m);
  return status;
}

static void free_adapter(adapter *a, size_t n_modules)
{
  free_slots(a->slots, n_modules);
  free(a->peft_version);
}

static void clear_active(oftawq_model *m)
{
  oftawq__strings_free(m->active, m->n_active);
  m->active = NULL;
  m->n_active = 0;
}

void oftawq_model_destroy(oftawq_model *m)
{
  size_t i;
  if (!m) return;
  for (i = 0; i < m->n_modules; i++) {
    oftawq_layer_destroy(m->modules[i].layer);
    free(m->modules[i].name);
  }
  oftawq__strings_free(m->containers, m->n_containers);
  for (i = 0; i < m->n_adapters; i++) free_adapter(&m->adapters[i], m->n_modules);
  clear_active(m);
  free(m->modules);
  free(m->adapters);
  free(m->producer_version);
  oftawq_model_file_close(m->file);
  free(m);
}

size_t oftawq_model_module_count(const oftawq_model *m) { return m ? m->n_modules : 0; }

oftawq_status oftawq_model_module_get(const oftawq_model *m, size_t index, oftawq_model_module *out)
{
  const module *mod;
  if (!m || !out || out->size < sizeof *out) return OFTAWQ_E_INVALID_ARGUMENT;
  if (index >= m->n_modules)
    return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "module index %zu is out of range (%zu modules)", index,
                        m->n_modules);
  mod = &m->modules[index];
  oftawq_model_module_init(out);
  out->name = mod->name;
  out->kind = mod->kind;
  out->K = mod->K;
  out->N = mod->N;
  if (mod->kind == OFTAWQ_TARGET_AWQ_GEMM) {
    out->G = mod->tensors.G;
    out->has_bias = mod->tensors.bias != NULL;
    out->device_bytes = module_bytes(m, index);
  }
  out->uploaded = mod->layer != NULL;
  return OFTAWQ_OK;
}

oftawq_status oftawq_model_module_find(const oftawq_model *m, const char *name, size_t *index)
{
  const module *mod;
  if (!m || !name || !index) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(mod = find_module(m, name))) return oftawq__fail(m->ctx, OFTAWQ_E_NOT_FOUND, "the model has no module '%s'", name);
  *index = (size_t)(mod - m->modules);
  return OFTAWQ_OK;
}

/* ------------------------------------------------------------------ layers: upload, eviction */

/* Takes a layer off the device; adapter weights changed through it are kept for the next upload. */
static oftawq_status evict(oftawq_model *m, size_t index)
{
  module *mod = &m->modules[index];
  size_t a;
  if (!mod->layer) return OFTAWQ_OK;
  for (a = 0; a < m->n_adapters; a++) {
    slot *s = &m->adapters[a].slots[index];
    oftawq_oft *oft;
    float *now;
    if (s->outcome != OFTAWQ_OUTCOME_WRAPPED || !(oft = oftawq_layer_adapter(mod->layer, m->adapters[a].name)))
      continue;
    if (!(now = malloc((s->count ? s->count : 1) * sizeof *now)))
      return oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory evicting '%s'", mod->name);
    if (oftawq_oft_get_weights(oft, now, s->count) == OFTAWQ_OK && hash_floats(now, s->count) != s->upload_hash) {
      free(s->weights);
      s->weights = now;
      s->has_weights = 1;
    } else {
      free(now);
    }
  }
  m->used_bytes -= module_bytes(m, index);
  oftawq_layer_destroy(mod->layer);
  mod->layer = NULL;
  return OFTAWQ_OK;
}

/* The least recently used uploaded layer other than `keep`, or n_modules. */
static size_t lru(const oftawq_model *m, size_t keep)
{
  size_t i, best = m->n_modules;
  for (i = 0; i < m->n_modules; i++)
    if (i != keep && m->modules[i].layer && (best == m->n_modules || m->modules[i].last_use < m->modules[best].last_use))
      best = i;
  return best;
}

static oftawq_status upload(oftawq_model *m, size_t index)
{
  module *mod = &m->modules[index];
  oftawq_layer *layer = NULL;
  oftawq_status status = OFTAWQ_OK;
  uint64_t need = module_bytes(m, index);
  size_t a, victim;
  while (m->options.memory_budget && m->used_bytes + need > m->options.memory_budget &&
         (victim = lru(m, index)) < m->n_modules) {
    if ((status = evict(m, victim)) < 0) return status;
    m->evictions++;
  }
  for (a = 0; a < m->n_adapters && status >= 0; a++) {
    const adapter *ad = &m->adapters[a];
    const slot *s = &ad->slots[index];
    if (s->outcome != OFTAWQ_OUTCOME_WRAPPED) continue;
    if (!layer) {
      oftawq_target t;
      oftawq_target_init(&t);
      t.tensors = mod->tensors;
      t.producer = m->producer;
      t.awq_version = m->producer_version;
      status = oftawq_dispatch(m->ctx, &t, ad->name, &ad->config, s->weights, s->count, &layer);
    } else {
      status = oftawq_layer_add_adapter(layer, ad->name, &ad->config, s->weights, s->count);
    }
  }
  if (status >= 0 && !layer) status = oftawq_layer_create(m->ctx, &mod->tensors, &layer); /* PEFT: the base layer */
  if (status >= 0) status = oftawq_layer_set_active(layer, (const char *const *)m->active, m->n_active);
  if (status >= 0) status = oftawq_layer_enable_adapters(layer, m->enabled);
  for (a = 0; a < m->n_adapters && status >= 0; a++) { /* what the layer took (COFT projects it) */
    slot *s = &m->adapters[a].slots[index];
    oftawq_oft *oft = oftawq_layer_adapter(layer, m->adapters[a].name);
    float *now;
    if (s->outcome != OFTAWQ_OUTCOME_WRAPPED || !oft) continue;
    if (!(now = malloc((s->count ? s->count : 1) * sizeof *now))) {
      status = oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      break;
    }
    if ((status = oftawq_oft_get_weights(oft, now, s->count)) == OFTAWQ_OK) s->upload_hash = hash_floats(now, s->count);
    free(now);
  }
  if (status < 0) {
    oftawq_layer_destroy(layer);
    return status;
  }
  mod->layer = layer;
  m->used_bytes += need;
  m->uploads++;
  return OFTAWQ_OK;
}

oftawq_status oftawq__model_check_module(oftawq_model *m, const char *name)
{
  const module *mod = find_module(m, name);
  oftawq_awq_tensors t;
  char why[WHY];
  oftawq_status status;
  if (mod && mod->kind == OFTAWQ_TARGET_AWQ_GEMM) return OFTAWQ_OK;
  /* the folder reader's own words for what the module is instead */
  oftawq_awq_tensors_init(&t);
  status = oftawq_model_file_module(m->file, name, &t, why, sizeof why);
  if (status == OFTAWQ_OK && mod) /* it reads as AWQ, but a module of that name is full-precision */
    return oftawq__fail(m->ctx, OFTAWQ_E_UNSUPPORTED, "module '%s' is not an AWQ GEMM layer", name);
  if (status == OFTAWQ_E_NOT_FOUND && !mod && strlen(name) < 900)
    return oftawq__fail(m->ctx, status, "no module '%s' in the model", name);
  return oftawq__fail(m->ctx, status < 0 ? status : OFTAWQ_E_UNSUPPORTED, "%s", why);
}

oftawq_status oftawq_model_layer(oftawq_model *m, const char *name, oftawq_layer **out)
{
  module *mod;
  oftawq_status status = OFTAWQ_OK;
  if (!m) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_layer: NULL output");
  *out = NULL;
  if (!name) return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_layer: NULL module name");
  if ((status = oftawq__model_check_module(m, name)) < 0) return status;
  mod = find_module(m, name);
  if (!mod->layer) {
    quiet_begin(m);
    status = upload(m, (size_t)(mod - m->modules));
    quiet_end(m);
  }
  if (status < 0) return status;
  mod->last_use = ++m->clock;
  *out = mod->layer;
  return OFTAWQ_OK;
}

oftawq_status oftawq_model_forward(oftawq_model *m, const char *module_name, oftawq_dtype dtype, const void *x, void *y,
                                   size_t rows)
{
  oftawq_layer *layer;
  oftawq_status status;
  if (!m) return OFTAWQ_E_INVALID_ARGUMENT;
  if ((status = oftawq_model_layer(m, module_name, &layer)) < 0) return status;
  return oftawq_layer_forward(layer, dtype, x, y, rows);
}

oftawq_status oftawq__model_take_layer(oftawq_model *m, const char *name, oftawq_layer **out)
{
  module *mod;
  oftawq_status status = oftawq_model_layer(m, name, out);
  if (status < 0) return status;
  mod = find_module(m, name);
  m->used_bytes -= module_bytes(m, (size_t)(mod - m->modules));
  mod->layer = NULL;
  return OFTAWQ_OK;
}

oftawq_status oftawq_model_get_stats(const oftawq_model *m, oftawq_model_stats *s)
{
  size_t i;
  if (!m || !s || s->size < sizeof *s) return OFTAWQ_E_INVALID_ARGUMENT;
  oftawq_model_stats_init(s);
  for (i = 0; i < m->n_modules; i++) {
    if (m->modules[i].kind != OFTAWQ_TARGET_AWQ_GEMM) continue;
    s->total_bytes += module_bytes(m, i);
    if (m->modules[i].layer) s->layers_uploaded++;
  }
  s->device_bytes = m->used_bytes;
  s->memory_budget = m->options.memory_budget;
  s->uploads = m->uploads;
  s->evictions = m->evictions;
  return OFTAWQ_OK;
}

/* ------------------------------------------------------------------ active adapters */

static oftawq_status apply_to_layers(oftawq_model *m)
{
  size_t i;
  oftawq_status status;
  for (i = 0; i < m->n_modules; i++) {
    if (!m->modules[i].layer) continue;
    if ((status = oftawq_layer_set_active(m->modules[i].layer, (const char *const *)m->active, m->n_active)) < 0 ||
        (status = oftawq_layer_enable_adapters(m->modules[i].layer, m->enabled)) < 0)
      return status;
  }
  return OFTAWQ_OK;
}

oftawq_status oftawq_model_set_active(oftawq_model *m, const char *const *names, size_t n)
{
  char **copy = NULL;
  size_t i;
  if (!m) return OFTAWQ_E_INVALID_ARGUMENT;
  if (n && !names) return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_set_active: NULL names");
  for (i = 0; i < n; i++) {
    if (!names[i]) return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "active adapter name %zu is NULL", i);
    if (!find_adapter(m, names[i]))
      return oftawq__fail(m->ctx, OFTAWQ_E_NOT_FOUND, "adapter '%s' is not loaded in the model", names[i]);
  }
  if (n && !(copy = calloc(n, sizeof *copy))) return oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  for (i = 0; i < n; i++)
    if (!(copy[i] = oftawq__strdup(names[i]))) {
      while (i--) free(copy[i]);
      free(copy);
      return oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    }
  clear_active(m);
  m->active = copy;
  m->n_active = n;
  return apply_to_layers(m);
}

oftawq_status oftawq_model_enable_adapters(oftawq_model *m, int enabled)
{
  if (!m) return OFTAWQ_E_INVALID_ARGUMENT;
  m->enabled = enabled != 0;
  return apply_to_layers(m);
}

/* ------------------------------------------------------------------ adapters */

size_t oftawq_model_adapter_count(const oftawq_model *m) { return m ? m->n_adapters : 0; }

const char *oftawq_model_adapter_name(const oftawq_model *m, size_t index)
{
  return m && index < m->n_adapters ? m->adapters[index].name : NULL;
}

oftawq_status oftawq_model_adapter_config(const oftawq_model *m, size_t index, oftawq_oft_config *config)
{
  if (!m || !config || config->size < sizeof *config) return OFTAWQ_E_INVALID_ARGUMENT;
  if (index >= m->n_adapters)
    return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "adapter index %zu is out of range (%zu adapters)", index,
                        m->n_adapters);
  *config = m->adapters[index].config;
  return OFTAWQ_OK;
}

oftawq_status oftawq_model_outcome_get(const oftawq_model *m, size_t module_index, size_t adapter_index,
                                       oftawq_model_outcome *out)
{
  const slot *s;
  if (!m || !out || out->size < sizeof *out) return OFTAWQ_E_INVALID_ARGUMENT;
  if (module_index >= m->n_modules || adapter_index >= m->n_adapters)
    return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "module %zu / adapter %zu is out of range (%zu / %zu)",
                        module_index, adapter_index, m->n_modules, m->n_adapters);
  s = &m->adapters[adapter_index].slots[module_index];
  oftawq_model_outcome_init(out);
  out->outcome = s->outcome;
  out->status = s->status;
  out->reason = s->reason ? s->reason : "";
  out->shape = s->shape;
  out->has_weights = s->has_weights;
  return OFTAWQ_OK;
}

/* Records a refusal (or a note) on a slot. */
static oftawq_status note(slot *s, oftawq_outcome outcome, oftawq_status status, const char *reason)
{
  s->outcome = outcome;
  s->status = status;
  free(s->reason);
  return (s->reason = oftawq__strdup(reason)) ? OFTAWQ_OK : OFTAWQ_E_OUT_OF_MEMORY;
}

/* The factory's and the weights' verdict on one targeted AWQ module. */
static oftawq_status wrap(oftawq_model *m, oftawq_adapter_file *file, const oftawq_oft_config *c, const module *mod,
                          slot *s, size_t *missing)
{
  char why[WHY], msg[WHY + 256];
  const float *w;
  size_t rows, cols, i;
  oftawq_status status;
  if ((status = oftawq__dispatch_check(m->ctx, mod->kind, m->producer, m->producer_version, why, sizeof why)) < 0)
    return note(s, OFTAWQ_OUTCOME_REFUSED, status, why);
  oftawq_oft_shape_init(&s->shape);
  if ((status = oftawq_oft_resolve(c, mod->tensors.K, m->ctx->log, m->ctx->log_user, &s->shape, why, sizeof why)) < 0) {
    snprintf(msg, sizeof msg, "OFT config for '%s': %s", mod->name, why);
    return note(s, OFTAWQ_OUTCOME_REFUSED, status, msg);
  }
  s->count = (size_t)s->shape.weight_rows * (size_t)s->shape.n_elements;
  status = oftawq_adapter_weights(file, mod->name, &w, &rows, &cols, why, sizeof why);
  if (status == OFTAWQ_E_NOT_FOUND) {
    if (!c->init_weights) {
      snprintf(msg, sizeof msg,
               "the adapter targets '%s' but has no weights for module '%s', and with init_weights false PEFT "
               "would start it from random values",
               mod->name, mod->name);
      return note(s, OFTAWQ_OUTCOME_REFUSED, OFTAWQ_E_FORMAT, msg);
    }
    w = NULL; /* PEFT's init_weights: zeros, R = I */
    (*missing)++;
  } else if (status < 0) {
    return note(s, OFTAWQ_OUTCOME_REFUSED, status, why);
  } else if (rows != (size_t)s->shape.weight_rows || cols != (size_t)s->shape.n_elements) {
    snprintf(msg, sizeof msg,
             "oft_R.weight of '%s' is [%zu, %zu], expected [%d, %d] for in_features %d (r %d, block size %d%s)",
             mod->name, rows, cols, s->shape.weight_rows, s->shape.n_elements, mod->tensors.K, s->shape.r,
             s->shape.block_size, c->block_share ? ", block_share" : "");
    return note(s, OFTAWQ_OUTCOME_REFUSED, OFTAWQ_E_FORMAT, msg);
  }
  for (i = 0; w && i < s->count; i++)
    if (!isfinite(w[i])) {
      snprintf(msg, sizeof msg, "oft_R.weight of '%s': element %zu (row %zu) is %s", mod->name, i,
               i / (size_t)(s->shape.n_elements ? s->shape.n_elements : 1), isnan(w[i]) ? "NaN" : "infinite");
      return note(s, OFTAWQ_OUTCOME_REFUSED, OFTAWQ_E_INVALID_ARGUMENT, msg);
    }
  if (!(s->weights = calloc(s->count ? s->count : 1, sizeof *s->weights))) return OFTAWQ_E_OUT_OF_MEMORY;
  if (w && s->count) memcpy(s->weights, w, s->count * sizeof *w);
  s->has_weights = w != NULL;
  s->outcome = OFTAWQ_OUTCOME_WRAPPED;
  s->status = OFTAWQ_OK;
  if (!w) return note(s, OFTAWQ_OUTCOME_WRAPPED, OFTAWQ_OK, "no weights in the file: R = I, as PEFT initialises them");
  return OFTAWQ_OK;
}

/* PEFT's errors when an adapter targets nothing (BaseTuner.inject_adapter). */
static oftawq_status nothing_targeted(oftawq_model *m, const oftawq__matcher *matcher, const oftawq__targeting *t,
                                      int excluded_any, const char *dir)
{
  char targets[512], notes[256] = "";
  if (t->layers_present || t->n_layers_patterns)
    snprintf(notes, sizeof notes, "%s%s", t->layers_present ? " Note: You specified 'layers_to_transform'." : "",
             t->n_layers_patterns ? " You also specified 'layers_pattern'." : "");
  if (excluded_any)
    return oftawq__fail(m->ctx, OFTAWQ_E_NOT_FOUND,
                        "%s: No modules were targeted for adaptation. This might be caused by a combination of "
                        "mismatched target modules and excluded modules. Please check your `target_modules` and "
                        "`exclude_modules` configuration. You may also have only targeted modules that are marked to "
                        "be saved (`modules_to_save`).%s",
                        dir, notes);
  if (t->target_modules.present && !t->target_modules.regex && t->target_modules.n_names == 0)
    return oftawq__fail(m->ctx, OFTAWQ_E_NOT_FOUND,
                        "%s: No `target_modules` passed but also no `target_parameters` found. Please check the "
                        "values for these arguments.",
                        dir);
  oftawq__matcher_targets_text(matcher, targets, sizeof targets);
  return oftawq__fail(m->ctx, OFTAWQ_E_NOT_FOUND,
                      "%s: Target modules %s not found in the base model. Please check the target modules and try "
                      "again.%s",
                      dir, targets, notes);
}

/* The last component of a folder path ("a/b/" gives "b"): its start and length. */
static const char *base_name(const char *dir, size_t *len)
{
  size_t end = strlen(dir), start;
  while (end > 1 && dir[end - 1] == '/') end--;
  for (start = end; start > 0 && dir[start - 1] != '/'; start--) continue;
  *len = end - start;
  return dir + start;
}

/* The adapter's name: the caller's, "default" for the first, else its folder's; never truncated. */
static oftawq_status adapter_name(oftawq_model *m, const char *dir, const char *given, char *out)
{
  size_t len = given ? strlen(given) : 0;
  const char *name = given ? given : m->n_adapters == 0 ? DEFAULT_ADAPTER : base_name(dir, &len);
  if (!given && m->n_adapters == 0) len = strlen(name);
  if (len == 0 || len >= OFTAWQ_MAX_ADAPTER_NAME)
    return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "%s: the adapter name '%.*s' is %zu bytes; names have 1 to %d",
                        dir, (int)(len > 64 ? 64 : len), name, len, OFTAWQ_MAX_ADAPTER_NAME - 1);
  memcpy(out, name, len);
  out[len] = '\0';
  return OFTAWQ_OK;
}

/* Targets every module: the slots of the new adapter, or an error where PEFT raises one. */
static oftawq_status apply_rules(oftawq_model *m, const char *dir, oftawq_adapter_file *file, const oftawq__matcher *mt,
                                 adapter *ad)
{
  const oftawq__targeting *t = oftawq__adapter_targeting(file);
  char why[WHY];
  size_t i, targeted = 0, excluded = 0, unmatched = 0, missing = 0, first_missing = 0;
  oftawq_status status;
  int r;
  for (i = 0; i < m->n_containers; i++) {
    if ((r = oftawq__matcher_check(mt, m->containers[i], why, sizeof why)) < 0)
      return oftawq__fail(m->ctx, (oftawq_status)r, "%s: %s", dir, why);
    if (r == OFTAWQ__TARGETED)
      return oftawq__fail(m->ctx, OFTAWQ_E_UNSUPPORTED,
                          "%s: Target module %s is not supported. Currently, only the following modules are "
                          "supported: `torch.nn.Linear`, `torch.nn.Conv2d`. (it holds other modules)",
                          dir, m->containers[i]);
    if (r == OFTAWQ__EXCLUDED) excluded++;
    if (r == OFTAWQ__NOT_TARGETED) unmatched++;
  }
  for (i = 0; i < m->n_modules; i++) {
    module *mod = &m->modules[i];
    slot *s = &ad->slots[i];
    size_t before = missing;
    if ((r = oftawq__matcher_check(mt, mod->name, why, sizeof why)) < 0)
      return oftawq__fail(m->ctx, (oftawq_status)r, "%s: %s", dir, why);
    if (r == OFTAWQ__EXCLUDED) {
      s->outcome = OFTAWQ_OUTCOME_EXCLUDED;
      excluded++;
      continue;
    }
    if (r == OFTAWQ__NOT_TARGETED) {
      unmatched++;
      continue;
    }
    targeted++;
    if (mod->kind == OFTAWQ_TARGET_OTHER)
      return oftawq__fail(m->ctx, OFTAWQ_E_UNSUPPORTED,
                          "%s: Target module %s is not supported. Currently, only the following modules are "
                          "supported: `torch.nn.Linear`, `torch.nn.Conv2d`.",
                          dir, mod->name);
    if (mod->kind != OFTAWQ_TARGET_AWQ_GEMM) {
      char reason[256];
      snprintf(reason, sizeof reason,
               "not an AWQ GEMM layer: a full-precision %s [%d, %d] weight (PEFT wraps it in its plain OFT layer, "
               "which oftawq does not run)",
               oftawq_tensor_dtype_name(mod->dtype), mod->N, mod->K);
      if ((status = note(s, OFTAWQ_OUTCOME_NOT_APPLICABLE, OFTAWQ_NOT_APPLICABLE, reason)) < 0) return status;
      continue;
    }
    if ((status = wrap(m, file, &ad->config, mod, s, &missing)) < 0)
      return oftawq__fail(m->ctx, status, "out of memory");
    if (missing > before && before == 0) first_missing = i;
    if (s->outcome == OFTAWQ_OUTCOME_REFUSED && !m->options.record_refusals)
      return oftawq__fail(m->ctx, s->status, "%s: %s", dir, s->reason);
  }
  if (targeted == 0) {
    size_t a;
    int wrapped_before = 0; /* PEFT counts the insides of layers already wrapped as excluded modules */
    for (a = 0; a < m->n_adapters; a++)
      for (i = 0; i < m->n_modules; i++) wrapped_before |= m->adapters[a].slots[i].outcome == OFTAWQ_OUTCOME_WRAPPED;
    if ((excluded || wrapped_before) && unmatched == 0)
      return oftawq__fail(m->ctx, OFTAWQ_E_NOT_FOUND,
                          "%s: All modules were excluded. This is likely unintended. Check your `target_modules`, "
                          "`exclude_modules` and `modules_to_save` configuration.",
                          dir);
    return nothing_targeted(m, mt, t, excluded || wrapped_before, dir);
  }
  if (missing)
    oftawq__log(m->ctx, OFTAWQ_LOG_WARNING,
                "%s: no weights for %zu targeted module%s (first '%s'): R = I there, as PEFT initialises them", dir,
                missing, missing == 1 ? "" : "s", m->modules[first_missing].name);
  if (t->exclude_modules.present && (t->exclude_modules.regex ? *t->exclude_modules.regex != '\0'
                                                               : t->exclude_modules.n_names > 0) && !excluded)
    oftawq__log(m->ctx, OFTAWQ_LOG_WARNING,
                "%s: You have passed exclude_modules but no modules were excluded. Please check that exclude_modules "
                "was set correctly.",
                dir);
  if (t->n_modules_to_save)
    oftawq__log(m->ctx, OFTAWQ_LOG_WARNING,
                "%s: modules_to_save is set: PEFT saved full copies of those modules, which oftawq does not load "
                "(it runs the AWQ modules only)",
                dir);
  if (strcmp(t->bias, "none") != 0)
    oftawq__log(m->ctx, OFTAWQ_LOG_WARNING,
                "%s: bias is '%s': PEFT trained biases too, which oftawq does not load (the AWQ biases are used)",
                dir, t->bias);
  return OFTAWQ_OK;
}

static oftawq_status load_adapter(oftawq_model *m, const char *dir, const char *name_arg)
{
  oftawq_adapter_file *file = NULL;
  oftawq__matcher *matcher = NULL;
  adapter ad, *grown;
  char why[WHY];
  oftawq_status status;
  size_t i;
  memset(&ad, 0, sizeof ad);
  if ((status = adapter_name(m, dir, name_arg, ad.name)) < 0) return status;
  if (find_adapter(m, ad.name)) return oftawq__fail(m->ctx, OFTAWQ_E_EXISTS, "the model already has an adapter '%s'", ad.name);
  if ((status = oftawq_adapter_open(dir, &file, why, sizeof why)) < 0) return oftawq__fail(m->ctx, status, "%s", why);
  oftawq_oft_config_init(&ad.config);
  oftawq_adapter_config(file, &ad.config);
  if (ad.config.peft_version && !(ad.peft_version = oftawq__strdup(ad.config.peft_version))) {
    status = oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  ad.config.peft_version = ad.peft_version;
  if ((status = oftawq__matcher_create(oftawq__adapter_targeting(file), oftawq__model_file_model_type(m->file), &matcher,
                                       why, sizeof why)) < 0) {
    status = oftawq__fail(m->ctx, status, "%s: %s", dir, why);
    goto fail;
  }
  if (!(ad.slots = calloc(m->n_modules + 1, sizeof *ad.slots))) {
    status = oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  if ((status = apply_rules(m, dir, file, matcher, &ad)) < 0) goto fail;
  if (!(grown = realloc(m->adapters, (m->n_adapters + 1) * sizeof *grown))) {
    status = oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  m->adapters = grown;
  /* layers already on the device are made again with the new adapter on their next use */
  for (i = 0; i < m->n_modules; i++)
    if (m->modules[i].layer && ad.slots[i].outcome == OFTAWQ_OUTCOME_WRAPPED) {
      if ((status = evict(m, i)) < 0) goto fail;
      m->evictions++;
    }
  m->adapters[m->n_adapters++] = ad;
  oftawq__matcher_free(matcher);
  oftawq_adapter_close(file);
  if (m->n_adapters == 1) { /* PEFT's from_pretrained activates the adapter it loads */
    const char *first = m->adapters[0].name;
    return oftawq_model_set_active(m, &first, 1);
  }
  return OFTAWQ_OK;
fail:
  oftawq__matcher_free(matcher);
  oftawq_adapter_close(file);
  free_adapter(&ad, m->n_modules);
  return status;
}

oftawq_status oftawq_model_load_adapter(oftawq_model *m, const char *dir, const char *name)
{
  oftawq_status status;
  if (!m) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!dir) return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_load_adapter: NULL folder");
  quiet_begin(m);
  status = load_adapter(m, dir, name);
  quiet_end(m);
  return status;
}

oftawq_status oftawq_model_save_adapter(oftawq_model *m, const char *name, const char *dir)
{
  const adapter *ad;
  oftawq_adapter_module *mods = NULL;
  float **copies = NULL;
  size_t i, n = 0;
  char why[WHY];
  oftawq_status status = OFTAWQ_OK;
  if (!m) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!name || !dir) return oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_model_save_adapter: NULL argument");
  if (!(ad = find_adapter(m, name))) return oftawq__fail(m->ctx, OFTAWQ_E_NOT_FOUND, "no adapter '%s' in the model", name);
  if (!(mods = calloc(m->n_modules + 1, sizeof *mods)) || !(copies = calloc(m->n_modules + 1, sizeof *copies))) {
    status = oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (i = 0; i < m->n_modules; i++) {
    const slot *s = &ad->slots[i];
    oftawq_oft *oft = m->modules[i].layer ? oftawq_layer_adapter(m->modules[i].layer, name) : NULL;
    const float *w = s->weights;
    if (s->outcome != OFTAWQ_OUTCOME_WRAPPED) continue;
    if (oft) { /* the layer's weights: what training or the caller made of them */
      if (!(copies[n] = malloc((s->count ? s->count : 1) * sizeof *copies[n]))) {
        status = oftawq__fail(m->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
        goto done;
      }
      if ((status = oftawq_oft_get_weights(oft, copies[n], s->count)) < 0) goto done;
      w = copies[n];
    }
    oftawq_adapter_module_init(&mods[n]);
    mods[n].module = m->modules[i].name;
    mods[n].weights = w;
    mods[n].rows = (size_t)s->shape.weight_rows;
    mods[n].cols = (size_t)s->shape.n_elements;
    n++;
  }
  if (n == 0) {
    status = oftawq__fail(m->ctx, OFTAWQ_E_INVALID_ARGUMENT, "adapter '%s' wraps no module of the model: nothing to save",
                          name);
    goto done;
  }
  if ((status = oftawq_adapter_write(dir, &ad->config, mods, n, NULL, why, sizeof why)) < 0)
    status = oftawq__fail(m->ctx, status, "%s", why);
done:
  for (i = 0; copies && i < m->n_modules; i++) free(copies[i]);
  free(copies);
  free(mods);
  return status;
}
