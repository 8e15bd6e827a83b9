/* util.c: small helpers shared by the library files: checked size arithmetic, strings, hashing. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"

int oftawq__mul_size(size_t a, size_t b, size_t *out)
{
  if (a != 0 && b > SIZE_MAX / a) return 0;
  *out = a * b;
  return 1;
}

char *oftawq__strdup(const char *s)
{
  size_t n;
  char *d;
  if (!s) return NULL;
  n = strlen(s) + 1;
  d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void oftawq__strings_free(char **strings, size_t n)
{
  size_t i;
  if (!strings) return;
  for (i = 0; i < n; i++) free(strings[i]);
  free(strings);
}

uint64_t oftawq__fnv1a(uint64_t h, const void *data, size_t len)
{
  const unsigned char *p = data;
  size_t i;
  for (i = 0; i < len; i++) {
    h ^= p[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

/* vsnprintf into a fresh heap string; NULL when out of memory. */
char *oftawq__vformat(const char *fmt, va_list ap)
{
  va_list copy;
  int n;
  char *s;
  va_copy(copy, ap);
  n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) return NULL;
  s = malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}


size_t oftawq__sort_indices(size_t *idx, size_t *tmp, size_t n, int (*cmp)(const void *user, size_t a, size_t b),
                            const void *user)
{
  size_t width, comparisons = 0;
  size_t *from = idx, *to = tmp;
  /* bottom-up merge sort: stable, and never more than n * ceil(log2 n) comparisons, whatever the input */
  for (width = 1; width < n; width *= 2) {
    size_t lo;
    size_t *swap;
    for (lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t a = lo, b = mid, k = lo;
      while (a < mid && b < hi) {
        comparisons++;
        to[k++] = cmp(user, from[b], from[a]) < 0 ? from[b++] : from[a++];
      }
      while (a < mid) to[k++] = from[a++];
      while (b < hi) to[k++] = from[b++];
    }
    swap = from;
    from = to;
    to = swap;
  }
  if (from != idx) memcpy(idx, from, n * sizeof *idx);
  return comparisons;
}

size_t oftawq__utf8_decode(const unsigned char *p, size_t left, uint32_t *code_point)
{
  size_t n, i;
  uint32_t c;
  if (left == 0) return 0;
  if (p[0] < 0x80) {
    *code_point = p[0];
    return 1;
  }
  if (p[0] >= 0xc2 && p[0] <= 0xdf) n = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef) n = 3;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4) n = 4;
  else return 0;
  if (n > left) return 0;
  c = p[0] & (0x7fu >> n);
  for (i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    c = c << 6 | (p[i] & 0x3fu);
  }
  if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (n == 4 && (c < 0x10000 || c > 0x10ffff))) return 0;
  *code_point = c;
  return n;
}
