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
/* Whether a JSON text holds a NUL in a string (escaped as \u0000, or raw): cJSON would cut the string there,
 * so "model.safetensors\u0000junk" would read as "model.safetensors". oftawq__json_read refuses such files. */
int oftawq__json_has_nul(const char *text, size_t len);
/* Typed fields: an absent (or null) key keeps *out and succeeds; a present one of the wrong type returns 0. */
int oftawq__json_int(const cJSON *o, const char *key, int *out);
int oftawq__json_bool(const cJSON *o, const char *key, int *out);
int oftawq__json_double(const cJSON *o, const char *key, double *out);

#endif /* OFTAWQ_JSON_H */
