/* cache.h: internal interface of cache.c - the cache folder and the persistent program binary cache. */
#ifndef OFTAWQ_CACHE_H
#define OFTAWQ_CACHE_H

#include "runtime/context.h"

/* Creates the folder (and its parents) if needed and checks it can be written. */
oftawq_status oftawq__cache_dir_prepare(const char *dir);

/* Looks up a program binary by its key. Returns 1 and a malloc'd copy when a
 * valid entry exists; 0 when there is none or it is corrupt, truncated or
 * belongs to another key (counted in ctx->stats.binaries_rejected). */
int oftawq__bincache_load(oftawq_context *ctx, const char *key, unsigned char **binary, size_t *length);

/* Counts an entry that turned out unusable after loading; the first one per context is a warning. */
void oftawq__bincache_reject(oftawq_context *ctx, const char *problem);

/* Stores a program binary under its key (temp file + rename). Failures are
 * not errors: the context warns once and caches in memory from then on. */
void oftawq__bincache_store(oftawq_context *ctx, const char *key, const unsigned char *binary, size_t length);

#endif /* OFTAWQ_CACHE_H */
