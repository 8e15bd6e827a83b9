/* json.h: internal interface of json.c - JSON files and typed fields, shared by the folder readers. */
#ifndef OFTAWQ_JSON_H
#define OFTAWQ_JSON_H

#include <cjson/cJSON.h>

#include "common/internal.h"

/* dir + "/" + name, malloc'd; NULL when out of memory. */
char *oftawq__path_join(const char *dir, const char *name);
/* Reads and parses a JSON object file (only a regular file, see oftawq__file_read): OFTAWQ_E_NOT_FOUND if it does
 * not exist, OFTAWQ_E_IO with the cause when it cannot be read. */
oftawq_status oftawq__json_read(const char *path, cJSON **out, char *why, size_t cap);
const cJSON *oftawq__json_item(const cJSON *o, const char *key);
/* What cJSON lets through but JSON and our C strings do not, in one pass: control bytes (raw NULs, NUL padding;
 * tab, CR and LF only between tokens), invalid UTF-8, and NUL characters in strings - cJSON would cut a string
 * at \u0000, so "model.safetensors\u0000junk" would read as "model.safetensors". OFTAWQ_E_FORMAT with the
 * offset; oftawq__json_read and the safetensors header use it. */
oftawq_status oftawq__json_text_check(const char *text, size_t len, char *why, size_t why_capacity);
/* Typed fields: an absent (or null) key keeps *out and succeeds; a present one of the wrong type returns 0. */
int oftawq__json_int(const cJSON *o, const char *key, int *out);
int oftawq__json_bool(const cJSON *o, const char *key, int *out);
int oftawq__json_double(const cJSON *o, const char *key, double *out);

#endif /* OFTAWQ_JSON_H */
