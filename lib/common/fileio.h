/* fileio.h: internal interface of fileio.c - file helpers shared by the caches and the file formats. */
#ifndef OFTAWQ_FILEIO_H
#define OFTAWQ_FILEIO_H

#include <stddef.h>

/* Writes a whole file atomically: `path`.tmp-<unique> then rename. 0 on success. */
int oftawq__write_file_atomic(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                              const void *c, size_t clen);

#endif /* OFTAWQ_FILEIO_H */
