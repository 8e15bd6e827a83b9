/* tune.c: per-device autotuning - the time-boxed search and the tuning database (memory, cache folder, files). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cache.h"
#include "runtime/kernels.h"
#include "engines/oft.h"
#include "tools/synthetic.h"
#include "common/fileio.h"
#include "tools/tune.h"

#define DB_MAGIC "oftawq-tune 1"
#define DB_PREFIX "tune-"
#define DB_SUFFIX ".db"
#define MAX_CANDIDATES 32
#define DEFAULT_BUDGET_S 60.0
#define DEFAULT_RUNS 3
/* Fusion must win clearly: the best of this many alternated measurements, by this factor. */
#define FUSION_ROUNDS 3
#define FUSION_MARGIN 0.95
/* What a first dense (CLBlast) candidate may cost: CLBlast compiles its GEMM program then (~10 s on PoCL). */
#define DENSE_COLD_S 15.0
/* Rows the search uses for each M bucket. */
static const int bucket_rows[OFTAWQ__M_BUCKETS] = {1, 8, 64, 256, 512};
static const char *const path_names[] = {"auto", "gemv", "gemm", "dense"};

typedef struct entry {
  char *key, *value;
} entry;

struct oftawq__tuning {
  entry *e;
  size_t n, cap;
  char *identity;                /* device, driver, library and kernel sources the entries are valid for */
};

int oftawq__m_bucket(size_t rows)
{
  return rows <= 1 ? 0 : rows <= 8 ? 1 : rows <= 64 ? 2 : rows <= 256 ? 3 : 4;
}

/* Shape classes: K and N rounded up to a power of two. */
static int pow2_class(int v)
{
  int c = 1;
  while (c < v && c < (1 << 30)) c <<= 1;
  return c;
}

static void awq_key(char *buf, size_t cap, int K, int N, int G, size_t rows)
{
  if (G == K)
    snprintf(buf, cap, "awq K%d N%d Gall M%d", pow2_class(K), pow2_class(N), oftawq__m_bucket(rows));
  else
    snprintf(buf, cap, "awq K%d N%d G%d M%d", pow2_class(K), pow2_class(N), G, oftawq__m_bucket(rows));
}

static void rotate_key(char *buf, size_t cap, int b, size_t rows)
{
  snprintf(buf, cap, "rotate b%d M%d", b, oftawq__m_bucket(rows));
}

static void plan_text(const oftawq__awq_plan *p, char *buf, size_t cap)
{
  snprintf(buf, cap, "path=%s split=%d cols=%d rpi=%d gcols=%d grows=%d grgroups=%d fuse=%d", path_names[p->path],
           p->split, p->cols, p->rpi, p->gcols, p->grows, p->grgroups, p->fuse);
}

static int plan_parse(const char *text, oftawq__awq_plan *p)
{
  char path[16];
  oftawq__awq_plan q = *p;
  int i;
  if (sscanf(text, "path=%15s split=%d cols=%d rpi=%d gcols=%d grows=%d grgroups=%d fuse=%d", path, &q.split, &q.cols,
             &q.rpi, &q.gcols, &q.grows, &q.grgroups, &q.fuse) != 8)
    return 0;
  for (i = 1; i < 4; i++)
    if (!strcmp(path, path_names[i])) q.path = (oftawq_awq_path)i;
  if (q.path == OFTAWQ_AWQ_AUTO || q.split < 1 || q.cols < 1 || q.rpi < 1 || q.gcols < 1 || q.grows < 1 ||
      q.grgroups < 1)
    return 0;
  *p = q;
  return 1;
}

/* --------------------------------------------------------------- the database */

static const char *lookup(const oftawq_context *ctx, const char *key)
{
  size_t i;
  if (!ctx->tuning) return NULL;
  for (i = 0; i < ctx->tuning->n; i++)
    if (!strcmp(ctx->tuning->e[i].key, key)) return ctx->tuning->e[i].value;
  return NULL;
}

static oftawq_status set_entry(struct oftawq__tuning *t, const char *key, const char *value)
{
  size_t i;
  char *v = oftawq__strdup(value), *k;
  if (!v) return OFTAWQ_E_OUT_OF_MEMORY;
  for (i = 0; i < t->n; i++)
    if (!strcmp(t->e[i].key, key)) {
      free(t->e[i].value);
      t->e[i].value = v;
      return OFTAWQ_OK;
    }
  if (t->n == t->cap) {
    entry *g = realloc(t->e, (t->cap * 2 + 8) * sizeof *g);
    if (!g) {
      free(v);
      return OFTAWQ_E_OUT_OF_MEMORY;
    }
    t->e = g;
    t->cap = t->cap * 2 + 8;
  }
  if (!(k = oftawq__strdup(key))) {
    free(v);
    return OFTAWQ_E_OUT_OF_MEMORY;
  }
  t->e[t->n].key = k;
  t->e[t->n].value = v;
  t->n++;
  return OFTAWQ_OK;
}

static void remove_entry(struct oftawq__tuning *t, const char *key)
{
  size_t i;
  for (i = 0; i < t->n; i++)
    if (!strcmp(t->e[i].key, key)) {
      free(t->e[i].key);
      free(t->e[i].value);
      t->e[i] = t->e[--t->n];
      return;
    }
}

static void free_entries(struct oftawq__tuning *t)
{
  size_t i;
  for (i = 0; i < t->n; i++) {
    free(t->e[i].key);
    free(t->e[i].value);
  }
  free(t->e);
  t->e = NULL;
  t->n = t->cap = 0;
}

void oftawq__tune_free(oftawq_context *ctx)
{
  if (!ctx->tuning) return;
  free_entries(ctx->tuning);
  free(ctx->tuning->identity);
  free(ctx->tuning);
  ctx->tuning = NULL;
}

/* Everything that makes tuned values valid: the device and driver, our version and kernel sources. */
static char *identity(const oftawq_context *ctx)
{
  static const char *const families[] = {"common", "awq", "oft_rotate", "oft_cayley"};
  const oftawq_device_info *i = &ctx->info;
  uint64_t h = OFTAWQ__FNV_OFFSET;
  size_t k, n;
  char *s;
  for (k = 0; k < sizeof families / sizeof families[0]; k++) {
    const oftawq__kernel_source *src = oftawq__kernel_source_find(families[k]);
    if (src) h = oftawq__fnv1a(h, src->source, src->length);
  }
  n = strlen(i->platform_name) + strlen(i->name) + strlen(i->version) + strlen(i->driver_version) + 64;
  if ((s = malloc(n)) != NULL)
    snprintf(s, n, "%s|%s|%s|%s|oftawq %s|kernels %016llx", i->platform_name, i->name, i->version, i->driver_version,
             OFTAWQ_VERSION_STRING, (unsigned long long)h);
  return s;
}

/* Serialises a database: header, entries, checksum line. Caller frees. */
static char *serialise(const struct oftawq__tuning *t, size_t *len)
{
  size_t cap = strlen(t->identity) + 128, i, n = 0;
  char *buf;
  for (i = 0; i < t->n; i++) cap += strlen(t->e[i].key) + strlen(t->e[i].value) + 16;
  if (!(buf = malloc(cap))) return NULL;
  n += (size_t)snprintf(buf + n, cap - n, "%s\ndevice %s\n", DB_MAGIC, t->identity);
  for (i = 0; i < t->n; i++) n += (size_t)snprintf(buf + n, cap - n, "entry %s\t%s\n", t->e[i].key, t->e[i].value);
  n += (size_t)snprintf(buf + n, cap - n, "checksum %016llx\n",
                        (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, buf, n));
  *len = n;
  return buf;
}

/* Parses a database file; 1 when well formed and its checksum holds. Fills entries and identity. */
static int parse_file(const char *path, struct oftawq__tuning *out)
{
  char *text = NULL, *line, *save = NULL, *sum;
  size_t len = 0;
  int ok = 0;
  unsigned long long want = 0;
  memset(out, 0, sizeof *out);
  if (oftawq__file_read(path, 0, OFTAWQ__MAX_TEXT_FILE, &text, &len, NULL, 0) == OFTAWQ_OK) {
    sum = strstr(text, "checksum ");
    if (sum && (sum == text || sum[-1] == '\n') && sscanf(sum, "checksum %16llx", &want) == 1 &&
        oftawq__fnv1a(OFTAWQ__FNV_OFFSET, text, (size_t)(sum - text)) == want) {
      *sum = '\0';
      ok = 1;
      line = strtok_r(text, "\n", &save);
      if (!line || strcmp(line, DB_MAGIC)) ok = 0;
      line = ok ? strtok_r(NULL, "\n", &save) : NULL;
      if (!line || strncmp(line, "device ", 7) || !(out->identity = oftawq__strdup(line + 7))) ok = 0;
      while (ok && (line = strtok_r(NULL, "\n", &save)) != NULL) {
        char *tab = strchr(line, '\t');
        if (strncmp(line, "entry ", 6) || !tab) {
          ok = 0;
          break;
        }
        *tab = '\0';
        if (set_entry(out, line + 6, tab + 1) < 0) ok = 0;
      }
    }
  }
  free(text);
  if (!ok) {
    free_entries(out);
    free(out->identity);
    out->identity = NULL;
  }
  return ok;
}

static char *db_path(const oftawq_context *ctx)
{
  size_t n;
  char *p;
  if (!ctx->cache_dir || !ctx->tuning) return NULL;
  n = strlen(ctx->cache_dir) + 64;
  if ((p = malloc(n)) != NULL)
    snprintf(p, n, "%s/" DB_PREFIX "%016llx" DB_SUFFIX, ctx->cache_dir,
             (unsigned long long)oftawq__fnv1a(OFTAWQ__FNV_OFFSET, ctx->tuning->identity,
                                               strlen(ctx->tuning->identity)));
  return p;
}

void oftawq__tune_load(oftawq_context *ctx)
{
  struct oftawq__tuning file;
  char *path;
  if (!(ctx->tuning = calloc(1, sizeof *ctx->tuning))) return;
  if (!(ctx->tuning->identity = identity(ctx))) {
    free(ctx->tuning);
    ctx->tuning = NULL;
    return;
  }
  if (!(path = db_path(ctx))) return;
  if (access(path, F_OK) == 0 || errno != ENOENT) { /* present, or there but unreadable (a loop of links) */
    if (parse_file(path, &file) && !strcmp(file.identity, ctx->tuning->identity)) {
      ctx->tuning->e = file.e;
      ctx->tuning->n = file.n;
      ctx->tuning->cap = file.cap;
      free(file.identity);
    } else {
      if (file.identity) { /* well formed, but another device's */
        free_entries(&file);
        free(file.identity);
      }
      ctx->stats.tuning_rejected++;
      oftawq__log(ctx, OFTAWQ_LOG_WARNING, "ignoring the corrupt or foreign tuning database '%s'; tune again", path);
    }
  }
  free(path);
}

static oftawq_status save(oftawq_context *ctx)
{
  char *path = db_path(ctx), *text;
  size_t len = 0;
  int rc;
  if (!path) return OFTAWQ_OK; /* memory only */
  if (!(text = serialise(ctx->tuning, &len))) {
    free(path);
    return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  rc = oftawq__write_file_atomic(path, text, len, "", 0, NULL, 0);
  free(text);
  if (rc != 0) {
    oftawq__log(ctx, OFTAWQ_LOG_WARNING, "cannot write the tuning database '%s'", path);
  }
  free(path);
  return OFTAWQ_OK;
}

void oftawq__tune_awq_plan(const oftawq_context *ctx, int K, int N, int G, size_t rows, oftawq__awq_plan *plan)
{
  char key[96];
  const char *v;
  awq_key(key, sizeof key, K, N, G, rows);
  if ((v = lookup(ctx, key)) != NULL && plan_parse(v, plan)) plan->tuned = 1;
}

static void cayley_key(char *buf, size_t cap, int b) { snprintf(buf, cap, "cayley b%d", b); }

void oftawq__tune_cayley(const oftawq_context *ctx, int b, int *tile, int *gj_wg)
{
  char key[32];
  const char *v;
  int t, w;
  cayley_key(key, sizeof key, b);
  if ((v = lookup(ctx, key)) != NULL && sscanf(v, "tile=%d gjwg=%d", &t, &w) == 2 && t > 0 && w > 0) {
    *tile = t;
    *gj_wg = w;
  }
}

int oftawq__tune_rotate_wg(const oftawq_context *ctx, int b, size_t rows, int fallback)
{
  char key[64];
  const char *v;
  int wg;
  rotate_key(key, sizeof key, b, rows);
  if ((v = lookup(ctx, key)) != NULL && sscanf(v, "wg=%d", &wg) == 1 && wg > 0) return wg;
  return fallback;
}

/* --------------------------------------------------------------- the search */

typedef struct tuner {
  oftawq_context *ctx;
  oftawq_tune_options o;
  oftawq_tune_report r;
  double start, deadline, last;    /* last: what the latest candidate cost, to stop before the budget ends */
  int dense_warm;                  /* a dense candidate ran already (CLBlast has compiled) */
} tuner;

static int time_left(const tuner *t) { return oftawq__now() + t->last <= t->deadline; }

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* What one candidate runs: the base layer on a plan, the rotation, or the layer (rotation + base, or fused). */
typedef enum job_kind { JOB_BASE, JOB_ROTATE, JOB_LAYER, JOB_FUSED, JOB_CAYLEY } job_kind;

typedef struct job {
  job_kind kind;
  oftawq__synthetic *s;
  const oftawq__awq_plan *plan;
  oftawq_oft *oft;                /* JOB_CAYLEY: the adapter whose R is rebuilt */
} job;

static oftawq_oft *synthetic_adapter(const oftawq__synthetic *s)
{
  return oftawq_layer_adapter(s->layer, OFTAWQ__SYNTHETIC_ADAPTER);
}

static oftawq_status run_job(const job *j)
{
  oftawq__synthetic *s = j->s;
  oftawq_awq *base = oftawq_layer_base(s->layer);
  oftawq_oft *oft = synthetic_adapter(s);
  oftawq_status status = OFTAWQ_OK;
  oftawq__fused_oft f;
  switch (j->kind) {
  case JOB_BASE:
    return oftawq__awq_enqueue_plan(base, OFTAWQ_F32, s->dx, s->dy, (size_t)s->M, j->plan, NULL, 0, NULL, NULL);
  case JOB_ROTATE:
    return oftawq__oft_enqueue_rotate(oft, OFTAWQ_F32, s->dx, s->dxr, (size_t)s->M, NULL, 0, 0, NULL, NULL);
  case JOB_LAYER:
    if ((status = oftawq__oft_enqueue_rotate(oft, OFTAWQ_F32, s->dx, s->dxr, (size_t)s->M, NULL, 0, 0, NULL, NULL)) < 0)
      return status;
    return oftawq__awq_enqueue_plan(base, OFTAWQ_F32, s->dxr, s->dy, (size_t)s->M, j->plan, NULL, 0, NULL, NULL);
  case JOB_CAYLEY:
    if ((status = oftawq_oft_set_weights(j->oft, s->w_oft, s->n_oft)) < 0) return status;
    return oftawq_oft_prepare(j->oft);
  case JOB_FUSED:
    if ((status = oftawq__oft_rotation_buffer(oft, &f.R)) < 0) return status;
    f.block_size = s->block_size;
    f.share = 0;
    return oftawq__awq_enqueue_plan(base, OFTAWQ_F32, s->dx, s->dy, (size_t)s->M, j->plan, &f, 0, NULL, NULL);
  }
  return OFTAWQ_E_INTERNAL;
}

/* The job's output (rows 0 and M-1) against the reference. */
static oftawq_status check_job(const job *j)
{
  oftawq__synthetic *s = j->s;
  size_t cols = (size_t)(j->kind == JOB_ROTATE ? s->K : s->N);
  float *got = malloc(OFTAWQ__CHECKED_ROWS * cols * 4), *want = NULL;
  oftawq_status status;
  if (!got) return OFTAWQ_E_OUT_OF_MEMORY;
  if (j->kind == JOB_CAYLEY) {
    free(got);
    return oftawq__synthetic_check_rotation(j->oft, "R candidate");
  }
  if ((status = oftawq__synthetic_read_rows(s, j->kind == JOB_ROTATE ? s->dxr : s->dy, cols, got)) == OFTAWQ_OK) {
    if (j->kind == JOB_BASE)
      status = oftawq__synthetic_check_output(s, "candidate", NULL, 0, 1, got);
    else if (j->kind != JOB_ROTATE)
      status = oftawq__synthetic_check_output(s, "candidate", synthetic_adapter(s), 1, 1, got);
    else if (!(want = malloc(OFTAWQ__CHECKED_ROWS * cols * 4)))
      status = OFTAWQ_E_OUT_OF_MEMORY;
    else if ((status = oftawq__synthetic_reference_input(s, synthetic_adapter(s), 1, want)) == OFTAWQ_OK)
      status = oftawq__synthetic_compare(s->ctx, "candidate", got, want, OFTAWQ__CHECKED_ROWS * cols);
  }
  free(got);
  free(want);
  return status;
}

/* Runs a candidate once and checks it, then times it. Returns the median (s), or -1 if it was rejected. */
static double try_job(tuner *t, const job *j)
{
  double t0 = oftawq__now(), times[16], median = -1;
  int i, runs = t->o.runs < 16 ? t->o.runs : 16;
  if (run_job(j) < 0 || clFinish(t->ctx->queue) != CL_SUCCESS || check_job(j) < 0) goto done;
  for (i = 0; i < runs; i++) {
    double r0 = oftawq__now();
    if (run_job(j) < 0 || clFinish(t->ctx->queue) != CL_SUCCESS) goto done;
    times[i] = oftawq__now() - r0;
  }
  qsort(times, (size_t)runs, sizeof *times, cmp_double);
  median = times[runs / 2];
done:
  t->last = oftawq__now() - t0;
  if (median < 0)
    t->r.candidates_rejected++;
  else
    t->r.candidates_timed++;
  return median;
}

static int fits(const oftawq_context *ctx, size_t wg, size_t local_bytes)
{
  return wg <= ctx->info.max_work_group_size && local_bytes <= ctx->info.local_mem_size / 2;
}

/* The candidate plans for one M: the default first, then the paths' variants interleaved. */
static int awq_candidates(const tuner *t, int M, int chunk, oftawq__awq_plan *c)
{
  static const int splits[] = {8, 4, 16, 2, 1}, cols[] = {16, 32, 8, 64}, rpis[] = {4, 2, 1};
  static const int gcols[] = {16, 32, 8}, grows[] = {4, 2, 8, 1}, grg[] = {4, 2, 8, 1};
  oftawq__awq_plan gemv[64], gemm[64], base;
  int ng = 0, nm = 0, n = 0, i, a, b, d;
  oftawq__awq_default_plan(t->ctx, (size_t)M, &base);
  c[n++] = base;
  if (t->o.test_inject_wrong) {
    c[n] = base;
    c[n].path = OFTAWQ_AWQ_GEMV;
    c[n++].test_wrong = 1;
  }
  for (a = 0; a < 5; a++)
    for (b = 0; b < 4; b++)
      for (d = 0; d < 3; d++) {
        oftawq__awq_plan p = base;
        p.path = OFTAWQ_AWQ_GEMV;
        p.split = splits[a];
        p.cols = cols[b];
        p.rpi = rpis[d];
        if (p.rpi > M || !fits(t->ctx, (size_t)(p.split * p.cols), (size_t)p.split * p.cols * p.rpi * 32) || ng == 64)
          continue;
        gemv[ng++] = p;
      }
  for (a = 0; M > 1 && a < 3; a++)
    for (b = 0; b < 4; b++)
      for (d = 0; d < 4; d++) {
        oftawq__awq_plan p = base;
        p.path = OFTAWQ_AWQ_GEMM;
        p.gcols = gcols[a];
        p.grows = grows[b];
        p.grgroups = grg[d];
        if (p.grows * p.grgroups > 2 * M || !fits(t->ctx, (size_t)(p.gcols * p.grgroups), (size_t)p.grgroups * p.grows * chunk * 4) ||
            nm == 64)
          continue;
        gemm[nm++] = p;
      }
#ifdef OFTAWQ_HAVE_CLBLAST
  if (M > 1 && base.path != OFTAWQ_AWQ_DENSE) {
    c[n] = base;
    c[n++].path = OFTAWQ_AWQ_DENSE;
  }
#endif
  for (i = 0; n < MAX_CANDIDATES && (i < ng || i < nm); i++) {
    if (i < ng && n < MAX_CANDIDATES) c[n++] = gemv[i];
    if (i < nm && n < MAX_CANDIDATES) c[n++] = gemm[i];
  }
  return n;
}

static oftawq_status tune_awq(tuner *t, oftawq__synthetic *s, int bucket, double unit_deadline)
{
  oftawq__awq_plan cand[MAX_CANDIDATES + 2], best;
  double best_t = -1;
  int n, i, timed = 0;
  char key[96], value[192];
  n = awq_candidates(t, s->M, s->G < 64 ? s->G : 64, cand);
  best = cand[0];
  for (i = 0; i < n && time_left(t) && (i < 2 || oftawq__now() + t->last <= unit_deadline); i++) {
    job j;
    double d;
    if (cand[i].path == OFTAWQ_AWQ_DENSE && !t->dense_warm) {
      if (t->deadline - oftawq__now() < DENSE_COLD_S) continue; /* its first run could overrun the budget */
      t->dense_warm = 1;
    }
    memset(&j, 0, sizeof j);
    j.kind = JOB_BASE;
    j.s = s;
    j.plan = &cand[i];
    d = try_job(t, &j);
    if (d < 0) continue;
    if (cand[i].test_wrong) d = 0; /* were it accepted, it would win */
    timed++;
    if (best_t < 0 || d < best_t) {
      best_t = d;
      best = cand[i];
    }
  }
  if (timed < 2) return OFTAWQ_OK; /* nothing was compared: keep the defaults */
  if (!best.test_wrong && oftawq__awq_can_fuse(oftawq_layer_base(s->layer), &best, (size_t)s->M) && time_left(t)) {
    /* Fusing the rotation into the GEMV is kept only where it measures faster than rotation + GEMV. */
    job sep, fused;
    double d_sep, d_fused;
    memset(&sep, 0, sizeof sep);
    memset(&fused, 0, sizeof fused);
    sep.kind = JOB_LAYER;
    fused.kind = JOB_FUSED;
    sep.s = fused.s = s;
    sep.plan = fused.plan = &best;
    int round;
    d_sep = d_fused = -1;
    for (round = 0; round < FUSION_ROUNDS && time_left(t) && (round == 0 || oftawq__now() + 2 * t->last <= unit_deadline);
         round++) { /* alternated: both see the same drift */
      double a = try_job(t, &sep), b = time_left(t) ? try_job(t, &fused) : -1;
      if (a > 0 && (d_sep < 0 || a < d_sep)) d_sep = a;
      if (b > 0 && (d_fused < 0 || b < d_fused)) d_fused = b;
    }
    if (d_sep > 0 && d_fused > 0 && d_fused < FUSION_MARGIN * d_sep) best.fuse = 1;
  }
  awq_key(key, sizeof key, s->K, s->N, s->G, (size_t)bucket_rows[bucket]);
  plan_text(&best, value, sizeof value);
  if (best.test_wrong) strcat(value, " WRONG");
  if (set_entry(t->ctx->tuning, key, value) < 0) return oftawq__fail(t->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  t->r.classes_tuned++;
  return OFTAWQ_OK;
}

static oftawq_status tune_rotate(tuner *t, oftawq__synthetic *s, double unit_deadline)
{
  static const int wgs[] = {64, 16, 32, 128, 256};
  double best_t = -1;
  int best_wg = 0, i, timed = 0;
  char key[64], value[32];
  oftawq_status status = OFTAWQ_OK;
  rotate_key(key, sizeof key, s->block_size, (size_t)s->M);
  for (i = 0; i < 5 && time_left(t) && (i < 2 || oftawq__now() + t->last <= unit_deadline); i++) {
    job j;
    double d;
    if ((size_t)wgs[i] > t->ctx->info.max_work_group_size) continue;
    memset(&j, 0, sizeof j);
    /* the candidate is in the database while it is measured, so the adapter builds it */
    snprintf(value, sizeof value, "wg=%d", wgs[i]);
    if ((status = set_entry(t->ctx->tuning, key, value)) < 0) break;
    j.kind = JOB_ROTATE;
    j.s = s;
    j.plan = NULL;
    if ((d = try_job(t, &j)) < 0) continue;
    timed++;
    if (best_t < 0 || d < best_t) {
      best_t = d;
      best_wg = wgs[i];
    }
  }
  if (status == OFTAWQ_OK && timed >= 2) {
    snprintf(value, sizeof value, "wg=%d", best_wg);
    status = set_entry(t->ctx->tuning, key, value);
    t->r.classes_tuned++;
  } else { /* not compared: no entry */
    remove_entry(t->ctx->tuning, key);
  }
  return status < 0 ? oftawq__fail(t->ctx, status, "out of memory") : OFTAWQ_OK;
}

/* The R build: the Neumann products' tile on the synthetic adapter, the Gauss-Jordan work-group on an exact one. */
static oftawq_status tune_cayley(tuner *t, oftawq__synthetic *s)
{
  static const int tiles[] = {8, 4, 16}, wgs[] = {64, 32, 128};
  oftawq_oft *neumann = synthetic_adapter(s), *exact = NULL;
  oftawq_oft_config c;
  char key[32], value[48];
  int best_tile = 0, best_wg = 0, i, timed_t = 0, timed_w = 0;
  double bt = -1, bw = -1;
  oftawq_status status;
  oftawq_oft_config_init(&c);
  c.oft_block_size = s->block_size;
  c.use_cayley_neumann = 0;
  if ((status = oftawq_oft_create(t->ctx, &c, s->K, s->w_oft, s->n_oft, &exact)) < 0) return status;
  oftawq__oft_set_exact_on_device(exact, 1);
  cayley_key(key, sizeof key, s->block_size);
  for (i = 0; i < 3 && time_left(t); i++) {
    job j;
    double d;
    /* each candidate is in the database while it is measured, so the adapters build with it */
    snprintf(value, sizeof value, "tile=%d gjwg=%d", tiles[i], wgs[i]);
    if ((size_t)(tiles[i] * tiles[i]) > t->ctx->info.max_work_group_size || (size_t)wgs[i] > t->ctx->info.max_work_group_size ||
        (status = set_entry(t->ctx->tuning, key, value)) < 0)
      continue;
    memset(&j, 0, sizeof j);
    j.kind = JOB_CAYLEY;
    j.s = s;
    j.oft = neumann;
    if ((d = try_job(t, &j)) >= 0) {
      timed_t++;
      if (bt < 0 || d < bt) bt = d, best_tile = tiles[i];
    }
    j.oft = exact;
    if (time_left(t) && (d = try_job(t, &j)) >= 0) {
      timed_w++;
      if (bw < 0 || d < bw) bw = d, best_wg = wgs[i];
    }
  }
  oftawq_oft_destroy(exact);
  if (status < 0) return oftawq__fail(t->ctx, status, "out of memory");
  if (timed_t >= 2 && timed_w >= 2) {
    snprintf(value, sizeof value, "tile=%d gjwg=%d", best_tile, best_wg);
    t->r.classes_tuned++;
    return set_entry(t->ctx->tuning, key, value) < 0 ? oftawq__fail(t->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory")
                                                     : OFTAWQ_OK;
  }
  remove_entry(t->ctx->tuning, key); /* not compared: no entry */
  return OFTAWQ_OK;
}

void oftawq_tune_options_init(oftawq_tune_options *o)
{
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->budget_s = DEFAULT_BUDGET_S;
  o->runs = DEFAULT_RUNS;
}

void oftawq_tune_report_init(oftawq_tune_report *r)
{
  if (!r) return;
  memset(r, 0, sizeof *r);
  r->size = sizeof *r;
}

oftawq_status oftawq_tune_shape(oftawq_context *ctx, int K, int N, int G, int block_size,
                                const oftawq_tune_options *options, oftawq_tune_report *report)
{
  tuner t;
  oftawq_status status = OFTAWQ_OK;
  int bucket, units = 2 * OFTAWQ__M_BUCKETS + 1, unit = 0;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (report && report->size < sizeof *report) /* refused before the work whose report it could not hold */
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "uninitialised tune report");
  if (!ctx->tuning) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "no tuning database (out of memory)");
  memset(&t, 0, sizeof t);
  t.ctx = ctx;
  oftawq_tune_options_init(&t.o);
  if (options) {
    if (options->size < sizeof *options) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "uninitialised tune options");
    t.o = *options;
  }
  if (!(t.o.budget_s > 0) || t.o.runs < 1)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "tuning budget %g s and runs %d must be positive", t.o.budget_s,
                        t.o.runs);
  if (G == -1) G = K;
  oftawq_tune_report_init(&t.r);
  t.start = oftawq__now();
  t.deadline = t.start + t.o.budget_s;
  for (bucket = 0; bucket < OFTAWQ__M_BUCKETS && status == OFTAWQ_OK && time_left(&t); bucket++) {
    oftawq__synthetic s;
    double share;
    char what[96];
    if ((status = oftawq__synthetic_create(ctx, K, N, bucket_rows[bucket], G, block_size, 7 + (uint64_t)bucket, &s)) < 0)
      break;
    if (status == OFTAWQ_OK && bucket == 0 && time_left(&t)) { /* R does not depend on M: once, first (cheap) */
      if (t.o.progress) t.o.progress(t.o.user, (oftawq__now() - t.start) / t.o.budget_s, "R build");
      status = tune_cayley(&t, &s);
      unit++;
    }
    snprintf(what, sizeof what, "awq %dx%d M=%d", K, N, bucket_rows[bucket]);
    if (t.o.progress) t.o.progress(t.o.user, (oftawq__now() - t.start) / t.o.budget_s, what);
    share = (t.deadline - oftawq__now()) / (units - unit);
    status = tune_awq(&t, &s, bucket, oftawq__now() + share);
    unit++;
    snprintf(what, sizeof what, "rotate b=%d M=%d", block_size, bucket_rows[bucket]);
    if (t.o.progress) t.o.progress(t.o.user, (oftawq__now() - t.start) / t.o.budget_s, what);
    share = (t.deadline - oftawq__now()) / (units - unit);
    if (status == OFTAWQ_OK) status = tune_rotate(&t, &s, oftawq__now() + share);
    unit++;
    oftawq__synthetic_free(&s);
  }
  t.r.elapsed_s = oftawq__now() - t.start;
  if (t.o.progress) t.o.progress(t.o.user, 1.0, "done");
  if (status == OFTAWQ_OK) status = save(ctx);
  if (report && report->size >= sizeof *report) *report = t.r;
  return status;
}

oftawq_status oftawq_tune_layer(oftawq_layer *layer, const oftawq_tune_options *options, oftawq_tune_report *report)
{
  oftawq_awq *base = oftawq_layer_base(layer);
  oftawq_oft_shape s;
  int K, N, G, b = 32;
  if (!base) return OFTAWQ_E_INVALID_ARGUMENT;
  oftawq_awq_get_shape(base, &K, &N, &G, NULL);
  oftawq_oft_shape_init(&s);
  if (oftawq_layer_adapter_count(layer) &&
      oftawq_oft_get_shape(oftawq_layer_adapter(layer, oftawq_layer_adapter_name(layer, 0)), &s) == OFTAWQ_OK)
    b = s.block_size;
  return oftawq_tune_shape(oftawq__awq_context(base), K, N, G, b, options, report);
}

void oftawq_kernel_params_init(oftawq_kernel_params *p)
{
  if (!p) return;
  memset(p, 0, sizeof *p);
  p->size = sizeof *p;
}

oftawq_status oftawq_query_params(const oftawq_context *ctx, const char *kernel, int K, int N, int G, int block_size,
                                  size_t rows, oftawq_kernel_params *p)
{
  if (!ctx || !kernel || !p || p->size < sizeof *p) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!strcmp(kernel, "awq")) {
    oftawq__awq_plan plan;
    if (K < 1 || N < 8 || (G != -1 && G < 1)) return OFTAWQ_E_INVALID_ARGUMENT;
    oftawq__awq_default_plan(ctx, rows, &plan);
    oftawq__tune_awq_plan(ctx, K, N, G == -1 ? K : G, rows, &plan);
    plan_text(&plan, p->description, sizeof p->description);
    p->tuned = plan.tuned;
  } else if (!strcmp(kernel, "oft_cayley")) {
    int tile = 0, wg = 0;
    oftawq__tune_cayley(ctx, block_size, &tile, &wg);
    p->tuned = tile != 0;
    if (p->tuned)
      snprintf(p->description, sizeof p->description, "tile=%d gjwg=%d", tile, wg);
    else
      snprintf(p->description, sizeof p->description, "tile=%d gjwg=%d", oftawq__oft_default_cayley_tile(),
               oftawq__oft_default_exact_wg());
  } else if (!strcmp(kernel, "oft_rotate")) {
    int wg = oftawq__tune_rotate_wg(ctx, block_size, rows, 0);
    p->tuned = wg != 0;
    snprintf(p->description, sizeof p->description, "wg=%d", wg ? wg : oftawq__oft_default_rotate_wg());
  } else {
    return OFTAWQ_E_INVALID_ARGUMENT;
  }
  return OFTAWQ_OK;
}

size_t oftawq_tune_count(const oftawq_context *ctx) { return ctx && ctx->tuning ? ctx->tuning->n : 0; }

oftawq_status oftawq_tune_entry(const oftawq_context *ctx, size_t index, char *buf, size_t cap)
{
  if (!ctx || !ctx->tuning || index >= ctx->tuning->n || !buf || !cap) return OFTAWQ_E_INVALID_ARGUMENT;
  snprintf(buf, cap, "%s: %s", ctx->tuning->e[index].key, ctx->tuning->e[index].value);
  return OFTAWQ_OK;
}

oftawq_status oftawq_tune_export(oftawq_context *ctx, const char *path)
{
  char *text;
  size_t len = 0;
  int rc;
  if (!ctx || !path || !ctx->tuning) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(text = serialise(ctx->tuning, &len))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  rc = oftawq__write_file_atomic(path, text, len, "", 0, NULL, 0);
  free(text);
  return rc == 0 ? OFTAWQ_OK : oftawq__fail(ctx, OFTAWQ_E_IO, "cannot write the tuning database '%s'", path);
}

oftawq_status oftawq_tune_import(oftawq_context *ctx, const char *path)
{
  struct oftawq__tuning file;
  oftawq_status status = OFTAWQ_OK;
  size_t i;
  if (!ctx || !path || !ctx->tuning) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!parse_file(path, &file))
    return oftawq__fail(ctx, OFTAWQ_E_FORMAT, "'%s' is not a valid oftawq tuning database (corrupt or truncated)", path);
  if (strcmp(file.identity, ctx->tuning->identity)) {
    status = oftawq__fail(ctx, OFTAWQ_E_UNSUPPORTED, "'%s' was tuned for '%s', not this device and library ('%s')",
                          path, file.identity, ctx->tuning->identity);
  } else {
    for (i = 0; i < file.n && status == OFTAWQ_OK; i++) status = set_entry(ctx->tuning, file.e[i].key, file.e[i].value);
    if (status == OFTAWQ_OK) status = save(ctx);
  }
  free_entries(&file);
  free(file.identity);
  return status;
}

oftawq_status oftawq_cache_tuning(const char *dir, void (*fn)(void *user, const char *device, const char *entry),
                                  void *user)
{
  DIR *d;
  struct dirent *e;
  if (!dir || !fn) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(d = opendir(dir))) return OFTAWQ_OK; /* nothing cached yet */
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name), i;
    char path[4096], line[512];
    struct oftawq__tuning file;
    if (n <= strlen(DB_PREFIX) + strlen(DB_SUFFIX) || strncmp(e->d_name, DB_PREFIX, strlen(DB_PREFIX)) ||
        strcmp(e->d_name + n - strlen(DB_SUFFIX), DB_SUFFIX))
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (!parse_file(path, &file)) continue;
    for (i = 0; i < file.n; i++) {
      snprintf(line, sizeof line, "%s: %s", file.e[i].key, file.e[i].value);
      fn(user, file.identity, line);
    }
    free_entries(&file);
    free(file.identity);
  }
  closedir(d);
  return OFTAWQ_OK;
}
