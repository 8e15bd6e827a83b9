/* fileio.c: file helpers shared by the caches and the file formats: inputs opened only if regular, atomic writes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"

#ifndef O_CLOEXEC
#  define O_CLOEXEC 0
#endif
#ifndef O_NOCTTY
#  define O_NOCTTY 0
#endif

/* What a path that is not a regular file is, in words. */
static const char *file_kind(mode_t mode)
{
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "is a character device";
  if (S_ISBLK(mode)) return "is a block device";
#ifdef S_ISSOCK
  if (S_ISSOCK(mode)) return "is a socket";
#endif
  if (S_ISLNK(mode)) return "is a symbolic link";
  return "is a special file";
}

static oftawq_status errno_failure(const char *path, int err, char *why, size_t cap)
{
  return oftawq__why(why, cap, err == ENOENT ? OFTAWQ_E_NOT_FOUND : OFTAWQ_E_IO, "%s: %s", path, strerror(err));
}

oftawq_status oftawq__file_open(const char *path, int flags, uint64_t max_size, int *fd, uint64_t *size, char *why,
                                size_t cap)
{
  struct stat before, st;
  int nofollow = (flags & OFTAWQ__FILE_NOFOLLOW) != 0;
  int oflags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0);
  int d;

  *fd = -1;
  *size = 0;
  /* The type first, so that a device is not even opened (opening some has side effects)... */
  if ((nofollow ? lstat(path, &before) : stat(path, &before)) != 0) return errno_failure(path, errno, why, cap);
  if (!S_ISREG(before.st_mode))
    return oftawq__why(why, cap, OFTAWQ_E_IO, "%s: %s, not a regular file", path, file_kind(before.st_mode));
  /* ...then again on the descriptor: O_NONBLOCK keeps a FIFO put there meanwhile from blocking the open. */
  if ((d = open(path, oflags)) < 0) return errno_failure(path, errno, why, cap);
  if (fstat(d, &st) != 0) {
    int err = errno;
    close(d);
    return errno_failure(path, err, why, cap);
  }
  if (!S_ISREG(st.st_mode) || st.st_dev != before.st_dev || st.st_ino != before.st_ino) {
    close(d);
    return oftawq__why(why, cap, OFTAWQ_E_IO, "%s: %s", path,
                       S_ISREG(st.st_mode) ? "was replaced while being opened" : file_kind(st.st_mode));
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > max_size || (uint64_t)st.st_size > SIZE_MAX - 1) {
    close(d);
    return oftawq__why(why, cap, OFTAWQ_E_FORMAT, "%s: %lld bytes, more than the %llu this file may have", path,
                       (long long)st.st_size, (unsigned long long)max_size);
  }
  *fd = d;
  *size = (uint64_t)st.st_size;
  return OFTAWQ_OK;
}

oftawq_status oftawq__file_read(const char *path, int flags, uint64_t max_size, char **data, size_t *length,
                                char *why, size_t cap)
{
  uint64_t size = 0;
  size_t done = 0;
  char *buf = NULL;
  int fd = -1;
  oftawq_status status;

  *data = NULL;
  *length = 0;
  if ((status = oftawq__file_open(path, flags, max_size, &fd, &size, why, cap)) < 0) return status;
  if (!(buf = malloc((size_t)size + 1))) {
    status = oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "%s: out of memory for %llu bytes", path,
                         (unsigned long long)size);
    goto fail;
  }
  while (done < (size_t)size) {
    ssize_t n = read(fd, buf + done, (size_t)size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = errno_failure(path, errno, why, cap);
      goto fail;
    }
    if (n == 0) {
      status = oftawq__why(why, cap, OFTAWQ_E_IO, "%s: the file shrank while being read", path);
      goto fail;
    }
    done += (size_t)n;
  }
  close(fd);
  buf[done] = '\0';
  *data = buf;
  *length = done;
  return OFTAWQ_OK;
fail:
  close(fd);
  free(buf);
  return status;
}

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
