/* tuning.c: the per-device tuning database - plan kinds and their checks against the device, a hashed
 * index, linear parsing of the cache folder's file, validated loading, storing, export and import. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "runtime/kernels.h"
#include "runtime/tuning.h"

#define DB_MAGIC "oftawq-tune 5"
#define DB_PREFIX "tune-"
#define DB_SUFFIX ".db"
/* A database file larger than this is not ours (a real one holds a few hundred short lines; the
 * bound leaves room for hundreds of thousands, which parse in linear time). */
#define DB_MAX_BYTES ((uint64_t)64 << 20)
/* What separates an entry's parameters from the search's note. */
#define NOTE_SEP " ; "
/* Largest OFT block an entry may name (oft.c refuses larger ones). */
#define MAX_BLOCK 4096

static const int bucket_rows_of[OFTAWQ__M_BUCKETS] = {1, 2, 4, 8, 64, 256, 512};
static const char *const path_names[] = {"auto", "gemv", "gemm", "dense"};

typedef struct entry {
  char *key, *value;
  uint64_t hash;
} entry;

struct oftawq__tuning {
  entry *e;                  /* in the order stored (listings keep it) */
  size_t n, cap;
  size_t *slot;              /* open addressing over e: index + 1, 0 = empty */
  size_t slots;              /* a power of two, at least 2 * n */
  char *identity;            /* device, driver, library and kernel sources the entries are valid for */
  uint64_t probes, generation;
};

int oftawq__m_bucket(size_t rows)
{
  return rows <= 1 ? 0 : rows <= 2 ? 1 : rows <= 4 ? 2 : rows <= 8 ? 3 : rows <= 64 ? 4 : rows <= 256 ? 5 : 6;
}

int oftawq__bucket_rows(int bucket)
{
  return bucket_rows_of[bucket < 0 ? 0 : bucket >= OFTAWQ__M_BUCKETS ? OFTAWQ__M_BUCKETS - 1 : bucket];
}

/* ------------------------------------------------------------------ plans and their checks */

void oftawq__awq_plan_geometry(const oftawq__awq_plan *p, oftawq__awq_geometry *g)
{
  if (p->path == OFTAWQ_AWQ_GEMV) {
    g->cols = p->cols;
    g->split = p->split;
    g->rgroups = 1;
    g->rows = p->rpi;
    g->vec = p->vec;
    g->colvec = p->colvec;
    g->prefetch = p->prefetch;
  } else {
    g->cols = p->gcols;
    g->split = 1;
    g->rgroups = p->grgroups;
    g->rows = p->grows;
    g->vec = p->gvec;
    g->colvec = p->gcolvec;
    g->prefetch = p->gprefetch;
  }
}

size_t oftawq__awq_plan_groups(const oftawq__awq_plan *p, int N, size_t rows)
{
  oftawq__awq_geometry g;
  size_t items, row_items;
  if (p->path == OFTAWQ_AWQ_DENSE) return 0;
  oftawq__awq_plan_geometry(p, &g);
  items = ((size_t)N / 8 + (size_t)g.vec - 1) / (size_t)g.vec;
  row_items = (size_t)g.rows * (size_t)g.rgroups;
  return (items + (size_t)g.cols - 1) / (size_t)g.cols * ((rows + row_items - 1) / row_items);
}

int oftawq__awq_chunk(int G)
{
  int chunk = G;
  while (chunk > OFTAWQ__MAX_CHUNK && chunk % 2 == 0) chunk /= 2;
  return chunk > 4 * OFTAWQ__MAX_CHUNK ? 1 : chunk; /* an odd huge group: single-k chunks */
}

int oftawq__awq_wi_loops(const oftawq_context *ctx) { return ctx->info.is_cpu; }

/* What awq_matmul declares: staged x (with AWQ_WI_LOOPS and AWQ_COLVEC of one word also as float8 splats;
 * with AWQ_WI_LOOPS the chunks' sums of x too) and the work-items' sums (split-K partials; with AWQ_WI_LOOPS
 * always). An upper bound where the kernel stages less (AWQ_KLANES). */
static uint64_t geometry_local_bytes(const oftawq_context *ctx, const oftawq__awq_geometry *g, int G)
{
  const int wi_loops = oftawq__awq_wi_loops(ctx);
  uint64_t staged = (uint64_t)g->rgroups * g->rows * g->split * oftawq__awq_chunk(G);
  uint64_t sums = g->split > 1 || wi_loops ? (uint64_t)g->split * g->cols * g->rgroups * g->rows * 8 * g->vec : 0;
  const uint64_t splats = wi_loops && g->colvec && g->vec == 1 ? 8 * staged : 0;
  return 4 * (staged + splats + (wi_loops ? staged / oftawq__awq_chunk(G) : 0) + sums);
}

static int is_pow2(long v) { return v > 0 && (v & (v - 1)) == 0; }

/* The device's limits on work-group shape: total size and per dimension. */
static void device_limits(const oftawq_context *ctx, size_t items[3], size_t *wg, uint64_t *local)
{
  size_t d[3] = {0, 0, 0};
  *wg = ctx->info.max_work_group_size;
  *local = ctx->info.local_mem_size / 2; /* the rest is the driver's */
  items[0] = items[1] = items[2] = *wg;
  if (ctx->device && clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof d, d, NULL) == CL_SUCCESS) {
    items[0] = d[0];
    items[1] = d[1];
    items[2] = d[2];
  }
}

static int geometry_fits(const oftawq_context *ctx, const oftawq__awq_geometry *g, int G, const char *what, char *why,
                         size_t cap)
{
  size_t items[3], wg;
  uint64_t local, need;
  device_limits(ctx, items, &wg, &local);
  if (g->cols < 1 || g->cols > OFTAWQ__MAX_SPLIT * 16 || !is_pow2(g->split) || g->split > OFTAWQ__MAX_SPLIT ||
      g->rgroups < 1 || g->rgroups > OFTAWQ__MAX_GROUPS || g->rows < 1 || g->rows > OFTAWQ__MAX_ROWS_PER_ITEM ||
      !is_pow2(g->vec) || g->vec > OFTAWQ__MAX_VEC || (g->colvec != 0 && g->colvec != 1) || g->prefetch < 0 ||
      g->prefetch > OFTAWQ__MAX_PREFETCH) {
    snprintf(why, cap,
             "%s parameters out of range (cols %d, split %d, row groups %d, rows %d, vec %d, colvec %d, prefetch %d)",
             what, g->cols, g->split, g->rgroups, g->rows, g->vec, g->colvec, g->prefetch);
    return 0;
  }
  if ((uint64_t)g->cols * g->split * g->rgroups > wg || (size_t)g->cols > items[0] || (size_t)g->split > items[1] ||
      (size_t)g->rgroups > items[2]) {
    snprintf(why, cap, "%s work-group %d x %d x %d exceeds the device's (%zu; %zu x %zu x %zu)", what, g->cols,
             g->split, g->rgroups, wg, items[0], items[1], items[2]);
    return 0;
  }
  if ((need = geometry_local_bytes(ctx, g, G)) > local) {
    snprintf(why, cap, "%s needs %llu bytes of local memory, the device offers %llu", what, (unsigned long long)need,
             (unsigned long long)local);
    return 0;
  }
  return 1;
}

int oftawq__awq_plan_fits(const oftawq_context *ctx, const oftawq__awq_plan *p, int G, char *why, size_t cap)
{
  oftawq__awq_geometry gv, gm;
  oftawq__awq_plan v = *p, m = *p;
  char ignore[8];
  if (!why) why = ignore, cap = sizeof ignore;
  if (p->path < OFTAWQ_AWQ_GEMV || p->path > OFTAWQ_AWQ_DENSE || (p->fuse != 0 && p->fuse != 1)) {
    snprintf(why, cap, "path %d / fuse %d out of range", (int)p->path, p->fuse);
    return 0;
  }
  v.path = OFTAWQ_AWQ_GEMV;
  m.path = OFTAWQ_AWQ_GEMM;
  oftawq__awq_plan_geometry(&v, &gv);
  oftawq__awq_plan_geometry(&m, &gm);
  return geometry_fits(ctx, &gv, G, "GEMV", why, cap) && geometry_fits(ctx, &gm, G, "GEMM", why, cap);
}

int oftawq__cayley_params_fit(const oftawq_context *ctx, int b, int tile, int gj_wg, char *why, size_t cap)
{
  size_t items[3], wg;
  uint64_t local;
  device_limits(ctx, items, &wg, &local);
  if (b < 1 || b > MAX_BLOCK || tile < 1 || tile > 64 || gj_wg < 1 || gj_wg > 4096 || !is_pow2(gj_wg)) {
    snprintf(why, cap, "R-build parameters out of range (block %d, tile %d, Gauss-Jordan work-group %d)", b, tile,
             gj_wg);
    return 0;
  }
  if ((size_t)(tile * tile) > wg || (size_t)tile > items[0] || (size_t)tile > items[1] || (size_t)gj_wg > wg ||
      (size_t)gj_wg > items[0]) {
    snprintf(why, cap, "R-build work-groups (tile %d, Gauss-Jordan %d) exceed the device's %zu", tile, gj_wg, wg);
    return 0;
  }
  if ((uint64_t)tile * tile * 8 > local || (uint64_t)gj_wg * 8 + (uint64_t)b * 4 > local) {
    snprintf(why, cap, "R-build parameters (tile %d, Gauss-Jordan %d) need more local memory than the device's %llu",
             tile, gj_wg, (unsigned long long)local);
    return 0;
  }
  return 1;
}

int oftawq__rotate_wg_fits(const oftawq_context *ctx, int wg_size, char *why, size_t cap)
{
  size_t items[3], wg;
  uint64_t local;
  device_limits(ctx, items, &wg, &local);
  if (wg_size < 1 || (size_t)wg_size > wg || (size_t)wg_size > items[0]) {
    snprintf(why, cap, "rotation work-group %d out of range (device: %zu)", wg_size, wg);
    return 0;
  }
  return 1;
}

void oftawq__awq_plan_text(const oftawq__awq_plan *p, char *buf, size_t cap)
{
  snprintf(buf, cap,
           "path=%s split=%d cols=%d rpi=%d vec=%d colvec=%d prefetch=%d gcols=%d grows=%d grgroups=%d gvec=%d "
           "gcolvec=%d gprefetch=%d fuse=%d",
           path_names[p->path >= OFTAWQ_AWQ_GEMV && p->path <= OFTAWQ_AWQ_DENSE ? p->path : 0], p->split, p->cols,
           p->rpi, p->vec, p->colvec, p->prefetch, p->gcols, p->grows, p->grgroups, p->gvec, p->gcolvec, p->gprefetch,
           p->fuse);
}

/* A decimal int in [0, INT_MAX] that ends exactly at `end` (so "1e6" and "12x" are malformed). */
static int parse_int(const char *s, const char *end, int *out)
{
  long v = 0;
  if (s == end || end - s > 9) return 0;
  for (; s < end; s++) {
    if (*s < '0' || *s > '9') return 0;
    v = v * 10 + (*s - '0');
  }
  *out = (int)v;
  return 1;
}

/* Parses "name=value name=value ..." (up to NOTE_SEP) into the named ints; every name must be known
 * and given once, `path` (if wanted) takes a path name. */
static int parse_fields(const char *text, const char *const *names, int *values, int n, int *path)
{
  const char *p = text, *stop = strstr(text, NOTE_SEP);
  unsigned seen = 0;
  int i;
  if (!stop) stop = text + strlen(text);
  while (p < stop) {
    const char *eq, *end;
    while (p < stop && *p == ' ') p++;
    if (p == stop) break;
    for (end = p; end < stop && *end != ' '; end++) continue;
    if (!(eq = memchr(p, '=', (size_t)(end - p)))) return 0;
    if (path && (size_t)(eq - p) == 4 && !strncmp(p, "path", 4)) {
      int k, found = 0;
      if (seen & 1u << 31) return 0;
      for (k = 1; k < 4; k++)
        if ((size_t)(end - eq - 1) == strlen(path_names[k]) && !strncmp(eq + 1, path_names[k], (size_t)(end - eq - 1)))
          *path = k, found = 1;
      if (!found) return 0;
      seen |= 1u << 31;
    } else {
      for (i = 0; i < n; i++)
        if ((size_t)(eq - p) == strlen(names[i]) && !strncmp(p, names[i], (size_t)(eq - p))) break;
      if (i == n || (seen & 1u << i) || !parse_int(eq + 1, end, &values[i])) return 0;
      seen |= 1u << i;
    }
    p = end;
  }
  return seen == ((1u << n) - 1) + (path ? 1u << 31 : 0);
}

int oftawq__awq_plan_parse(const char *text, oftawq__awq_plan *p)
{
  static const char *const names[] = {"split", "cols",     "rpi",  "vec",     "gcols", "grows",
                                      "grgroups", "gvec", "fuse", "colvec", "gcolvec", "prefetch", "gprefetch"};
  int v[13], path = 0;
  oftawq__awq_plan q;
  if (!parse_fields(text, names, v, 13, &path)) return 0;
  memset(&q, 0, sizeof q);
  q.path = (oftawq_awq_path)path;
  q.split = v[0];
  q.cols = v[1];
  q.rpi = v[2];
  q.vec = v[3];
  q.gcols = v[4];
  q.grows = v[5];
  q.grgroups = v[6];
  q.gvec = v[7];
  q.fuse = v[8];
  q.colvec = v[9];
  q.gcolvec = v[10];
  q.prefetch = v[11];
  q.gprefetch = v[12];
  *p = q;
  return 1;
}

/* ------------------------------------------------------------------ keys */

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

static void layout_key(char *buf, size_t cap, int K, int N, int G)
{
  if (G == K)
    snprintf(buf, cap, "awq-layout K%d N%d Gall", pow2_class(K), pow2_class(N));
  else
    snprintf(buf, cap, "awq-layout K%d N%d G%d", pow2_class(K), pow2_class(N), G);
}

static void rotate_key(char *buf, size_t cap, int b, size_t rows)
{
  snprintf(buf, cap, "rotate b%d M%d", b, oftawq__m_bucket(rows));
}

static void cayley_key(char *buf, size_t cap, int b) { snprintf(buf, cap, "cayley b%d", b); }

/* ------------------------------------------------------------------ the index */

static entry *find(struct oftawq__tuning *t, const char *key, uint64_t h, size_t *slot_index)
{
  size_t mask = t->slots - 1, i;
  if (!t->slots) return NULL;
  for (i = (size_t)h & mask; t->slot[i]; i = (i + 1) & mask) {
    entry *e = &t->e[t->slot[i] - 1];
    t->probes++;
    if (e->hash == h && !strcmp(e->key, key)) {
      if (slot_index) *slot_index = i;
      return e;
    }
  }
  if (slot_index) *slot_index = i;
  return NULL;
}

static int reindex(struct oftawq__tuning *t, size_t want)
{
  size_t slots = 16, i;
  size_t *s;
  while (slots < 2 * want) slots *= 2;
  if (!(s = calloc(slots, sizeof *s))) return 0;
  free(t->slot);
  t->slot = s;
  t->slots = slots;
  for (i = 0; i < t->n; i++) {
    size_t j = (size_t)t->e[i].hash & (slots - 1);
    while (s[j]) j = (j + 1) & (slots - 1), t->probes++;
    s[j] = i + 1;
  }
  return 1;
}

/* Stores key -> value (copied), replacing an older value. */
static oftawq_status set_entry(struct oftawq__tuning *t, const char *key, const char *value)
{
  uint64_t h = oftawq__fnv1a(OFTAWQ__FNV_OFFSET, key, strlen(key));
  char *v = oftawq__strdup(value), *k;
  entry *e;
  size_t at;
  if (!v) return OFTAWQ_E_OUT_OF_MEMORY;
  t->generation++;
  if ((e = find(t, key, h, NULL)) != NULL) {
    free(e->value);
    e->value = v;
    return OFTAWQ_OK;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap * 2 + 16;
    entry *g = realloc(t->e, cap * sizeof *g);
    if (!g) {
      free(v);
      return OFTAWQ_E_OUT_OF_MEMORY;
    }
    t->e = g;
    t->cap = cap;
  }
  if (!(k = oftawq__strdup(key)) || (2 * (t->n + 1) > t->slots && !reindex(t, t->n + 1))) {
    free(k);
    free(v);
    return OFTAWQ_E_OUT_OF_MEMORY;
  }
  find(t, key, h, &at);
  t->e[t->n].key = k;
  t->e[t->n].value = v;
  t->e[t->n].hash = h;
  t->slot[at] = ++t->n;
  return OFTAWQ_OK;
}

static void remove_entry(struct oftawq__tuning *t, const char *key)
{
  entry *e = find(t, key, oftawq__fnv1a(OFTAWQ__FNV_OFFSET, key, strlen(key)), NULL);
  if (!e) return;
  free(e->key);
  free(e->value);
  memmove(e, e + 1, (size_t)(t->e + t->n - (e + 1)) * sizeof *e);
  t->n--;
  t->generation++;
  if (!reindex(t, t->n)) { /* keep a consistent, if slower, index: none */
    free(t->slot);
    t->slot = NULL;
    t->slots = 0;
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
  free(t->slot);
  t->e = NULL;
  t->slot = NULL;
  t->n = t->cap = t->slots = 0;
}

static const char *lookup(const oftawq_context *ctx, const char *key)
{
  entry *e;
  if (!ctx->tuning) return NULL;
  e = find(ctx->tuning, key, oftawq__fnv1a(OFTAWQ__FNV_OFFSET, key, strlen(key)), NULL);
  return e ? e->value : NULL;
}

uint64_t oftawq__tuning_probes(const oftawq_context *ctx) { return ctx && ctx->tuning ? ctx->tuning->probes : 0; }
uint64_t oftawq__tuning_generation(const oftawq_context *ctx)
{
  return ctx && ctx->tuning ? ctx->tuning->generation : 0;
}

/* ------------------------------------------------------------------ entries and the device */

/* Parses and checks one entry against the device: 1 valid, 0 not (reason in why). */
static int entry_valid(const oftawq_context *ctx, const char *key, const char *value, char *why, size_t cap)
{
  int K, N, G, M, b;
  char g_text[16], tail;
  if (sscanf(key, "awq K%d N%d G%15s M%d%c", &K, &N, g_text, &M, &tail) == 4) {
    oftawq__awq_plan p;
    if (!strcmp(g_text, "all"))
      G = K;
    else if (!parse_int(g_text, g_text + strlen(g_text), &G) || G < 1)
      G = -1;
    if (K < 1 || N < 8 || G < 1 || M < 0 || M >= OFTAWQ__M_BUCKETS || !is_pow2(K) || !is_pow2(N)) {
      snprintf(why, cap, "malformed key");
      return 0;
    }
    if (!oftawq__awq_plan_parse(value, &p)) {
      snprintf(why, cap, "malformed or unknown parameters");
      return 0;
    }
    if (p.rpi > oftawq__bucket_rows(M)) { /* the search measures a bucket with items of its rows, at most */
      snprintf(why, cap, "%d rows per item, above the bucket's %d", p.rpi, oftawq__bucket_rows(M));
      return 0;
    }
    return oftawq__awq_plan_fits(ctx, &p, G, why, cap);
  }
  if (sscanf(key, "awq-layout K%d N%d G%15s%c", &K, &N, g_text, &tail) == 3) {
    static const char *const names[] = {"layout"};
    int layout;
    if (K < 1 || N < 8 || !is_pow2(K) || !is_pow2(N) || !parse_fields(value, names, &layout, 1, NULL) || layout < 0 ||
        layout >= OFTAWQ__AWQ_LAYOUTS) {
      snprintf(why, cap, "malformed entry");
      return 0;
    }
    return 1;
  }
  if (sscanf(key, "rotate b%d M%d%c", &b, &M, &tail) == 2) {
    static const char *const names[] = {"wg"};
    int wg;
    if (b < 1 || b > MAX_BLOCK || M < 0 || M >= OFTAWQ__M_BUCKETS || !parse_fields(value, names, &wg, 1, NULL)) {
      snprintf(why, cap, "malformed entry");
      return 0;
    }
    return oftawq__rotate_wg_fits(ctx, wg, why, cap);
  }
  if (sscanf(key, "cayley b%d%c", &b, &tail) == 1) {
    static const char *const names[] = {"tile", "gjwg"};
    int v[2];
    if (!parse_fields(value, names, v, 2, NULL)) {
      snprintf(why, cap, "malformed entry");
      return 0;
    }
    return oftawq__cayley_params_fit(ctx, b, v[0], v[1], why, cap);
  }
  snprintf(why, cap, "unknown kind of entry");
  return 0;
}

/* Drops every entry that does not fit the device, with one warning for all of them. */
static void drop_invalid(oftawq_context *ctx, const char *path)
{
  struct oftawq__tuning *t = ctx->tuning;
  size_t i, kept = 0, dropped = 0;
  char why[192], first_key[96] = "", first_why[192] = "";
  for (i = 0; i < t->n; i++) {
    if (entry_valid(ctx, t->e[i].key, t->e[i].value, why, sizeof why)) {
      t->e[kept++] = t->e[i];
      continue;
    }
    if (!dropped++) {
      snprintf(first_key, sizeof first_key, "%s", t->e[i].key);
      snprintf(first_why, sizeof first_why, "%s", why);
    }
    free(t->e[i].key);
    free(t->e[i].value);
  }
  t->n = kept;
  if (!dropped) return;
  t->generation++;
  if (!reindex(t, t->n)) free_entries(t);
  oftawq__log(ctx, OFTAWQ_LOG_WARNING,
              "dropped %zu invalid entr%s of the tuning database '%s' (first: '%s': %s); using the defaults there",
              dropped, dropped == 1 ? "y" : "ies", path, first_key, first_why);
}

/* ------------------------------------------------------------------ the file */

/* Everything that makes tuned values valid: the device and driver, our version and kernel sources. */
static char *identity(const oftawq_context *ctx)
{
  const oftawq__kernel_source *src;
  const oftawq_device_info *i = &ctx->info;
  uint64_t h = OFTAWQ__FNV_OFFSET;
  size_t n;
  char *s;
  for (src = oftawq__kernel_sources; src->name; src++) h = oftawq__fnv1a(h, src->source, src->length);
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

/* Parses a database file in one pass; 1 when well formed and its checksum holds. Fills entries and
 * identity (a repeated key keeps its last value). `flags`: oftawq__file_read's. */
static int parse_file(const char *path, int flags, struct oftawq__tuning *out)
{
  size_t len = 0, sum_at;
  char *text = NULL, *line, *end;
  unsigned long long want = 0;
  int ok = 0, lines = 0;
  memset(out, 0, sizeof *out);
  /* a regular file only (never a FIFO or device), of bounded size */
  if (oftawq__file_read(path, flags, DB_MAX_BYTES, &text, &len, NULL, 0) != OFTAWQ_OK) return 0;
  /* the checksum is the last line; it covers every byte before it */
  if (len < 2 || text[len - 1] != '\n') goto done;
  for (sum_at = len - 1; sum_at > 0 && text[sum_at - 1] != '\n'; sum_at--) continue;
  if (strncmp(text + sum_at, "checksum ", 9) || sscanf(text + sum_at, "checksum %16llx", &want) != 1 ||
      oftawq__fnv1a(OFTAWQ__FNV_OFFSET, text, sum_at) != want || memchr(text, '\0', sum_at))
    goto done;
  text[sum_at] = '\0';
  ok = 1;
  for (line = text; ok && *line; line = end + 1, lines++) {
    char *tab;
    end = strchr(line, '\n');
    *end = '\0';
    if (lines == 0) {
      ok = !strcmp(line, DB_MAGIC);
    } else if (lines == 1) {
      ok = !strncmp(line, "device ", 7) && (out->identity = oftawq__strdup(line + 7)) != NULL;
    } else {
      ok = !strncmp(line, "entry ", 6) && (tab = strchr(line, '\t')) != NULL;
      if (ok) {
        *tab = '\0';
        ok = set_entry(out, line + 6, tab + 1) == OFTAWQ_OK;
      }
    }
  }
  ok = ok && lines >= 2;
done:
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

void oftawq__tuning_load(oftawq_context *ctx)
{
  struct oftawq__tuning file;
  char *path;
  struct stat st;
  if (!(ctx->tuning = calloc(1, sizeof *ctx->tuning))) return;
  if (!(ctx->tuning->identity = identity(ctx))) {
    free(ctx->tuning);
    ctx->tuning = NULL;
    return;
  }
  if (!(path = db_path(ctx))) return;
  if (lstat(path, &st) == 0 || errno != ENOENT) { /* present, or there but unreadable (a loop of links) */
    if (parse_file(path, OFTAWQ__FILE_NOFOLLOW, &file) && !strcmp(file.identity, ctx->tuning->identity)) {
      free(file.identity);
      file.identity = ctx->tuning->identity;
      *ctx->tuning = file;
      drop_invalid(ctx, path);
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

void oftawq__tuning_free(oftawq_context *ctx)
{
  if (!ctx->tuning) return;
  free_entries(ctx->tuning);
  free(ctx->tuning->identity);
  free(ctx->tuning);
  ctx->tuning = NULL;
}

oftawq_status oftawq__tuning_save(oftawq_context *ctx)
{
  char *path = db_path(ctx), *text;
  size_t len = 0;
  if (!path) return OFTAWQ_OK; /* memory only */
  if (!(text = serialise(ctx->tuning, &len))) {
    free(path);
    return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  }
  if (oftawq__write_file_atomic(path, text, len, "", 0, NULL, 0) != 0)
    oftawq__log(ctx, OFTAWQ_LOG_WARNING, "cannot write the tuning database '%s'", path);
  free(text);
  free(path);
  return OFTAWQ_OK;
}

/* ------------------------------------------------------------------ lookups and stores */

int oftawq__tuning_awq(const oftawq_context *ctx, int K, int N, int G, size_t rows, oftawq__awq_plan *plan)
{
  char key[96];
  const char *v;
  oftawq__awq_plan p;
  awq_key(key, sizeof key, K, N, G, rows);
  if (!(v = lookup(ctx, key)) || !oftawq__awq_plan_parse(v, &p) || !oftawq__awq_plan_fits(ctx, &p, G, NULL, 0))
    return 0;
  p.tuned = 1;
  *plan = p;
  return 1;
}

int oftawq__tuning_cayley(const oftawq_context *ctx, int b, int *tile, int *gj_wg)
{
  static const char *const names[] = {"tile", "gjwg"};
  char key[32], why[8];
  const char *v;
  int p[2];
  cayley_key(key, sizeof key, b);
  if (!(v = lookup(ctx, key)) || !parse_fields(v, names, p, 2, NULL) ||
      !oftawq__cayley_params_fit(ctx, b, p[0], p[1], why, sizeof why))
    return 0;
  *tile = p[0];
  *gj_wg = p[1];
  return 1;
}

int oftawq__tuning_rotate(const oftawq_context *ctx, int b, size_t rows, int *wg)
{
  static const char *const names[] = {"wg"};
  char key[64], why[8];
  const char *v;
  int w;
  rotate_key(key, sizeof key, b, rows);
  if (!(v = lookup(ctx, key)) || !parse_fields(v, names, &w, 1, NULL) || !oftawq__rotate_wg_fits(ctx, w, why, sizeof why))
    return 0;
  *wg = w;
  return 1;
}

int oftawq__tuning_awq_layout(const oftawq_context *ctx, int K, int N, int G, int *layout)
{
  static const char *const names[] = {"layout"};
  char key[96];
  const char *v;
  int l;
  layout_key(key, sizeof key, K, N, G);
  if (!(v = lookup(ctx, key)) || !parse_fields(v, names, &l, 1, NULL) || l < 0 || l >= OFTAWQ__AWQ_LAYOUTS) return 0;
  *layout = l;
  return 1;
}

static oftawq_status store(oftawq_context *ctx, const char *key, const char *value)
{
  if (!ctx->tuning) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "no tuning database (out of memory)");
  if (set_entry(ctx->tuning, key, value) < 0) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  return OFTAWQ_OK;
}

oftawq_status oftawq__tuning_store_awq(oftawq_context *ctx, int K, int N, int G, size_t rows, const oftawq__awq_plan *p,
                                       const char *note)
{
  char key[96], value[512];
  size_t n, i;
  awq_key(key, sizeof key, K, N, G, rows);
  oftawq__awq_plan_text(p, value, sizeof value);
  if (note && *note) {
    n = strlen(value);
    snprintf(value + n, sizeof value - n, "%s%s", NOTE_SEP, note);
    for (i = n; value[i]; i++) /* a note is one line of text */
      if ((unsigned char)value[i] < ' ') value[i] = ' ';
  }
  return store(ctx, key, value);
}

oftawq_status oftawq__tuning_store_cayley(oftawq_context *ctx, int b, int tile, int gj_wg)
{
  char key[32], value[48];
  cayley_key(key, sizeof key, b);
  snprintf(value, sizeof value, "tile=%d gjwg=%d", tile, gj_wg);
  return store(ctx, key, value);
}

oftawq_status oftawq__tuning_store_rotate(oftawq_context *ctx, int b, size_t rows, int wg)
{
  char key[64], value[32];
  rotate_key(key, sizeof key, b, rows);
  snprintf(value, sizeof value, "wg=%d", wg);
  return store(ctx, key, value);
}

oftawq_status oftawq__tuning_store_awq_layout(oftawq_context *ctx, int K, int N, int G, int layout, const char *note)
{
  char key[96], value[256];
  layout_key(key, sizeof key, K, N, G);
  snprintf(value, sizeof value, "layout=%d%s%s", layout, note && *note ? NOTE_SEP : "", note ? note : "");
  return store(ctx, key, value);
}

void oftawq__tuning_drop_awq(oftawq_context *ctx, int K, int N, int G, size_t rows, const char *why)
{
  char key[96];
  if (!ctx->tuning) return;
  awq_key(key, sizeof key, K, N, G, rows);
  oftawq__log(ctx, OFTAWQ_LOG_WARNING, "the tuned plan '%s' failed on this device (%s); using the default", key, why);
  remove_entry(ctx->tuning, key);
}

/* ------------------------------------------------------------------ public: listing, export, import */

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
  size_t i, dropped = 0;
  char why[192];
  if (!ctx || !path || !ctx->tuning) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!parse_file(path, 0, &file))
    return oftawq__fail(ctx, OFTAWQ_E_FORMAT, "'%s' is not a valid oftawq tuning database (corrupt or truncated)", path);
  if (strcmp(file.identity, ctx->tuning->identity)) {
    status = oftawq__fail(ctx, OFTAWQ_E_UNSUPPORTED, "'%s' was tuned for '%s', not this device and library ('%s')",
                          path, file.identity, ctx->tuning->identity);
  } else {
    for (i = 0; i < file.n && status == OFTAWQ_OK; i++) {
      if (!entry_valid(ctx, file.e[i].key, file.e[i].value, why, sizeof why)) {
        dropped++;
        continue;
      }
      status = store(ctx, file.e[i].key, file.e[i].value);
    }
    if (dropped)
      oftawq__log(ctx, OFTAWQ_LOG_WARNING, "skipped %zu invalid entr%s of '%s'", dropped, dropped == 1 ? "y" : "ies",
                  path);
    if (status == OFTAWQ_OK) status = oftawq__tuning_save(ctx);
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
    char path[4096], line[640];
    struct oftawq__tuning file;
    if (n <= strlen(DB_PREFIX) + strlen(DB_SUFFIX) || strncmp(e->d_name, DB_PREFIX, strlen(DB_PREFIX)) ||
        strcmp(e->d_name + n - strlen(DB_SUFFIX), DB_SUFFIX))
      continue;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
        !parse_file(path, OFTAWQ__FILE_NOFOLLOW, &file))
      continue;
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
