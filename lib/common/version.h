/* version.h: internal interface of version.c - parsed PEP 440 versions. */
#ifndef OFTAWQ_VERSION_INTERNAL_H
#define OFTAWQ_VERSION_INTERNAL_H

#include <stddef.h>

#include "oftawq.h"

#define OFTAWQ__VERSION_MAX_RELEASE 32

/* Digits without leading zeros (zero = length 0), pointing into the parsed text. */
typedef struct oftawq__vnum {
  const char *digits;
  size_t len;
} oftawq__vnum;

typedef struct oftawq__version {
  oftawq__vnum epoch;
  oftawq__vnum release[OFTAWQ__VERSION_MAX_RELEASE];
  int nrelease;
  char pre_kind;          /* 0 none, 'a' alpha, 'b' beta, 'c' rc */
  oftawq__vnum pre;
  int has_post;
  oftawq__vnum post;
  int has_dev;
  oftawq__vnum dev;
  const char *local;      /* without the '+'; local_len 0 = none */
  size_t local_len;
} oftawq__version;

/* 1 when `text` is a valid PEP 440 version (the result points into text), else 0. */
int oftawq__version_parse(const char *text, oftawq__version *v);
/* -1, 0 or 1, as packaging.version.Version orders them. */
int oftawq__version_cmp(const oftawq__version *a, const oftawq__version *b);

/* PEFT 0.18.0 changed the last Cayley-Neumann term from 2Q^(n-1) to Q^(n-1) (SPEC 3.3). */
#define OFTAWQ__NEUMANN_FORMULA_CHANGED_IN "0.18.0"

/* Whether an adapter saved by PEFT `peft_version` (anything from '@' on is dropped, as PEFT writes e.g.
 * "0.18.2.dev0@UNKNOWN") uses the pre-0.18 Neumann formula: *legacy = 1 or 0. Returns 0 when the
 * version is not PEP 440 (*legacy untouched), -1 when out of memory, 1 otherwise. */
int oftawq__peft_legacy_neumann(const char *peft_version, int *legacy);

#endif /* OFTAWQ_VERSION_INTERNAL_H */
