/* safetensors.c: the safetensors format - a mapped, fully checked reader and an atomic writer. */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/fileio.h"
#include "files/safetensors.h"

/* Header sizes beyond this are not a safetensors file we should parse (the format's own limit is 100 MB). */
#define MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* JSON numbers are doubles: integers above 2^53 are not exact. */
#define MAX_EXACT_INT 9007199254740992.0

static const struct {
  const char *name;
  oftawq_tensor_dtype dtype;
  size_t bytes;
} dtypes[] = {
  {"F64", OFTAWQ_T_F64, 8}, {"F32", OFTAWQ_T_F32, 4}, {"F16", OFTAWQ_T_F16, 2}, {"BF16", OFTAWQ_T_BF16, 2},
  {"I64", OFTAWQ_T_I64, 8}, {"I32", OFTAWQ_T_I32, 4}, {"I16", OFTAWQ_T_I16, 2}, {"I8", OFTAWQ_T_I8, 1},
  {"U64", OFTAWQ_T_U64, 8}, {"U32", OFTAWQ_T_U32, 4}, {"U16", OFTAWQ_T_U16, 2}, {"U8", OFTAWQ_T_U8, 1},
  {"BOOL", OFTAWQ_T_BOOL, 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

struct oftawq_safetensors {
  void *map;                 /* the whole file (mmap), or NULL for a parsed memory buffer */
  size_t map_len;
  oftawq_tensor *tensors;
  size_t n;
  char **names;              /* owned copies; tensors[i].name points here */
  char **meta;               /* key, value, key, value... */
  size_t n_meta;
};

void oftawq_tensor_init(oftawq_tensor *t)
{
  if (!t) return;
  memset(t, 0, sizeof *t);
  t->size = sizeof *t;
}

const char *oftawq_tensor_dtype_name(oftawq_tensor_dtype dtype)
{
  size_t i;
  for (i = 0; i < N_DTYPES; i++)
    if (dtypes[i].dtype == dtype) return dtypes[i].name;
  return "?";
}

size_t oftawq__dtype_bytes(oftawq_tensor_dtype dtype)
{
  size_t i;
  for (i = 0; i < N_DTYPES; i++)
    if (dtypes[i].dtype == dtype) return dtypes[i].bytes;
  return 0;
}

void oftawq_safetensors_close(oftawq_safetensors *f)
{
  size_t i;
  if (!f) return;
  for (i = 0; i < f->n; i++) free(f->names[i]);
  for (i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
  free(f->names);
  free(f->meta);
  free(f->tensors);
  if (f->map) munmap(f->map, f->map_len);
  free(f);
}

typedef struct range {
  uint64_t begin, end;
  size_t index;
} range;

static int cmp_range(const void *a, const void *b)
{
  const range *x = a, *y = b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

/* A JSON number that is an exact non-negative integer. */
static int json_uint(const cJSON *j, uint64_t *out)
{
  double d;
  if (!cJSON_IsNumber(j)) return 0;
  d = j->valuedouble;
  if (!(d >= 0) || d > MAX_EXACT_INT || floor(d) != d) return 0;
  *out = (uint64_t)d;
  return 1;
}

static oftawq_status parse_tensor(oftawq_safetensors *f, const cJSON *e, const unsigned char *data, uint64_t data_len,
                                  range *r, char *why, size_t cap)
{
  oftawq_tensor *t = &f->tensors[f->n];
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *shape = cJSON_GetObjectItemCaseSensitive(e, "shape"),
              *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), *d;
  uint64_t begin, end, count = 1, esize = 0, v;
  size_t i;
  int k = 0;
  const char *name = e->string;

  oftawq_tensor_init(t);
  if (!cJSON_IsObject(e)) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': entry is not an object", name);
  if (!cJSON_IsString(dt)) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': no dtype", name);
  for (i = 0; i < N_DTYPES; i++)
    if (!strcmp(dt->valuestring, dtypes[i].name)) {
      t->dtype = dtypes[i].dtype;
      esize = dtypes[i].bytes;
    }
  if (!esize) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': unknown dtype '%s'", name, dt->valuestring);
  if (!cJSON_IsArray(shape)) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': no shape", name);
  cJSON_ArrayForEach(d, shape)
  {
    if (k == OFTAWQ_MAX_DIMS)
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': more than %d dimensions", name, OFTAWQ_MAX_DIMS);
    if (!json_uint(d, &v))
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': dimension %d is not a non-negative integer", name,
                         k);
    if (v != 0 && count > UINT64_MAX / v)
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': the shape's element count overflows", name);
    count *= v;
    t->shape[k++] = (int64_t)v;
  }
  t->ndim = k;
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(cJSON_GetArrayItem(offs, 0), &begin) ||
      !json_uint(cJSON_GetArrayItem(offs, 1), &end))
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': data_offsets must be two non-negative integers", name);
  if (end < begin)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu] are reversed", name,
                       (unsigned long long)begin, (unsigned long long)end);
  if (end > data_len)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT,
                       "tensor '%s': data_offsets [%llu, %llu] run past the data section (%llu bytes)", name,
                       (unsigned long long)begin, (unsigned long long)end, (unsigned long long)data_len);
  if (count > UINT64_MAX / esize || count * esize != end - begin)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT,
                       "tensor '%s': %s x %llu elements need %llu bytes, data_offsets give %llu", name,
                       dt->valuestring, (unsigned long long)count,
                       count > UINT64_MAX / esize ? 0ull : (unsigned long long)(count * esize),
                       (unsigned long long)(end - begin));
  if (!(f->names[f->n] = oftawq__strdup(name))) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  t->name = f->names[f->n];
  t->data = data + begin;
  t->nbytes = (size_t)(end - begin);
  r->begin = begin;
  r->end = end;
  r->index = f->n;
  f->n++;
  return OFTAWQ_OK;
}

static oftawq_status parse_metadata(oftawq_safetensors *f, const cJSON *m, char *why, size_t cap)
{
  const cJSON *e;
  size_t n = 0;
  if (!cJSON_IsObject(m)) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "__metadata__ is not an object");
  cJSON_ArrayForEach(e, m) n++;
  f->meta = calloc(2 * n + 1, sizeof *f->meta);
  if (!f->meta) return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  cJSON_ArrayForEach(e, m)
  {
    if (!cJSON_IsString(e))
      return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "__metadata__ value of '%s' is not a string", e->string);
    f->meta[2 * f->n_meta] = oftawq__strdup(e->string);
    f->meta[2 * f->n_meta + 1] = oftawq__strdup(e->valuestring);
    f->n_meta++;
    if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1])
      return oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  return OFTAWQ_OK;
}

oftawq_status oftawq__safetensors_parse(const unsigned char *buf, size_t len, oftawq_safetensors **out, char *why,
                                        size_t cap)
{
  oftawq_safetensors *f = NULL;
  uint64_t hlen = 0;
  cJSON *root = NULL;
  const cJSON *e;
  range *ranges = NULL;
  size_t n = 0, i;
  oftawq_status status = OFTAWQ_OK;
  int k;

  *out = NULL;
  if (len < 8) return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "file of %zu bytes is shorter than the 8-byte header size", len);
  for (k = 7; k >= 0; k--) hlen = hlen << 8 | buf[k];
  if (hlen > len - 8)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "header size %llu exceeds the %zu bytes after it",
                       (unsigned long long)hlen, len - 8);
  if (hlen > MAX_HEADER)
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "header size %llu exceeds %llu bytes", (unsigned long long)hlen,
                       (unsigned long long)MAX_HEADER);
  root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
  if (!root || !cJSON_IsObject(root)) {
    status = oftawq__why(why, cap, OFTAWQ_E_FORMAT, "the header is not a JSON object");
    goto fail;
  }
  if (!(f = calloc(1, sizeof *f))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  cJSON_ArrayForEach(e, root) n++;
  f->tensors = calloc(n + 1, sizeof *f->tensors);
  f->names = calloc(n + 1, sizeof *f->names);
  ranges = calloc(n + 1, sizeof *ranges);
  if (!f->tensors || !f->names || !ranges) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  cJSON_ArrayForEach(e, root)
  {
    const cJSON *prev;
    for (prev = root->child; prev != e; prev = prev->next) /* JSON allows repeated keys; the format does not */
      if (!strcmp(prev->string, e->string)) {
        status = oftawq__why(why, cap, OFTAWQ_E_FORMAT, "the header names '%s' twice", e->string);
        goto fail;
      }
    if (!strcmp(e->string, "__metadata__"))
      status = parse_metadata(f, e, why, cap);
    else
      status = parse_tensor(f, e, buf + 8 + hlen, len - 8 - hlen, &ranges[f->n], why, cap);
    if (status < 0) goto fail;
  }
  qsort(ranges, f->n, sizeof *ranges, cmp_range);
  for (i = 1, k = 0; i < f->n; i++) { /* k: the range reaching furthest so far */
    if (ranges[i].end > ranges[i].begin && ranges[i].begin < ranges[k].end) {
      status = oftawq__why(why, cap, OFTAWQ_E_FORMAT, "tensors '%s' and '%s' overlap in the data section",
                           f->tensors[ranges[k].index].name, f->tensors[ranges[i].index].name);
      goto fail;
    }
    if (ranges[i].end > ranges[k].end) k = (int)i;
  }
  cJSON_Delete(root);
  free(ranges);
  *out = f;
  return OFTAWQ_OK;
fail:
  cJSON_Delete(root);
  free(ranges);
  oftawq_safetensors_close(f);
  return status;
}

oftawq_status oftawq_safetensors_open(const char *path, oftawq_safetensors **out, char *why, size_t cap)
{
  int fd;
  uint64_t size;
  void *map;
  oftawq_status status;
  char detail[512];
  if (!out) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL output");
  *out = NULL;
  if (!path) return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL path");
  if ((status = oftawq__file_open(path, 0, UINT64_MAX, &fd, &size, why, cap)) < 0) return status;
  if (size == 0) {
    close(fd);
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: empty file", path);
  }
  map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return oftawq__why(why, cap, OFTAWQ_E_IO, "%s: cannot map: %s", path, strerror(errno));
  status = oftawq__safetensors_parse(map, (size_t)size, out, detail, sizeof detail);
  if (status < 0) {
    munmap(map, (size_t)size);
    return oftawq__why(why, cap, status, "%s: %s", path, detail);
  }
  (*out)->map = map;
  (*out)->map_len = (size_t)size;
  return OFTAWQ_OK;
}

size_t oftawq_safetensors_count(const oftawq_safetensors *f) { return f ? f->n : 0; }

oftawq_status oftawq_safetensors_get(const oftawq_safetensors *f, size_t index, oftawq_tensor *t)
{
  if (!f || !t || t->size < sizeof *t || index >= f->n) return OFTAWQ_E_INVALID_ARGUMENT;
  *t = f->tensors[index];
  return OFTAWQ_OK;
}

oftawq_status oftawq_safetensors_find(const oftawq_safetensors *f, const char *name, oftawq_tensor *t)
{
  size_t i;
  if (!f || !name || !t || t->size < sizeof *t) return OFTAWQ_E_INVALID_ARGUMENT;
  for (i = 0; i < f->n; i++)
    if (!strcmp(f->tensors[i].name, name)) {
      *t = f->tensors[i];
      return OFTAWQ_OK;
    }
  return OFTAWQ_E_NOT_FOUND;
}

const char *oftawq_safetensors_metadata(const oftawq_safetensors *f, const char *key)
{
  size_t i;
  for (i = 0; f && key && i < f->n_meta; i++)
    if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
  return NULL;
}

oftawq_status oftawq_safetensors_write(const char *path, const oftawq_tensor *tensors, size_t n, char *why,
                                       size_t cap)
{
  cJSON *root = cJSON_CreateObject(), *meta;
  char *header = NULL, *padded = NULL;
  unsigned char *data = NULL;
  size_t total = 0, i, hlen, plen;
  unsigned char lenbuf[8];
  oftawq_status status = OFTAWQ_OK;
  int k;

  if (!path || (n && !tensors)) {
    cJSON_Delete(root);
    return oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL path or tensors");
  }
  if (!root || !(meta = cJSON_AddObjectToObject(root, "__metadata__")) || !cJSON_AddStringToObject(meta, "format", "pt")) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (i = 0; i < n; i++) {
    const oftawq_tensor *t = &tensors[i];
    size_t es = oftawq__dtype_bytes(t->dtype), count = 1;
    cJSON *e, *shape, *offs;
    for (k = 0; k < t->ndim; k++)
      if (t->shape[k] < 0 || !oftawq__mul_size(count, (size_t)t->shape[k], &count)) break;
    if (!t->name || !es || t->ndim < 0 || t->ndim > OFTAWQ_MAX_DIMS || k < t->ndim ||
        !oftawq__mul_size(count, es, &count) || count != t->nbytes || (t->nbytes && !t->data)) {
      status = oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "tensor %zu ('%s'): dtype, shape and bytes disagree",
                           i, t->name ? t->name : "(null)");
      goto done;
    }
    if (!(e = cJSON_AddObjectToObject(root, t->name)) || !cJSON_AddStringToObject(e, "dtype", oftawq_tensor_dtype_name(t->dtype)) ||
        !(shape = cJSON_AddArrayToObject(e, "shape")) || !(offs = cJSON_AddArrayToObject(e, "data_offsets"))) {
      status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    for (k = 0; k < t->ndim; k++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[k]));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)total));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(total + t->nbytes)));
    total += t->nbytes;
  }
  if (!(header = cJSON_PrintUnformatted(root))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  hlen = strlen(header);
  plen = (hlen + 7) / 8 * 8; /* the data section starts 8-byte aligned; pad with spaces */
  padded = malloc(plen);
  data = malloc(total ? total : 1);
  if (!padded || !data) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  memcpy(padded, header, hlen);
  memset(padded + hlen, ' ', plen - hlen);
  for (i = 0, total = 0; i < n; i++) {
    if (tensors[i].nbytes) memcpy(data + total, tensors[i].data, tensors[i].nbytes);
    total += tensors[i].nbytes;
  }
  for (k = 0; k < 8; k++) lenbuf[k] = (unsigned char)((uint64_t)plen >> (8 * k));
  if (oftawq__write_file_atomic(path, lenbuf, 8, padded, plen, data, total) != 0)
    status = oftawq__why(why, cap, OFTAWQ_E_IO, "cannot write %s: %s", path, strerror(errno));
done:
  cJSON_Delete(root);
  free(header);
  free(padded);
  free(data);
  return status;
}
