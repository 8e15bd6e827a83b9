/* target.c: PEFT's module targeting in C - target_modules, exclude_modules, modules_to_save, layers_to_transform. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/pyre.h"
#include "model/target.h"

#define ALL_LINEAR "all-linear"
/* PEFT's layer-index patterns (tuners_utils.check_target_module_exists), with {} the layers_pattern. */
#define LAYER_DEFAULT_PATTERN ".*\\.[^.]*\\.(\\d+)\\."
#define LAYER_PATTERN_HEAD ".*\\."
#define LAYER_PATTERN_TAIL "\\.(\\d+)\\."
/* modules_to_save: re.match(rf"(^|.*\.){m}($|\..*)", key). */
#define SAVE_HEAD "(^|.*\\.)"
#define SAVE_TAIL "($|\\..*)"

/* PEFT's TRANSFORMERS_MODELS_TO_OFT_TARGET_MODULES_MAPPING (0.18), for target_modules = null. */
static const struct {
  const char *model_type;
  const char *targets[6];
} default_targets[] = {
  {"t5", {"q", "v"}}, {"mt5", {"q", "v"}}, {"bart", {"q_proj", "v_proj"}}, {"gpt2", {"c_attn"}},
  {"bloom", {"query_key_value"}}, {"blip-2", {"q", "v", "q_proj", "v_proj"}}, {"opt", {"q_proj", "v_proj"}},
  {"gptj", {"q_proj", "v_proj"}}, {"gpt_neox", {"query_key_value"}}, {"gpt_neo", {"q_proj", "v_proj"}},
  {"bert", {"query", "value"}}, {"roberta", {"query", "value"}}, {"xlm-roberta", {"query", "value"}},
  {"electra", {"query", "value"}}, {"deberta-v2", {"query_proj", "value_proj"}}, {"deberta", {"in_proj"}},
  {"layoutlm", {"query", "value"}}, {"llama", {"q_proj", "v_proj"}}, {"llama4", {"q_proj", "v_proj"}},
  {"chatglm", {"query_key_value"}}, {"gpt_bigcode", {"c_attn"}}, {"mpt", {"Wqkv"}},
  {"RefinedWebModel", {"query_key_value"}}, {"RefinedWeb", {"query_key_value"}}, {"falcon", {"query_key_value"}},
  {"btlm", {"c_proj", "c_attn"}}, {"codegen", {"qkv_proj"}}, {"mistral", {"q_proj", "v_proj"}},
  {"mixtral", {"q_proj", "v_proj"}}, {"stablelm", {"q_proj", "v_proj"}}, {"phi", {"q_proj", "v_proj", "fc1", "fc2"}},
  {"gemma", {"q_proj", "v_proj"}}, {"gemma2", {"q_proj", "v_proj"}}, {"gemma3_text", {"q_proj", "v_proj"}},
  {"qwen2", {"q_proj", "v_proj"}}, {"qwen3", {"q_proj", "v_proj"}},
  {"rwkv", {"key", "value", "receptance", "output"}}, {"rwkv7", {"r_proj", "k_proj", "v_proj", "o_proj", "key", "value"}},
};

struct oftawq__matcher {
  const oftawq__targeting *t;
  const char *const *targets;      /* the list of target_modules (the config's or the default) */
  size_t n_targets;
  oftawq__pyre *target_re, *exclude_re;
  oftawq__pyre **save_re;
  size_t n_save;
  oftawq__pyre **layer_re;         /* one per layers_pattern (or PEFT's default) */
  size_t n_layer_re;
};

void oftawq__matcher_free(oftawq__matcher *m)
{
  size_t i;
  if (!m) return;
  oftawq__pyre_free(m->target_re);
  oftawq__pyre_free(m->exclude_re);
  for (i = 0; i < m->n_save; i++) oftawq__pyre_free(m->save_re[i]);
  for (i = 0; i < m->n_layer_re; i++) oftawq__pyre_free(m->layer_re[i]);
  free(m->save_re);
  free(m->layer_re);
  free(m);
}

/* Compiles head + middle + tail as one pattern, as PEFT's f-strings do (the middle is not escaped). */
static oftawq_status compile_joined(const char *head, const char *middle, const char *tail, const char *field,
                                    oftawq__pyre **out, char *why, size_t cap)
{
  size_t n = strlen(head) + strlen(middle) + strlen(tail) + 1;
  char *text = malloc(n), inner[256];
  if (!text) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  snprintf(text, n, "%s%s%s", head, middle, tail);
  *out = oftawq__pyre_compile(text, inner, sizeof inner);
  free(text);
  if (!*out) return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "%s '%s': %s", field, middle, inner);
  return OFTAWQ_OK;
}

oftawq_status oftawq__matcher_create(const oftawq__targeting *t, const char *model_type, oftawq__matcher **out,
                                     char *why, size_t cap)
{
  oftawq__matcher *m;
  oftawq_status status = OFTAWQ_OK;
  size_t i;
  *out = NULL;
  if (!(m = calloc(1, sizeof *m))) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  m->t = t;
  if (!t->target_modules.present) {
    for (i = 0; model_type && i < sizeof default_targets / sizeof default_targets[0]; i++)
      if (!strcmp(default_targets[i].model_type, model_type)) break;
    if (!model_type || i == sizeof default_targets / sizeof default_targets[0]) {
      status = oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "Please specify `target_modules` in `peft_config`");
      goto fail;
    }
    m->targets = default_targets[i].targets;
    while (m->n_targets < 6 && m->targets[m->n_targets]) m->n_targets++;
  } else if (t->target_modules.regex) {
    if (!strcasecmp(t->target_modules.regex, ALL_LINEAR)) {
      status = oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                           "target_modules '" ALL_LINEAR "' selects torch.nn.Linear modules, which the quantised "
                           "layers of an AWQ model are not (PEFT would adapt only its full-precision layers); list "
                           "the modules instead");
      goto fail;
    }
    OFTAWQ__CHECK(compile_joined("", t->target_modules.regex, "", "target_modules", &m->target_re, why, cap));
  } else {
    m->targets = (const char *const *)t->target_modules.names;
    m->n_targets = t->target_modules.n_names;
  }
  if (t->exclude_modules.regex && *t->exclude_modules.regex)
    OFTAWQ__CHECK(compile_joined("", t->exclude_modules.regex, "", "exclude_modules", &m->exclude_re, why, cap));
  if (t->n_modules_to_save && !(m->save_re = calloc(t->n_modules_to_save, sizeof *m->save_re))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  for (i = 0; i < t->n_modules_to_save; i++, m->n_save++)
    OFTAWQ__CHECK(compile_joined(SAVE_HEAD, t->modules_to_save[i], SAVE_TAIL, "modules_to_save", &m->save_re[i], why,
                                 cap));
  if (!(m->layer_re = calloc(t->n_layers_patterns + 1, sizeof *m->layer_re))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  /* PEFT: an empty layers_pattern (None, [] or "") means any layer pattern */
  if (t->n_layers_patterns == 0 || (t->layers_pattern_is_string && !*t->layers_patterns[0])) {
    OFTAWQ__CHECK(compile_joined(LAYER_DEFAULT_PATTERN, "", "", "layers_pattern", &m->layer_re[0], why, cap));
    m->n_layer_re = 1;
  } else {
    for (i = 0; i < t->n_layers_patterns; i++, m->n_layer_re++)
      OFTAWQ__CHECK(compile_joined(LAYER_PATTERN_HEAD, t->layers_patterns[i], LAYER_PATTERN_TAIL, "layers_pattern",
                                   &m->layer_re[i], why, cap));
  }
  *out = m;
  return OFTAWQ_OK;
fail:
  oftawq__matcher_free(m);
  return status;
}

static int ends_with_dotted(const char *key, const char *suffix)
{
  size_t k = strlen(key), s = strlen(suffix);
  return k > s && key[k - s - 1] == '.' && !memcmp(key + k - s, suffix, s);
}

static int in_list(const char *key, const char *const *names, size_t n, int suffix)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (suffix ? ends_with_dotted(key, names[i]) : !strcmp(key, names[i])) return 1;
  return 0;
}

/* A regular-expression test; a negative status when the matcher ran out of memory or the name is too long. */
static int regex_test(const oftawq__pyre *re, const char *key, int full, long *start, long *end, char *why, size_t cap)
{
  int r = oftawq__pyre_match(re, key, full, 1, start, end);
  if (r < 0)
    return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "matching module '%s' (names up to %d bytes): out of memory",
                       key, OFTAWQ__PYRE_MAX_TEXT);
  return r;
}

/* layers_to_transform: the layer index the patterns find in key (PEFT's int(group(1))), then the list. */
static int layer_selected(const oftawq__matcher *m, const char *key, char *why, size_t cap)
{
  const oftawq__targeting *t = m->t;
  long start = -1, end = -1, index = 0, p;
  size_t i;
  int r = 0;
  for (i = 0; i < m->n_layer_re && r == 0; i++)
    if ((r = regex_test(m->layer_re[i], key, 0, &start, &end, why, cap)) < 0) return r;
  if (r == 0) return 0; /* no layer index in the name: not targeted */
  if (start < 0 || end <= start)
    return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                       "layers_pattern: group 1 of the layer pattern took no part in matching '%s' (PEFT fails on "
                       "int(None) here too)",
                       key);
  for (p = start; p < end; p++) {
    if (key[p] < '0' || key[p] > '9')
      return oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED,
                         "layers_pattern captures '%.*s' of '%s', which is not a layer index (PEFT fails on int() "
                         "here too)",
                         (int)(end - start), key + start, key);
    if (index <= INT_MAX) index = index * 10 + (key[p] - '0');
  }
  for (i = 0; i < t->n_layers; i++)
    if (index == t->layers[i]) return 1;
  return 0;
}

int oftawq__matcher_check(const oftawq__matcher *m, const char *key, char *why, size_t cap)
{
  const oftawq__targeting *t = m->t;
  int r;
  size_t i;
  if (m->exclude_re) {
    if ((r = regex_test(m->exclude_re, key, 1, NULL, NULL, why, cap)) != 0) return r < 0 ? r : OFTAWQ__EXCLUDED;
  } else if (!t->exclude_modules.regex && t->exclude_modules.n_names) {
    const char *const *names = (const char *const *)t->exclude_modules.names;
    if (in_list(key, names, t->exclude_modules.n_names, 0) || in_list(key, names, t->exclude_modules.n_names, 1))
      return OFTAWQ__EXCLUDED;
  }
  for (i = 0; i < m->n_save; i++)
    if ((r = regex_test(m->save_re[i], key, 0, NULL, NULL, why, cap)) != 0) return r < 0 ? r : OFTAWQ__EXCLUDED;
  if (m->target_re) return (r = regex_test(m->target_re, key, 1, NULL, NULL, why, cap)) < 0 ? r : r ? OFTAWQ__TARGETED : OFTAWQ__NOT_TARGETED;
  if (in_list(key, m->targets, m->n_targets, 0)) return OFTAWQ__TARGETED; /* by name: no layer filter */
  if (!in_list(key, m->targets, m->n_targets, 1)) return OFTAWQ__NOT_TARGETED;
  if (!t->layers_present || (!t->layers_is_int && t->n_layers == 0)) return OFTAWQ__TARGETED;
  r = layer_selected(m, key, why, cap);
  return r < 0 ? r : r ? OFTAWQ__TARGETED : OFTAWQ__NOT_TARGETED;
}

void oftawq__matcher_targets_text(const oftawq__matcher *m, char *buf, size_t cap)
{
  size_t len = 0, i;
  if (!cap) return;
  buf[0] = '\0';
  if (m->target_re) {
    snprintf(buf, cap, "%s", m->t->target_modules.regex);
    return;
  }
  len += (size_t)snprintf(buf, cap, "{");
  for (i = 0; i < m->n_targets && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", i ? ", " : "", m->targets[i]);
  if (len < cap) snprintf(buf + len, cap - len, "}");
}
