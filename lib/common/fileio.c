/* fileio.c: file helpers shared by the caches and the file formats: whole-file atomic writes. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"

int oftawq__write_file_atomic(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                              const void *c, size_t clen)
{
  static const char tmp_tag[] = ".tmp-";
  size_t n = strlen(path) + sizeof tmp_tag + 32;
  char *tmp = malloc(n);
  FILE *f;
  int ok;
  if (!tmp) return -1;
  /* pid + address of a local: unique enough between threads and processes. */
  snprintf(tmp, n, "%s%s%ld-%lx", path, tmp_tag, (long)getpid(), (unsigned long)(uintptr_t)&f);
  f = fopen(tmp, "wb");
  if (!f) {
    free(tmp);
    return -1;
  }
  ok = fwrite(a, 1, alen, f) == alen && fwrite(b, 1, blen, f) == blen && (clen == 0 || fwrite(c, 1, clen, f) == clen);
  ok = (fclose(f) == 0) && ok;
  if (ok) ok = rename(tmp, path) == 0;
  if (!ok) remove(tmp);
  free(tmp);
  return ok ? 0 : -1;
}
