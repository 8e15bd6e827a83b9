/* target.h: internal interface of target.c - PEFT's rules for which modules an adapter targets. */
#ifndef OFTAWQ_TARGET_H
#define OFTAWQ_TARGET_H

#include "common/internal.h"
#include "files/adapter_file.h"

/* What PEFT's check_target_module_exists says of one module name. */
typedef enum oftawq__match {
  OFTAWQ__NOT_TARGETED = 0,
  OFTAWQ__TARGETED = 1,
  OFTAWQ__EXCLUDED = 2
} oftawq__match;

typedef struct oftawq__matcher oftawq__matcher;

/* Compiles an adapter's rules. target_modules null takes PEFT's default for `model_type` (config.json; may be
 * NULL), as PEFT does; "all-linear" and unsupported regular expressions are OFTAWQ_E_UNSUPPORTED, with why. */
oftawq_status oftawq__matcher_create(const oftawq__targeting *targeting, const char *model_type, oftawq__matcher **out,
                                     char *why, size_t why_capacity);
void oftawq__matcher_free(oftawq__matcher *matcher);

/* PEFT 0.18's check_target_module_exists for the module `key`: exclude_modules (full-match string, or a list
 * by name or "." suffix), modules_to_save, then target_modules (full-match string; a list by name, or by "."
 * suffix filtered by layers_to_transform / layers_pattern). Returns the match, or a negative status where PEFT
 * itself fails (a layers_pattern whose group 1 is not a layer index) or out of memory, with why. */
int oftawq__matcher_check(const oftawq__matcher *matcher, const char *key, char *why, size_t why_capacity);

/* target_modules as PEFT prints them in its "not found" error ("{'q_proj', 'v_proj'}" or the string). */
void oftawq__matcher_targets_text(const oftawq__matcher *matcher, char *buf, size_t capacity);

#endif /* OFTAWQ_TARGET_H */
