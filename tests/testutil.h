/* testutil.h: helpers shared by the Check suites: temp folders, contexts on the test device, files, random data. */
#ifndef OFTAWQ_TESTUTIL_H
#define OFTAWQ_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "oftawq.h"

#include <check.h>

/* Runs a suite (CK_ENV verbosity) and returns the process exit status. */
int tu_run(Suite *s);

/* A fresh empty folder under the build tree (tests/tmp/<name>-<pid>). Caller frees. */
char *tu_tempdir(const char *name);
/* Removes a folder and the files in it (one level). */
void tu_rmdir(const char *dir);
/* A context on the default test device, failing the test if none; optional cache dir. */
oftawq_context *tu_context(const char *cache_dir);
/* Reads a whole file (NUL-terminated); NULL if unreadable. */
char *tu_read_file(const char *path, size_t *length);
/* Path of a file in the source tree; caller frees. */
char *tu_srcpath(const char *relative);

/* The AWQ layer of tests/fixtures/awq/<name>.bin (written by tests/gen/gen_awq.py: qweight, qzeros, scales,
 * bias of a K x N layer with group G): the tensors point into *data, which the caller frees. */
void tu_awq_fixture(const char *name, int K, int N, int G, oftawq_awq_tensors *t, char **data);

/* Deterministic generator (xorshift64*), for reproducible random cases. */
typedef struct tu_rng { uint64_t s; } tu_rng;
void tu_rng_seed(tu_rng *r, uint64_t seed);
uint32_t tu_rng_u32(tu_rng *r);
float tu_rng_uniform(tu_rng *r, float lo, float hi);
/* n uniform floats in [-scale, scale) from `seed`; tu_random_floats allocates (caller frees). */
void tu_fill_random(float *v, size_t n, float scale, uint64_t seed);
float *tu_random_floats(size_t n, float scale, uint64_t seed);

/* A log callback that counts warnings and keeps the last message. */
typedef struct tu_log {
  int warnings, errors;
  char last[1024];
} tu_log;
void tu_log_fn(void *user, oftawq_log_level level, const char *message);
/* A context on the default test device whose log callback counts into `log` (cleared first). */
oftawq_context *tu_context_logged(tu_log *log);

#endif /* OFTAWQ_TESTUTIL_H */
