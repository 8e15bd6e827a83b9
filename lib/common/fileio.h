/* fileio.h: internal interface of fileio.c - inputs opened only if regular, atomic writes. */
#ifndef OFTAWQ_FILEIO_H
#define OFTAWQ_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "common/internal.h"

/* Flags of oftawq__file_open / oftawq__file_read. */
#define OFTAWQ__FILE_NOFOLLOW 1 /* refuse a symbolic link (our own cache files: one there is foreign) */

/* Size bounds of the inputs read whole (mapped files have none). */
#define OFTAWQ__MAX_JSON_FILE ((uint64_t)64 << 20)   /* config.json, index, adapter_config.json */
#define OFTAWQ__MAX_TEXT_FILE ((uint64_t)16 << 20)   /* kernel sources, tuning databases */

/* Opens an input for reading, only if it is a regular file of at most `max_size` bytes: a FIFO, a
 * device, a socket or a folder is refused without blocking or reading. On success *fd (caller closes)
 * and *size. Errors name the path and the real cause (errno's text, or what the file is instead):
 * OFTAWQ_E_NOT_FOUND when it does not exist, OFTAWQ_E_FORMAT when too large, OFTAWQ_E_IO otherwise. */
oftawq_status oftawq__file_open(const char *path, int flags, uint64_t max_size, int *fd, uint64_t *size, char *why,
                                size_t why_capacity);

/* The same, then the whole file into a NUL-terminated heap buffer (*data, caller frees; *length without the NUL). */
oftawq_status oftawq__file_read(const char *path, int flags, uint64_t max_size, char **data, size_t *length,
                                char *why, size_t why_capacity);

/* Writes a whole file atomically: `path`.tmp-<unique> then rename. 0 on success. */
int oftawq__write_file_atomic(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                              const void *c, size_t clen);

#endif /* OFTAWQ_FILEIO_H */
