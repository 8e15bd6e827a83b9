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

oftawq_status oftawq__json_text_check(const char *text, size_t n, char *why, size_t cap)
{
  const unsigned char *h = (const unsigned char *)text;
  size_t i, step;
  uint32_t code_point;
  int in_string = 0;
  for (i = 0; i < n; i += step) {
    unsigned char c = h[i];
    step = 1;
    if (c < 0x20 && (in_string || (c != '\t' && c != '\n' && c != '\r')))
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "the JSON has the control byte 0x%02x at offset %zu%s", c, i,
                         in_string ? ", inside a string" : "");
    if (c >= 0x80 && !(step = oftawq__utf8_decode(h + i, n - i, &code_point)))
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "the JSON is not valid UTF-8 (offset %zu)", i);
    if (!in_string) {
      in_string = c == '"';
    } else if (c == '"') {
      in_string = 0;
    } else if (c == '\\' && i + 1 < n) {
      if (h[i + 1] == 'u' && i + 5 < n && !memcmp(h + i + 2, "0000", 4))
        return oftawq__why(why, cap, OFTAWQ_E_FORMAT,
                           "a string holds a NUL character (\\u0000) at offset %zu; names cannot contain one", i);
      step = 2; /* the escaped character: an escaped quote does not end the string */
    }
  }
  return OFTAWQ_OK;
}

/* Reads and parses a JSON file: OFTAWQ_E_NOT_FOUND if it does not exist. */
oftawq_status oftawq__json_read(const char *path, cJSON **out, char *why, size_t cap)
{
  char *text = NULL, detail[512];
  size_t n = 0;
  oftawq_status status;
  *out = NULL;
  if ((status = oftawq__file_read(path, 0, OFTAWQ__MAX_JSON_FILE, &text, &n, why, cap)) < 0) return status;
  if ((status = oftawq__json_text_check(text, n, detail, sizeof detail)) < 0) {
    free(text);
    return oftawq__why(why, cap, status, "%s: %s", path, detail);
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
