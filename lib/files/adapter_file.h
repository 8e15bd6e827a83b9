/* adapter_file.h: internal interface of adapter_file.c - PEFT's module-selection fields of adapter_config.json. */
#ifndef OFTAWQ_ADAPTER_FILE_H
#define OFTAWQ_ADAPTER_FILE_H

#include "common/internal.h"

/* A field PEFT takes as a list of names or as one string (a regular expression). */
typedef struct oftawq__name_rule {
  int present;               /* 0: absent or null */
  char *regex;               /* a string (full-match regular expression), or NULL */
  char **names;              /* a list (possibly empty) */
  size_t n_names;
} oftawq__name_rule;

/* target_modules, exclude_modules, modules_to_save, layers_to_transform, layers_pattern and bias, as written. */
typedef struct oftawq__targeting {
  oftawq__name_rule target_modules;
  oftawq__name_rule exclude_modules;
  char **modules_to_save;
  size_t n_modules_to_save;
  int layers_present;        /* layers_to_transform given (not null) */
  int layers_is_int;         /* as one int rather than a list */
  int *layers;
  size_t n_layers;
  char **layers_patterns;    /* layers_pattern: one string or a list; none when absent */
  size_t n_layers_patterns;
  int layers_pattern_is_string;
  char *bias;                /* "none" unless given */
} oftawq__targeting;

/* The adapter's selection fields (owned by the adapter). */
const oftawq__targeting *oftawq__adapter_targeting(const oftawq_adapter_file *adapter);

#endif /* OFTAWQ_ADAPTER_FILE_H */
