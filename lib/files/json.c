/* json.c: JSON files of model and adapter folders - reading, typed fields with PEFT's "absent keeps the default". */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "files/json.h"

char *oftawq__path_join(const char *dir, const char *name)
{
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

int oftawq__json_has_nul(const char *text, size_t len)
{
  size_t i;
  int in_string = 0;
  if (memchr(text, '\0', len)) return 1;
  for (i = 0; i < len; i++) {
    if (text[i] == '"') {
      in_string = !in_string;
    } else if (in_string && text[i] == '\\' && i + 1 < len) {
      if (text[i + 1] == 'u' && i + 5 < len && !memcmp(text + i + 2, "0000", 4)) return 1;
      i++; /* the escaped character */
    }
  }
  return 0;
}

/* Reads and parses a JSON file: OFTAWQ_E_NOT_FOUND if it does not exist. */
oftawq_status oftawq__json_read(const char *path, cJSON **out, char *why, size_t cap)
{
  char *text = NULL;
  size_t n = 0;
  oftawq_status status;
  *out = NULL;
  if ((status = oftawq__file_read(path, 0, OFTAWQ__MAX_JSON_FILE, &text, &n, why, cap)) < 0) return status;
  if (oftawq__json_has_nul(text, n)) {
    free(text);
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: a string holds a NUL character (\\u0000)", path);
  }
  *out = cJSON_ParseWithLength(text, n);
  free(text);
  if (!*out) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: not valid JSON", path);
  if (!cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    *out = NULL;
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: the JSON is not an object", path);
  }
  return OFTAWQ_OK;
}

const cJSON *oftawq__json_item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* Integer field: absent keeps *out; present must be an integral number. */
int oftawq__json_int(const cJSON *o, const char *key, int *out)
{
  const cJSON *j = oftawq__json_item(o, key);
  if (!j || cJSON_IsNull(j)) return 1;
  if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || fabs(j->valuedouble) > 1e9) return 0;
  *out = (int)j->valuedouble;
  return 1;
}

int oftawq__json_bool(const cJSON *o, const char *key, int *out)
{
  const cJSON *j = oftawq__json_item(o, key);
  if (!j || cJSON_IsNull(j)) return 1;
  if (!cJSON_IsBool(j)) return 0;
  *out = cJSON_IsTrue(j);
  return 1;
}

int oftawq__json_double(const cJSON *o, const char *key, double *out)
{
  const cJSON *j = oftawq__json_item(o, key);
  if (!j || cJSON_IsNull(j)) return 1;
  if (!cJSON_IsNumber(j)) return 0;
  *out = j->valuedouble;
  return 1;
}
