/* cache.c: the cache folder (default location, creation, summary) and the persistent program binary cache. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "runtime/cache.h"

/* Entry layout: header, key bytes, binary bytes. All integers little-endian. */
#define BIN_MAGIC "OFTAWQB1"
#define BIN_MAGIC_LEN 8
#define BIN_FORMAT 1u
#define BIN_HEADER_LEN (BIN_MAGIC_LEN + 4 + 4 + 8 + 8)
#define BIN_PREFIX "prog-"
#define BIN_SUFFIX ".bin"
/* A cached binary larger than this is not ours to trust. */
#define BIN_MAX_LEN ((uint64_t)1 << 30)

void oftawq_cache_summary_init(oftawq_cache_summary *summary)
{
  if (!summary) return;
  memset(summary, 0, sizeof *summary);
  summary->size = sizeof *summary;
}

oftawq_status oftawq_cache_dir_default(char *buf, size_t capacity)
{
  const char *env = getenv("OFTAWQ_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  int n;
  if (!buf || capacity == 0) return OFTAWQ_E_INVALID_ARGUMENT;
  buf[0] = '\0';
  if (env && *env)
    n = snprintf(buf, capacity, "%s", env);
  else if (xdg && *xdg)
    n = snprintf(buf, capacity, "%s/oftawq", xdg);
  else if (home && *home)
    n = snprintf(buf, capacity, "%s/.cache/oftawq", home);
  else
    return OFTAWQ_E_NOT_FOUND;
  if (n < 0 || (size_t)n >= capacity) {
    buf[0] = '\0';
    return OFTAWQ_E_INVALID_ARGUMENT;
  }
  return OFTAWQ_OK;
}

oftawq_status oftawq__cache_dir_prepare(const char *dir)
{
  char *path = oftawq__strdup(dir);
  char *p;
  struct stat st;
  oftawq_status status = OFTAWQ_OK;
  if (!path) return OFTAWQ_E_OUT_OF_MEMORY;
  for (p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) status = OFTAWQ_E_IO;
    *p = '/';
  }
  if (mkdir(path, 0755) != 0 && errno != EEXIST) status = OFTAWQ_E_IO;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || access(path, W_OK | X_OK) != 0)
    status = OFTAWQ_E_IO;
  else
    status = OFTAWQ_OK;
  free(path);
  return status;
}

static int is_entry_name(const char *name, const char *prefix, const char *suffix)
{
  size_t n = strlen(name), lp = strlen(prefix), ls = strlen(suffix);
  return n > lp + ls && !strncmp(name, prefix, lp) && !strcmp(name + n - ls, suffix);
}

static void count_entry(void *user, const char *device, const char *entry)
{
  (void)device;
  (void)entry;
  ++*(uint64_t *)user;
}

oftawq_status oftawq_cache_summarize(const char *dir, oftawq_cache_summary *summary)
{
  DIR *d;
  struct dirent *e;
  if (!dir || !summary || summary->size < sizeof *summary) return OFTAWQ_E_INVALID_ARGUMENT;
  oftawq_cache_summary_init(summary);
  d = opendir(dir);
  if (!d) return errno == ENOENT ? OFTAWQ_OK : OFTAWQ_E_IO;
  while ((e = readdir(d)) != NULL) {
    char path[4096];
    struct stat st;
    if (!is_entry_name(e->d_name, BIN_PREFIX, BIN_SUFFIX)) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    summary->program_entries++;
    summary->program_bytes += (uint64_t)st.st_size;
  }
  closedir(d);
  return oftawq_cache_tuning(dir, count_entry, &summary->tuning_entries);
}

static void put_u32(unsigned char *p, uint32_t v)
{
  int i;
  for (i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
  int i;
  for (i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static char *entry_path(const char *dir, const char *key)
{
  size_t n = strlen(dir) + strlen(BIN_PREFIX) + 16 + strlen(BIN_SUFFIX) + 2;
  char *path = malloc(n);
  if (path)
    snprintf(path, n, "%s/" BIN_PREFIX "%016llx" BIN_SUFFIX, dir,
             (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, key, strlen(key)));
  return path;
}

static uint64_t entry_checksum(const char *key, size_t key_len, const unsigned char *bin, size_t len)
{
  return oftawq__fnv1a(oftawq__fnv1a(OFTAWQ__FNV_OFFSET, key, key_len), bin, len);
}

int oftawq__bincache_load(oftawq_context *ctx, const char *key, unsigned char **binary, size_t *length)
{
  char *path, *entry = NULL, why[512];
  const unsigned char *e;
  size_t key_len = strlen(key), file_len = 0;
  uint64_t len = 0;
  oftawq_status status;
  const char *problem = NULL;

  *binary = NULL;
  *length = 0;
  if (!ctx->cache_dir || !(path = entry_path(ctx->cache_dir, key))) return 0;
  /* Our entries are plain files written by rename: a link, a FIFO or a device there is foreign. */
  status = oftawq__file_read(path, OFTAWQ__FILE_NOFOLLOW, BIN_HEADER_LEN + key_len + BIN_MAX_LEN, &entry, &file_len,
                             why, sizeof why);
  free(path);
  if (status == OFTAWQ_E_NOT_FOUND) return 0;
  e = (const unsigned char *)entry;
  if (status < 0)
    problem = why;
  else if (file_len < BIN_HEADER_LEN || memcmp(e, BIN_MAGIC, BIN_MAGIC_LEN) != 0 || get_u32(e + 8) != BIN_FORMAT ||
           get_u32(e + 12) != key_len || (len = get_u64(e + 16)) == 0 || len > BIN_MAX_LEN ||
           (uint64_t)file_len != BIN_HEADER_LEN + key_len + len)
    problem = "corrupt or truncated";
  else if (memcmp(e + BIN_HEADER_LEN, key, key_len) != 0)
    problem = "made for another program";
  else if (entry_checksum(key, key_len, e + BIN_HEADER_LEN + key_len, (size_t)len) != get_u64(e + 24))
    problem = "checksum mismatch";
  if (problem) {
    free(entry);
    oftawq__bincache_reject(ctx, problem);
    return 0;
  }
  /* the binary moves to the front of the buffer it was read into */
  memmove(entry, entry + BIN_HEADER_LEN + key_len, (size_t)len);
  *binary = (unsigned char *)entry;
  *length = (size_t)len;
  return 1;
}

void oftawq__bincache_reject(oftawq_context *ctx, const char *problem)
{
  if (ctx->stats.binaries_rejected++ == 0) /* the first one says why; the stats count them all */
    oftawq__log(ctx, OFTAWQ_LOG_WARNING, "ignoring a program cache entry (%s); rebuilding it from source", problem);
}

void oftawq__bincache_store(oftawq_context *ctx, const char *key, const unsigned char *binary, size_t length)
{
  unsigned char header[BIN_HEADER_LEN];
  size_t key_len = strlen(key);
  char *path;
  if (!ctx->cache_dir || length == 0) return;
  memcpy(header, BIN_MAGIC, BIN_MAGIC_LEN);
  put_u32(header + 8, BIN_FORMAT);
  put_u32(header + 12, (uint32_t)key_len);
  put_u64(header + 16, (uint64_t)length);
  put_u64(header + 24, entry_checksum(key, key_len, binary, length));
  path = entry_path(ctx->cache_dir, key);
  if (path && oftawq__write_file_atomic(path, header, sizeof header, key, key_len, binary, length) == 0) {
    ctx->stats.binaries_written++;
  } else {
    oftawq__log(ctx, OFTAWQ_LOG_WARNING, "cannot write to the cache folder '%s'; caching in memory only",
                ctx->cache_dir);
    free(ctx->cache_dir);
    ctx->cache_dir = NULL;
  }
  free(path);
}
