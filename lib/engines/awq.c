/* awq.c: AWQ GEMM base layers - validation, upload, the default plans, and the fused matmul and dense (CLBlast) paths. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef OFTAWQ_HAVE_CLBLAST
#include <clblast_c.h>
#endif

#include "engines/awq.h"
#include "engines/awq_repack.h"
#include "runtime/program.h"

#define NEVER ((size_t)-1)
/* GPUs: work-groups per compute unit the default split-K aims for (latency hiding), and the
 * work-group size it stays under. */
#define GPU_WAVES_PER_CU 4
#define GPU_MAX_WG 256
/* CPUs: work-groups per compute unit - two, for load balance between the device's threads; each group
 * rounds and stages x for itself, so more of them repeat that work (PoCL, 2 cores, against four: 1.04-1.07x
 * faster at M = 1, 1.03-1.2x at M = 8). A GEMV item of CPU_FULL_ROWS rows stages that many rows of x per
 * group: one group per compute unit (PoCL, 2 cores, 8 rows, paired against two: 0.92x the time at 2048²,
 * 0.97x at 4096²; at 2 and 4 rows 0.94-1.01x, left at two). CPU_MAX_COLS: the widest default group. */
#define CPU_GROUPS_PER_CU 2
#define CPU_FULL_ROWS 8
#define CPU_MAX_COLS 128
/* The work-group multiple assumed where the driver cannot tell (a common wave size). */
#define FALLBACK_WG_MULTIPLE 32

/* Shipped defaults until a device is tuned (oftawq tune), most specific first: the first row whose
 * platform / vendor / name substrings (NULL: any) and device type (-1: any) match the device wins.
 * The launch geometry is sized from the device (default_geometry). */
static const struct device_defaults {
  const char *platform, *vendor, *name;
  int gpu;
  size_t gemv_max_rows, dense_min_rows;   /* GEMV up to, the dense (CLBlast) path from this many rows */
  int lanes;                              /* rows x words per work-item: a CPU's SIMD width in floats (the
                                           * rows share each unpacked word, the words keep independent sums),
                                           * more where the device's registers are wider (AVX-512: 16);
                                           * 0: one word per item (GPUs: lanes are work-items) */
  int colvec;                             /* GEMV with more than one row: a vector's lanes are one word's 8
                                           * columns (AWQ_COLVEC) */
  int grows, grgroups;                    /* GEMM: rows per item, row groups per work-group */
  int prefetch;                           /* GEMV: k rows ahead a work-item prefetches its packed words */
  int prefetch_builtin;                   /* 1: prefetch with clang's builtin (the runtime's prefetch() does nothing) */
} defaults[] = {
  /* PoCL on CPUs, measured (oftawq bench, 2 cores, AVX2): one pass over the weight serves up to 8 rows,
   * 8 rows x 1 word or 1 row x 8 words per item (eight independent 8-wide sums; from 2 rows the lanes run
   * over a word's columns, one float8 sum per row and word), never the dense path. A work-item walks
   * down K one row of N/8 words at a time, a stride no hardware prefetcher follows across pages: the
   * GEMV waits on each load unless it prefetches 32 rows ahead (2.5-3x faster at 4096x4096, M = 1;
   * PoCL's own prefetch() does nothing, the kernel uses clang's builtin). The GEMM is bound by its FMAs.
   * With AVX-512 (16 floats, 32 registers; 2 Zen 4 cores) 16 lanes: 8 rows x 2 words, 4 x 4, 2 x 8, and the
   * GEMM 2 words per item with lanes over their columns (also on KC) - the old plans took 1.06-1.15x the time
   * at 8 rows, 1.03-1.17x at 2 and 4, the GEMM at 16 rows 1.13-1.27x; one word per item without lanes stays
   * for 8 lanes. Two words' columns make one float16 (one 512-bit FMA per row: cl/awq.cl, COL_WORDS). */
  {"Portable Computing Language", NULL, NULL, -1, 8, NEVER, 8, 1, 8, 1, 32, 1},
  /* GPUs: GEMV for a few tokens, dense from 256 (vLLM's switch; AutoAWQ's is 1024). */
  {NULL, NULL, NULL, 1, 8, 256, 0, 0, 4, 4, 0, 0},
  /* anything else (other CPU runtimes, accelerators) */
  {NULL, NULL, NULL, -1, 8, 256, 8, 0, 4, 1, 0, 0},
};

enum { K_MATMUL, K_ROUND, K_FINISH, K_DEQUANT, K_UNPACK, K_COUNT };
enum { SCRATCH_DENSE, SCRATCH_X, SCRATCH_Y };

struct oftawq_awq {
  oftawq_context *ctx;
  int K, N, G, chunk, has_bias;
  int layout;                    /* OFTAWQ__LAYOUT_*; interleaved: qweight repacked, `scales` holds (s, z) pairs */
  cl_mem mirror_qweight, mirror_qzeros, mirror_scales; /* interleaved: AutoAWQ's layout, made when a kernel asks */
  uint64_t id;                   /* tags the shared dense scratch while it holds this layer's weight */
  cl_mem qweight, qzeros, scales, bias;
  oftawq_awq_path forced;
  oftawq__kernel_list *kernels;  /* every variant used so far */
  oftawq__awq_plan plans[OFTAWQ__M_BUCKETS]; /* per rows bucket, valid while the database is unchanged */
  uint64_t plans_generation[OFTAWQ__M_BUCKETS];
  int dense_tiles;
};

void oftawq_awq_tensors_init(oftawq_awq_tensors *t)
{
  if (!t) return;
  memset(t, 0, sizeof *t);
  t->size = sizeof *t;
}

void oftawq_awq_destroy(oftawq_awq *awq)
{
  if (!awq) return;
  {
    cl_mem bufs[] = {awq->qweight, awq->qzeros,        awq->scales,       awq->bias,
                     awq->mirror_qweight, awq->mirror_qzeros, awq->mirror_scales};
    size_t i;
    for (i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
      if (bufs[i]) clReleaseMemObject(bufs[i]);
  }
  oftawq__kernel_list_free(awq->kernels);
  free(awq);
}

static oftawq_status upload(oftawq_awq *awq, cl_mem *out, const void *host, size_t bytes, const char *name)
{
  cl_int err = CL_SUCCESS;
  int attempt;
  for (attempt = 0; attempt < 2; attempt++) {
    if (attempt) oftawq__scratch_release_all(awq->ctx); /* memory pressure: the shared scratch goes first */
    *out = clCreateBuffer(awq->ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, (void *)(uintptr_t)host,
                          &err);
    if (*out || (err != CL_MEM_OBJECT_ALLOCATION_FAILURE && err != CL_OUT_OF_RESOURCES)) break;
  }
  if (!*out) return oftawq__cl_fail(awq->ctx, err, "uploading %s (%zu bytes)", name, bytes);
  return OFTAWQ_OK;
}

int oftawq__awq_default_layout(const oftawq_context *ctx, int K, int N, int G)
{
  int layout = OFTAWQ__LAYOUT_AWQ;
  oftawq__tuning_awq_layout(ctx, K, N, G, &layout);
  return layout != OFTAWQ__LAYOUT_AWQ && !oftawq__awq_interleave_possible(K, G) ? OFTAWQ__LAYOUT_AWQ : layout;
}

/* Repacks on the host and uploads an interleaved layout (the original tensors are not kept on the device). */
static oftawq_status upload_interleaved(oftawq_awq *awq, const oftawq_awq_tensors *t, size_t qw_bytes, size_t groups)
{
  uint32_t *packed = malloc(qw_bytes);
  uint16_t *pairs = malloc(groups * (size_t)awq->N * 4);
  oftawq_status status = OFTAWQ_OK;
  if (!packed || !pairs) {
    status = oftawq__fail(awq->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory repacking the layer");
  } else {
    oftawq__awq_repack(t->qweight, t->qzeros, t->scales, awq->K, awq->N, awq->G,
                       oftawq__awq_layout_ki(awq->layout, awq->G), packed, pairs);
    if ((status = upload(awq, &awq->qweight, packed, qw_bytes, "qweight (interleaved)")) == OFTAWQ_OK)
      status = upload(awq, &awq->scales, pairs, groups * (size_t)awq->N * 4, "scales and zeros (interleaved)");
  }
  free(packed);
  free(pairs);
  return status;
}

oftawq_status oftawq__awq_create_layout(oftawq_context *ctx, const oftawq_awq_tensors *t, int layout, oftawq_awq **out)
{
  oftawq_awq *awq = NULL;
  oftawq_status status = OFTAWQ_OK;
  size_t W, groups, qw_bytes, qz_bytes, sc_bytes;
  int G;
  if (out) *out = NULL;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_awq_create: NULL output");
  *out = NULL;
  if (!t || t->size < sizeof *t) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL or uninitialised tensors");
  if (t->K < 1 || t->N < 1)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: K (%d) and N (%d) must be positive", t->K, t->N);
  G = t->G == -1 ? t->K : t->G;
  if (G < 1 || t->K % G != 0)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "AWQ layer: group size %d must divide in_features K = %d (or be -1)", t->G, t->K);
  if (t->N % 8 != 0)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: out_features N = %d is not a multiple of 8",
                        t->N);
  if (!t->qweight || !t->qzeros || !t->scales)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: missing tensor %s",
                        !t->qweight ? "qweight" : !t->qzeros ? "qzeros" : "scales");
  if (layout < 0) layout = oftawq__awq_default_layout(ctx, t->K, t->N, G);
  if (layout < OFTAWQ__LAYOUT_AWQ || layout >= OFTAWQ__AWQ_LAYOUTS)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: unknown layout %d", layout);
  if (layout != OFTAWQ__LAYOUT_AWQ && !oftawq__awq_interleave_possible(t->K, G))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: K = %d and group %d do not allow the %s layout",
                        t->K, G, oftawq__awq_layout_name(layout));
  W = (size_t)t->N / 8;
  groups = (size_t)(t->K / G);
  if (!oftawq__mul_size((size_t)t->K, W * 4, &qw_bytes) || !oftawq__mul_size(groups, W * 4, &qz_bytes) ||
      !oftawq__mul_size(groups, (size_t)t->N * 4, &sc_bytes))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "AWQ layer: K = %d x N = %d overflows", t->K, t->N);
  sc_bytes /= 2;
  if (!(awq = calloc(1, sizeof *awq))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  awq->ctx = ctx;
  awq->K = t->K;
  awq->N = t->N;
  awq->G = G;
  awq->chunk = oftawq__awq_chunk(G);
  awq->layout = layout;
  awq->id = ++ctx->next_id;
  awq->has_bias = t->bias != NULL;
  if (layout != OFTAWQ__LAYOUT_AWQ) {
    OFTAWQ__CHECK(upload_interleaved(awq, t, qw_bytes, groups));
  } else {
    OFTAWQ__CHECK(upload(awq, &awq->qweight, t->qweight, qw_bytes, "qweight"));
    OFTAWQ__CHECK(upload(awq, &awq->qzeros, t->qzeros, qz_bytes, "qzeros"));
    OFTAWQ__CHECK(upload(awq, &awq->scales, t->scales, sc_bytes, "scales"));
  }
  if (t->bias) OFTAWQ__CHECK(upload(awq, &awq->bias, t->bias, (size_t)t->N * 2, "bias"));
  *out = awq;
  return OFTAWQ_OK;
fail:
  oftawq_awq_destroy(awq);
  return status;
}

oftawq_status oftawq_awq_create(oftawq_context *ctx, const oftawq_awq_tensors *t, oftawq_awq **out)
{
  return oftawq__awq_create_layout(ctx, t, -1, out);
}

static int have_dense(void)
{
#ifdef OFTAWQ_HAVE_CLBLAST
  return 1;
#else
  return 0;
#endif
}

oftawq_status oftawq_awq_set_path(oftawq_awq *awq, oftawq_awq_path path)
{
  if (!awq || path < OFTAWQ_AWQ_AUTO || path > OFTAWQ_AWQ_DENSE) return OFTAWQ_E_INVALID_ARGUMENT;
  awq->forced = path;
  return OFTAWQ_OK;
}

static int matches(const char *have, const char *want) { return !want || strstr(have, want) != NULL; }

static const struct device_defaults *device_row(const oftawq_device_info *i)
{
  const struct device_defaults *d = defaults;
  while (d < defaults + sizeof defaults / sizeof defaults[0] - 1 &&
         !(matches(i->platform_name, d->platform) && matches(i->vendor, d->vendor) && matches(i->name, d->name) &&
           (d->gpu < 0 || d->gpu == i->is_gpu)))
    d++;
  return d;
}

/* The AWQ kernels' preferred work-group multiple, asked once per context (GPUs only: a CPU device gets
 * its parallelism from work-groups, not from split-K, so it needs no probe program). */
static unsigned wg_multiple(oftawq_context *ctx)
{
  cl_kernel k = NULL;
  size_t m = 0;
  if (ctx->awq_wg_multiple) return ctx->awq_wg_multiple;
  ctx->awq_wg_multiple = FALLBACK_WG_MULTIPLE;
  if (ctx->cl_ctx && !ctx->info.is_cpu &&
      oftawq__kernel_create(ctx, "awq", "-DAWQ_G=1 -DAWQ_DENSE=1", "awq_round_x", &k) == OFTAWQ_OK) {
    if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE, sizeof m, &m, NULL) ==
            CL_SUCCESS && m > 0 && m <= 1024)
      ctx->awq_wg_multiple = (unsigned)m;
    clReleaseKernel(k);
  }
  return ctx->awq_wg_multiple;
}

static int floor_pow2(size_t v)
{
  int p = 1;
  while ((size_t)p * 2 <= v && p < (1 << 30)) p *= 2;
  return p;
}

/* Whether a plan for `rows` rows takes several words per item in a layout (KC at one row keeps one: its lanes
 * hold 8 k of one column). */
static int several_words(int layout, int colvec, size_t rows)
{
  return oftawq__awq_layout_multiword(layout, colvec) && !(layout == OFTAWQ__LAYOUT_KC && rows == 1);
}

/* The largest power of two up to `vec` (at most OFTAWQ__MAX_VEC) that divides the N/8 words. */
static int fitting_vec(int vec, int N)
{
  if (vec > OFTAWQ__MAX_VEC) vec = OFTAWQ__MAX_VEC;
  while (vec > 1 && (N / 8) % vec) vec /= 2;
  return vec;
}

/* Split-K and work-group width for `items` work-items along N: on a GPU enough work-items that every
 * compute unit holds several waves (small N gets a deeper split), on a CPU enough work-groups to keep
 * every thread busy (`groups` per compute unit). */
static void default_geometry(oftawq_context *ctx, size_t items, size_t groups, int *cols, int *split)
{
  const oftawq_device_info *i = &ctx->info;
  size_t cus = i->compute_units ? i->compute_units : 1, max_wg = i->max_work_group_size ? i->max_work_group_size : 1;
  if (!i->is_gpu) {
    *split = 1;
    *cols = floor_pow2(items / (groups * cus));
    if (*cols > CPU_MAX_COLS) *cols = CPU_MAX_COLS;
  } else {
    size_t m = wg_multiple(ctx), want = cus * GPU_WAVES_PER_CU * m;
    *split = 1;
    while ((size_t)*split * items < want && *split < 64) *split *= 2;
    *cols = m < items ? (int)m : floor_pow2(items);
    while ((size_t)*cols * *split > GPU_MAX_WG && *cols > 1) *cols /= 2;
  }
  while ((size_t)*cols * *split > max_wg && *cols > 1) *cols /= 2;
  while ((size_t)*cols * *split > max_wg && *split > 1) *split /= 2;
}

/* The GEMV's work-groups for a plan's words per item: the device's default, with no idle split lanes. */
static void default_gemv_geometry(oftawq_context *ctx, int K, int N, int G, oftawq__awq_plan *p)
{
  const size_t groups = p->rpi >= CPU_FULL_ROWS ? 1 : CPU_GROUPS_PER_CU;
  default_geometry(ctx, (size_t)(N / 8 / p->vec), groups, &p->cols, &p->split);
  while (p->split > 1 && (size_t)p->split * (size_t)oftawq__awq_chunk(G) > (size_t)K) p->split /= 2;
}

void oftawq__awq_default_plan(oftawq_context *ctx, int K, int N, int G, size_t rows, int layout, oftawq__awq_plan *p)
{
  const struct device_defaults *d = device_row(&ctx->info);
  /* a CPU with wider registers than the row's (AVX-512: 16 floats, and 32 registers) keeps as many more sums */
  const int lanes = d->lanes && (int)ctx->float_width > d->lanes ? (int)ctx->float_width : d->lanes;
  int rpi;
  memset(p, 0, sizeof *p);
  p->path = rows <= d->gemv_max_rows ? OFTAWQ_AWQ_GEMV : rows >= d->dense_min_rows ? OFTAWQ_AWQ_DENSE : OFTAWQ_AWQ_GEMM;
  for (rpi = 1; rpi < OFTAWQ__MAX_ROWS_PER_ITEM && (size_t)rpi < rows;) rpi *= 2; /* one pass serves every row */
  p->rpi = rpi;
  p->prefetch = d->prefetch;
  /* interleaved: a CPU's SIMD lanes are a word's 8 columns (on KC at one row, 8 k of one column) */
  p->colvec = layout != OFTAWQ__LAYOUT_AWQ && lanes > 1 ? 1 : rows > 1 ? d->colvec : 0;
  p->vec = several_words(layout, p->colvec, rows) ? fitting_vec(lanes > rpi ? lanes / rpi : 1, N) : 1;
  p->gvec = fitting_vec(lanes > d->grows ? lanes / d->grows : 1, N);
  p->gcolvec = p->gvec > 1 ? d->colvec : 0; /* several words at 8 rows: lanes over columns, not per nibble */
  if (!oftawq__awq_layout_multiword(layout, p->gcolvec)) p->gvec = 1;
  default_gemv_geometry(ctx, K, N, G, p);
  p->grows = d->grows;
  p->grgroups = d->grgroups;
  default_geometry(ctx, (size_t)(N / 8 / p->gvec), CPU_GROUPS_PER_CU, &p->gcols, &rpi);
  while ((size_t)p->gcols * p->grgroups > (ctx->info.max_work_group_size ? ctx->info.max_work_group_size : 1) &&
         p->gcols > 1)
    p->gcols /= 2;
  /* a device whose local memory cannot hold the default's tiles: halve them until they fit */
  while (ctx->info.local_mem_size && !oftawq__awq_plan_fits(ctx, p, G, NULL, 0) &&
         (p->split > 1 || p->cols > 1 || p->grgroups > 1 || p->gcols > 1 || p->rpi > 1 || p->grows > 1)) {
    if (p->split > 1) p->split /= 2;
    else if (p->grgroups > 1) p->grgroups /= 2;
    else if (p->rpi > 1) p->rpi /= 2;
    else if (p->grows > 1) p->grows /= 2;
    else if (p->cols > 1) p->cols /= 2;
    else p->gcols /= 2;
  }
}

/* The bucket's plan as made (default) or measured (tuned): up to 8 rows the buckets are powers of two and a
 * plan's rows per item those of its bucket, so every row an item serves is there. */
void oftawq__awq_plan_for(oftawq_awq *awq, size_t rows, oftawq__awq_plan *p)
{
  int b = oftawq__m_bucket(rows);
  uint64_t gen = oftawq__tuning_generation(awq->ctx) + 1; /* 0: never computed */
  if (awq->plans_generation[b] != gen) {
    oftawq__awq_default_plan(awq->ctx, awq->K, awq->N, awq->G, (size_t)oftawq__bucket_rows(b), awq->layout,
                             &awq->plans[b]);
    oftawq__tuning_awq(awq->ctx, awq->K, awq->N, awq->G, rows, &awq->plans[b]);
    awq->plans_generation[b] = gen;
  }
  *p = awq->plans[b];
  if (awq->forced != OFTAWQ_AWQ_AUTO) p->path = awq->forced;
  if (p->path == OFTAWQ_AWQ_DENSE && !have_dense()) p->path = OFTAWQ_AWQ_GEMM;
}

oftawq_awq_path oftawq_awq_path_for(const oftawq_awq *awq, size_t rows)
{
  oftawq__awq_plan p;
  if (!awq) return OFTAWQ_AWQ_AUTO;
  oftawq__awq_plan_for((oftawq_awq *)(uintptr_t)awq, rows, &p); /* only its plan cache changes */
  return p.path;
}

/* The kernel `which` for a launch geometry (and dtype), from the layer's small cache. Each program holds
 * only the kernels of its kind (SPEC 9: small programs). */
static oftawq_status kernel(oftawq_awq *awq, oftawq_dtype dtype, int which, const oftawq__awq_geometry *g,
                            int test_wrong, const oftawq__fused_oft *fused, cl_kernel *out)
{
  static const char *const names[K_COUNT] = {"awq_matmul", "awq_round_x", "awq_finish", "awq_dequant",
                                             "awq_unpack_interleaved"};
  char opts[384], fuse[64] = "";
  if (which != K_MATMUL) {
    snprintf(opts, sizeof opts, "-DAWQ_G=%d -DAWQ_CHUNK=%d -DX_DTYPE=%d -DAWQ_HAS_BIAS=%d -DAWQ_DENSE=1 -DAWQ_LAYOUT=%d",
             awq->G, awq->chunk, (int)dtype, awq->has_bias, awq->layout);
    return oftawq__kernel_cached(awq->ctx, &awq->kernels, "awq", opts, names[which], out);
  }
  if (fused && fused->R) snprintf(fuse, sizeof fuse, " -DAWQ_FUSE_OFT=1 -DOFT_BLOCK=%d", fused->block_size);
  snprintf(opts, sizeof opts,
           "-DAWQ_G=%d -DAWQ_CHUNK=%d -DX_DTYPE=%d -DAWQ_HAS_BIAS=%d -DAWQ_COLS=%d -DAWQ_SPLIT=%d -DAWQ_RGROUPS=%d "
           "-DAWQ_ROWS=%d -DAWQ_VEC=%d -DAWQ_COLVEC=%d -DAWQ_PREFETCH=%d -DAWQ_LAYOUT=%d -DAWQ_WI_LOOPS=%d%s%s%s",
           awq->G, awq->chunk, (int)dtype, awq->has_bias, g->cols, g->split, g->rgroups, g->rows, g->vec, g->colvec,
           g->prefetch, awq->layout, oftawq__awq_wi_loops(awq->ctx),
           g->prefetch && device_row(&awq->ctx->info)->prefetch_builtin ? " -DAWQ_PREFETCH_BUILTIN=1" : "",
           test_wrong ? " -DAWQ_TEST_WRONG=1" : "", fuse);
  return oftawq__kernel_cached(awq->ctx, &awq->kernels, "awq", opts, names[which], out);
}

#ifdef OFTAWQ_HAVE_CLBLAST
/* Large M: x rounded to fp32, then per K tile (as many rows of the dequantised weight as the device
 * allocates in one buffer) a dequantisation into the context's shared scratch and an SGEMM that adds
 * the tile's share; then bias, rounding and the output dtype. A weight that fits one tile stays in the
 * scratch for the next call as long as no other layer needs it. Returns 1 in *fits_out when the
 * activations do not fit a buffer (the caller takes the GEMM path). */
static oftawq_status dense_forward(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                   cl_uint n_wait, const cl_event *wait, cl_event *done, int *no_room)
{
  oftawq_context *ctx = awq->ctx;
  const uint64_t limit = oftawq__scratch_limit(ctx);
  const size_t K = (size_t)awq->K, N = (size_t)awq->N, row_bytes = N * sizeof(float);
  size_t tile = (size_t)(limit / row_bytes), k0, g[2];
  cl_uint uK = (cl_uint)K, uN = (cl_uint)N, n, nrows = (cl_uint)rows;
  cl_mem dense, sx, sy;
  uint64_t *tag, *unused;
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  int attempt;

  *no_room = 0;
  awq->dense_tiles = 0;
  if (tile > K) tile = K;
  if (tile < 1 || (uint64_t)rows * K * 4 > limit || (uint64_t)rows * N * 4 > limit) {
    *no_room = 1;
    return OFTAWQ_OK;
  }
  if (!ctx->in_order && (err = clFinish(ctx->queue)) != CL_SUCCESS) /* the shared scratch is about to be reused */
    return oftawq__cl_fail(ctx, err, "waiting for the queue");
  for (attempt = 0;; attempt++) { /* an allocation under memory pressure may release the ones before it */
    if ((status = oftawq__scratch_shared(ctx, SCRATCH_DENSE, tile * row_bytes, &dense, &tag)) < 0 ||
        (status = oftawq__scratch_shared(ctx, SCRATCH_X, rows * K * 4, &sx, &unused)) < 0 ||
        (status = oftawq__scratch_shared(ctx, SCRATCH_Y, rows * N * 4, &sy, &unused)) < 0)
      return status;
    if (ctx->scratch[SCRATCH_DENSE].buf == dense && ctx->scratch[SCRATCH_X].buf == sx) break;
    if (attempt == 2) return oftawq__fail(ctx, OFTAWQ_E_DEVICE_MEMORY, "no room for the dense path's scratch");
  }
  if ((status = kernel(awq, dtype, K_ROUND, NULL, 0, NULL, &k)) < 0) return status;
  n = (cl_uint)(rows * K);
  err = OFTAWQ__ARG(k, 0, x) | OFTAWQ__ARG(k, 1, sx) | OFTAWQ__ARG(k, 2, n);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting awq_round_x arguments");
  g[0] = n;
  if ((status = oftawq__enqueue(ctx, k, "awq_round_x", 1, g, NULL, n_wait, wait, NULL)) < 0) return status;
  for (k0 = 0; k0 < K; k0 += tile) {
    size_t tk = K - k0 < tile ? K - k0 : tile;
    cl_uint uk0 = (cl_uint)k0;
    CLBlastStatusCode cb;
    if (!(tile == K && *tag == awq->id)) { /* dequantise this tile (unless the scratch still holds it) */
      if ((status = kernel(awq, dtype, K_DEQUANT, NULL, 0, NULL, &k)) < 0) return status;
      err = OFTAWQ__ARG(k, 0, awq->qweight) | OFTAWQ__ARG(k, 1, awq->qzeros) | OFTAWQ__ARG(k, 2, awq->scales) |
            OFTAWQ__ARG(k, 3, dense) | OFTAWQ__ARG(k, 4, uK) | OFTAWQ__ARG(k, 5, uN) | OFTAWQ__ARG(k, 6, uk0);
      if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting awq_dequant arguments");
      g[0] = N / 8;
      g[1] = tk;
      *tag = 0;
      if ((status = oftawq__enqueue(ctx, k, "awq_dequant", 2, g, NULL, 0, NULL, NULL)) < 0) return status;
      if (tile == K) *tag = awq->id;
    }
    cb = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, rows, N, tk, 1.0f, sx, k0, K,
                      dense, 0, N, k0 ? 1.0f : 0.0f, sy, 0, N, &ctx->queue, NULL);
    if (cb != CLBlastSuccess) return oftawq__fail(ctx, OFTAWQ_E_OPENCL, "CLBlastSgemm failed with status %d", (int)cb);
    awq->dense_tiles++;
  }
  if ((status = kernel(awq, dtype, K_FINISH, NULL, 0, NULL, &k)) < 0) return status;
  err = OFTAWQ__ARG(k, 0, sy) | OFTAWQ__ARG(k, 1, y) | OFTAWQ__ARG(k, 2, awq->bias) | OFTAWQ__ARG(k, 3, uN) |
        OFTAWQ__ARG(k, 4, nrows);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting awq_finish arguments");
  g[0] = N;
  g[1] = rows;
  return oftawq__enqueue(ctx, k, "awq_finish", 2, g, NULL, 0, NULL, done);
}
#endif

int oftawq__awq_can_fuse(const oftawq_awq *awq, const oftawq__awq_plan *p, size_t rows)
{
  (void)awq;
  (void)rows; /* each work-group rotates the rows it stages */
  return p->path == OFTAWQ_AWQ_GEMV || p->path == OFTAWQ_AWQ_GEMM;
}

/* The matmul kernel of a plan, its arguments set and its launch; fails when the built kernel cannot
 * run the plan's work-group on this device. */
static oftawq_status enqueue_matmul(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                    const oftawq__awq_plan *p, const oftawq__fused_oft *fused, cl_uint n_wait,
                                    const cl_event *wait, cl_event *done)
{
  oftawq_context *ctx = awq->ctx;
  oftawq__awq_geometry g;
  cl_mem R = fused ? fused->R : NULL;
  cl_uint share = R ? (cl_uint)fused->share : 0, K = (cl_uint)awq->K, N = (cl_uint)awq->N, nrows = (cl_uint)rows;
  size_t gl[3], lo[3], max_wg = 0;
  oftawq_status status;
  cl_kernel k;
  cl_int err;
  oftawq__awq_plan_geometry(p, &g);
  g.vec = oftawq__awq_layout_multiword(awq->layout, g.colvec) ? fitting_vec(g.vec, awq->N) : 1;
  if ((status = kernel(awq, dtype, K_MATMUL, &g, p->test_wrong, fused, &k)) < 0) return status;
  if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL) ==
          CL_SUCCESS &&
      (size_t)g.cols * g.split * g.rgroups > max_wg)
    return oftawq__fail(ctx, OFTAWQ_E_OPENCL, "the AWQ kernel runs at most %zu work-items per group here, the plan asks %d",
                        max_wg, g.cols * g.split * g.rgroups);
  err = OFTAWQ__ARG(k, 0, x) | OFTAWQ__ARG(k, 1, y) | OFTAWQ__ARG(k, 2, awq->qweight) |
        OFTAWQ__ARG(k, 3, awq->qzeros) | OFTAWQ__ARG(k, 4, awq->scales) | OFTAWQ__ARG(k, 5, awq->bias) |
        OFTAWQ__ARG(k, 6, K) | OFTAWQ__ARG(k, 7, N) | OFTAWQ__ARG(k, 8, nrows) | OFTAWQ__ARG(k, 9, R) |
        OFTAWQ__ARG(k, 10, share);
  if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting awq_matmul arguments");
  gl[0] = (size_t)awq->N / 8 / (size_t)g.vec;
  gl[1] = (size_t)g.split;
  gl[2] = (rows + (size_t)g.rows - 1) / (size_t)g.rows;
  lo[0] = (size_t)g.cols;
  lo[1] = (size_t)g.split;
  lo[2] = (size_t)g.rgroups;
  return oftawq__enqueue(ctx, k, "awq_matmul", 3, gl, lo, n_wait, wait, done);
}

oftawq_status oftawq__awq_enqueue_plan(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                       const oftawq__awq_plan *p, const oftawq__fused_oft *fused, cl_uint n_wait,
                                       const cl_event *wait, cl_event *done)
{
  oftawq_context *ctx = awq->ctx;
  oftawq__awq_plan fallback;
  oftawq_status status;
  if (rows > UINT32_MAX / (size_t)(awq->K > awq->N ? awq->K : awq->N))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "too many rows (%zu)", rows);
#ifdef OFTAWQ_HAVE_CLBLAST
  if (p->path == OFTAWQ_AWQ_DENSE) {
    int no_room = 0;
    if ((status = dense_forward(awq, dtype, x, y, rows, n_wait, wait, done, &no_room)) < 0 || !no_room) return status;
    fallback = *p; /* the activations do not fit one buffer: the GEMM serves */
    fallback.path = OFTAWQ_AWQ_GEMM;
    return enqueue_matmul(awq, dtype, x, y, rows, &fallback, fused, n_wait, wait, done);
  }
#endif
  status = enqueue_matmul(awq, dtype, x, y, rows, p, fused, n_wait, wait, done);
  if (status < 0 && p->tuned) { /* a cache makes runs faster, never breaks them */
    oftawq_awq_path path = p->path == OFTAWQ_AWQ_DENSE ? OFTAWQ_AWQ_GEMM : p->path;
    oftawq__tuning_drop_awq(ctx, awq->K, awq->N, awq->G, rows, oftawq_context_last_error(ctx));
    oftawq__awq_default_plan(ctx, awq->K, awq->N, awq->G, rows, awq->layout, &fallback);
    fallback.path = path;
    status = enqueue_matmul(awq, dtype, x, y, rows, &fallback, fused, n_wait, wait, done);
  }
  return status;
}

oftawq_status oftawq__awq_enqueue(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                  cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  oftawq__awq_plan p;
  oftawq__awq_plan_for(awq, rows, &p);
  return oftawq__awq_enqueue_plan(awq, dtype, x, y, rows, &p, NULL, n_wait, wait, done);
}

static oftawq_status forward_op(void *obj, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows, cl_uint n_wait,
                                const cl_event *wait, cl_event *done)
{
  return oftawq__awq_enqueue(obj, dtype, x, y, rows, n_wait, wait, done);
}

oftawq_status oftawq__awq_run(oftawq_awq *awq, oftawq__device_op op, void *obj, oftawq_dtype dtype, int on_host,
                              const void *x, void *y, cl_mem dx, cl_mem dy, size_t rows, cl_uint n_wait,
                              const cl_event *wait, cl_event *done)
{
  oftawq_status status;
  size_t xb, yb;
  if (done) *done = NULL;
  if ((status = oftawq__rows_bytes(awq->ctx, dtype, rows, (size_t)awq->K, &xb)) < 0 ||
      (status = oftawq__rows_bytes(awq->ctx, dtype, rows, (size_t)awq->N, &yb)) < 0)
    return status;
  if (on_host) return oftawq__run_on_host(awq->ctx, op, obj, dtype, x, xb, y, yb, rows);
  return oftawq__run_on_device(awq->ctx, op, obj, dtype, dx, xb, dy, yb, rows, n_wait, wait, done);
}

oftawq_status oftawq_awq_forward_cl(oftawq_awq *awq, oftawq_dtype dtype, cl_mem x, cl_mem y, size_t rows,
                                    cl_uint n_wait, const cl_event *wait, cl_event *done)
{
  if (done) *done = NULL;
  if (!awq) return OFTAWQ_E_INVALID_ARGUMENT;
  return oftawq__awq_run(awq, forward_op, awq, dtype, 0, NULL, NULL, x, y, rows, n_wait, wait, done);
}

oftawq_status oftawq_awq_forward(oftawq_awq *awq, oftawq_dtype dtype, const void *x, void *y, size_t rows)
{
  if (!awq) return OFTAWQ_E_INVALID_ARGUMENT;
  if (rows && (!x || !y)) return oftawq__fail(awq->ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL x or y");
  return oftawq__awq_run(awq, forward_op, awq, dtype, 1, x, y, NULL, NULL, rows, 0, NULL, NULL);
}

oftawq_status oftawq_awq_get_shape(const oftawq_awq *awq, int *K, int *N, int *G, int *has_bias)
{
  if (!awq) return OFTAWQ_E_INVALID_ARGUMENT;
  if (K) *K = awq->K;
  if (N) *N = awq->N;
  if (G) *G = awq->G;
  if (has_bias) *has_bias = awq->has_bias;
  return OFTAWQ_OK;
}

oftawq_context *oftawq__awq_context(const oftawq_awq *awq) { return awq->ctx; }

/* An interleaved layer's tensors in AutoAWQ's layout, unpacked on the device into buffers the layer keeps from
 * then on. */
static oftawq_status unpack_interleaved(oftawq_awq *awq)
{
  oftawq_context *ctx = awq->ctx;
  const size_t W = (size_t)awq->N / 8, groups = (size_t)(awq->K / awq->G);
  const size_t bytes[3] = {(size_t)awq->K * W * 4, groups * W * 4, groups * (size_t)awq->N * 2};
  cl_mem *bufs[3] = {&awq->mirror_qweight, &awq->mirror_qzeros, &awq->mirror_scales};
  cl_uint K = (cl_uint)awq->K, N = (cl_uint)awq->N;
  size_t g[2] = {W, (size_t)awq->K};
  oftawq_status status;
  cl_kernel k;
  cl_int err = CL_SUCCESS;
  int i;
  for (i = 0; i < 3; i++)
    if (!(*bufs[i] = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes[i], NULL, &err))) {
      status = oftawq__cl_fail(ctx, err, "allocating %zu bytes for the AutoAWQ layout", bytes[i]);
      goto fail;
    }
  if ((status = kernel(awq, OFTAWQ_F32, K_UNPACK, NULL, 0, NULL, &k)) < 0) goto fail;
  err = OFTAWQ__ARG(k, 0, awq->qweight) | OFTAWQ__ARG(k, 1, awq->scales) | OFTAWQ__ARG(k, 2, awq->mirror_qweight) |
        OFTAWQ__ARG(k, 3, awq->mirror_qzeros) | OFTAWQ__ARG(k, 4, awq->mirror_scales) | OFTAWQ__ARG(k, 5, K) |
        OFTAWQ__ARG(k, 6, N);
  if (err != CL_SUCCESS) {
    status = oftawq__cl_fail(ctx, err, "setting awq_unpack_interleaved arguments");
    goto fail;
  }
  if ((status = oftawq__enqueue(ctx, k, "awq_unpack_interleaved", 2, g, NULL, 0, NULL, NULL)) < 0 ||
      (status = oftawq__ordered(ctx)) < 0)
    goto fail;
  return OFTAWQ_OK;
fail:
  for (i = 0; i < 3; i++) {
    if (*bufs[i]) clReleaseMemObject(*bufs[i]);
    *bufs[i] = NULL;
  }
  return status;
}

oftawq_status oftawq__awq_buffers(oftawq_awq *awq, cl_mem *qweight, cl_mem *qzeros, cl_mem *scales)
{
  oftawq_status status;
  if (awq->layout != OFTAWQ__LAYOUT_AWQ) {
    if (!awq->mirror_qweight && (status = unpack_interleaved(awq)) < 0) return status;
    *qweight = awq->mirror_qweight;
    *qzeros = awq->mirror_qzeros;
    *scales = awq->mirror_scales;
    return OFTAWQ_OK;
  }
  *qweight = awq->qweight;
  *qzeros = awq->qzeros;
  *scales = awq->scales;
  return OFTAWQ_OK;
}

int oftawq__awq_dense_tiles(const oftawq_awq *awq) { return awq->dense_tiles; }

size_t oftawq__awq_device_bytes(const oftawq_awq *awq)
{
  size_t W = (size_t)awq->N / 8, groups = (size_t)(awq->K / awq->G);
  size_t awq_layout = (size_t)awq->K * W * 4 + groups * W * 4 + groups * (size_t)awq->N * 2;
  size_t interleaved = (size_t)awq->K * W * 4 + groups * (size_t)awq->N * 4;
  return (awq->layout != OFTAWQ__LAYOUT_AWQ ? interleaved + (awq->mirror_qweight ? awq_layout : 0) : awq_layout) +
         (awq->has_bias ? (size_t)awq->N * 2 : 0);
}

int oftawq__awq_layout(const oftawq_awq *awq) { return awq->layout; }
