/* cpu_int4.c: the benchmark's native peer - a multithreaded plain-C int4 GEMV/GEMM on the host CPU over AutoAWQ's own
 * tensors, written for the compiler's auto-vectorisation (what an app would run on the phone's CPU instead). */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/ref.h"
#include "runtime/tuning.h"
#include "tools/cpu_int4.h"

/* k rows one pass over a block of columns combines (register blocking along K). */
#define K_UNROLL 4
/* Column blocks are multiples of this many packed words (a cache line of them). */
#define WORD_ALIGN 16

#if defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((optimize("O3")))  /* the vectoriser's full cost model, whatever the build's -O */
#else
#define HOT
#endif
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_AVX2_CLONE 1
#endif

typedef struct worker {
  struct oftawq__cpu_int4 *p;
  pthread_t thread;
  int j0, j1;                /* packed-word columns */
  float *dot, *acc, *q;      /* [rows][8][R], [rows][8][R], [K_UNROLL][8][R] */
  float *sx;                 /* [rows]: sum of x over the chunk */
} worker;

struct oftawq__cpu_int4 {
  const uint32_t *qw, *qz;
  const uint16_t *sc, *bias;
  int K, N, G, chunk, max_rows, threads;
  float *xr;                 /* fp16-rounded input, [rows][K] */
  const float *x;
  float *y;
  int rows;
  worker *w;
  int started;               /* worker threads running */
  pthread_mutex_t lock;
  pthread_cond_t go, done;
  unsigned long generation;  /* bumped per call */
  int pending, quit;
};

/* Bits of an IEEE half to float, exactly, without branches for finite values. */
static inline float half_bits(uint16_t h)
{
  union {
    uint32_t u;
    float f;
  } a;
  float v;
  if ((h & 0x7c00u) == 0x7c00u) return oftawq__half_to_float(h);
  a.u = (uint32_t)(h & 0x7fffu) << 13;
  v = a.f * 0x1p112f;
  return (h & 0x8000u) ? -v : v;
}

/* The nearest fp16 value (ties to even) as a float: the bit operations of cl/common.cl's round_half. */
static inline float round_half(float f)
{
  const float a = fabsf(f);
  uint32_t u;
  if (a >= 65520.0f) return isnan(f) ? f : copysignf(INFINITY, f);
  if (a < 6.103515625e-05f) return rintf(f * 16777216.0f) * 5.9604644775390625e-08f; /* subnormal: 2^-24 steps */
  memcpy(&u, &f, sizeof u);
  u += 0xfffu + ((u >> 13) & 1u);
  u &= 0xffffe000u;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Nibble c of a word left in place (the top one moved down 4 bits): q * 2^shift[c], undone by the
 * chunk's scale, so the sums are those of q itself. */
#define NIB0(v) (float)(int32_t)((v) & 0xfu)
#define NIB1(v) (float)(int32_t)((v) & 0xf0000u)
#define NIB2(v) (float)(int32_t)((v) & 0xf0u)
#define NIB3(v) (float)(int32_t)((v) & 0xf00000u)
#define NIB4(v) (float)(int32_t)((v) & 0xf00u)
#define NIB5(v) (float)(int32_t)((v) & 0xf000000u)
#define NIB6(v) (float)(int32_t)((v) & 0xf000u)
#define NIB7(v) (float)(int32_t)(((v) >> 4) & 0xf000000u)
static const float unscale[8] = {1.0f, 0x1p-16f, 0x1p-4f, 0x1p-20f, 0x1p-8f, 0x1p-24f, 0x1p-12f, 0x1p-24f};
static const uint32_t zmask[8] = {0xfu, 0xf0000u, 0xf0u, 0xf00000u, 0xf00u, 0xf000000u, 0xf000u, 0};

/* One row: d[c][j] += sum over K_UNROLL k of x_k * q_k[c][j], straight from the packed words. */
static inline __attribute__((always_inline)) void row_fused(size_t R, float *restrict d0, float *restrict d1,
                                                            float *restrict d2, float *restrict d3, float *restrict d4,
                                                            float *restrict d5, float *restrict d6, float *restrict d7,
                                                            const uint32_t *restrict r0, const uint32_t *restrict r1,
                                                            const uint32_t *restrict r2, const uint32_t *restrict r3,
                                                            float x0, float x1, float x2, float x3)
{
  size_t j;
#define STEP(v, x)                                                                                                     \
  a0 += (x) * NIB0(v), a1 += (x) * NIB1(v), a2 += (x) * NIB2(v), a3 += (x) * NIB3(v), a4 += (x) * NIB4(v),            \
    a5 += (x) * NIB5(v), a6 += (x) * NIB6(v), a7 += (x) * NIB7(v)
  for (j = 0; j < R; j++) {
    float a0 = d0[j], a1 = d1[j], a2 = d2[j], a3 = d3[j], a4 = d4[j], a5 = d5[j], a6 = d6[j], a7 = d7[j];
    const uint32_t v0 = r0[j], v1 = r1[j], v2 = r2[j], v3 = r3[j];
    STEP(v0, x0);
    STEP(v1, x1);
    STEP(v2, x2);
    STEP(v3, x3);
    d0[j] = a0, d1[j] = a1, d2[j] = a2, d3[j] = a3, d4[j] = a4, d5[j] = a5, d6[j] = a6, d7[j] = a7;
  }
#undef STEP
}

/* Several rows: the K_UNROLL words of each column unpacked once into q[k][c][j]. */
static inline __attribute__((always_inline)) void unpack(size_t R, const uint32_t *restrict r, float *restrict q)
{
  size_t j;
  for (j = 0; j < R; j++) {
    const uint32_t v = r[j];
    q[0 * R + j] = NIB0(v), q[1 * R + j] = NIB1(v), q[2 * R + j] = NIB2(v), q[3 * R + j] = NIB3(v);
    q[4 * R + j] = NIB4(v), q[5 * R + j] = NIB5(v), q[6 * R + j] = NIB6(v), q[7 * R + j] = NIB7(v);
  }
}

static inline __attribute__((always_inline)) void row_from_q(size_t n, float *restrict d, const float *restrict q0,
                                                             const float *restrict q1, const float *restrict q2,
                                                             const float *restrict q3, float x0, float x1, float x2,
                                                             float x3)
{
  size_t i;
  for (i = 0; i < n; i++) {
    float a = d[i];
    a += x0 * q0[i];
    a += x1 * q1[i];
    a += x2 * q2[i];
    a += x3 * q3[i];
    d[i] = a;
  }
}

static inline __attribute__((always_inline)) void row_single(size_t n, float *restrict d, const float *restrict q,
                                                             float x)
{
  size_t i;
  for (i = 0; i < n; i++) d[i] += x * q[i];
}

/* The share of one worker: its columns, every row. */
static inline __attribute__((always_inline)) void compute(struct oftawq__cpu_int4 *p, worker *w)
{
  const size_t R = (size_t)(w->j1 - w->j0), W = (size_t)p->N / 8, K = (size_t)p->K, N = (size_t)p->N;
  const int rows = p->rows, chunk = p->chunk;
  size_t k0, k, j;
  int m, c;
  if (!R) return;
  memset(w->acc, 0, (size_t)rows * 8 * R * sizeof(float));
  for (k0 = 0; k0 < K; k0 += (size_t)chunk) {
    const size_t g = k0 / (size_t)p->G;
    float *sx = w->sx;
    memset(w->dot, 0, (size_t)rows * 8 * R * sizeof(float));
    for (m = 0; m < rows; m++) {
      const float *xm = p->xr + (size_t)m * K;
      float s = 0.0f;
      for (k = k0; k < k0 + (size_t)chunk; k++) s += xm[k];
      sx[m] = s;
    }
    for (k = k0; k < k0 + (size_t)chunk;) {
      const uint32_t *r = p->qw + k * W + (size_t)w->j0;
      if (k + K_UNROLL <= k0 + (size_t)chunk) {
        if (rows == 1) {
          const float *xm = p->xr + k;
          float *d = w->dot;
          row_fused(R, d, d + R, d + 2 * R, d + 3 * R, d + 4 * R, d + 5 * R, d + 6 * R, d + 7 * R, r, r + W, r + 2 * W,
                    r + 3 * W, xm[0], xm[1], xm[2], xm[3]);
        } else {
          int u;
          for (u = 0; u < K_UNROLL; u++) unpack(R, r + (size_t)u * W, w->q + (size_t)u * 8 * R);
          for (m = 0; m < rows; m++) {
            const float *xm = p->xr + (size_t)m * K + k;
            row_from_q(8 * R, w->dot + (size_t)m * 8 * R, w->q, w->q + 8 * R, w->q + 16 * R, w->q + 24 * R, xm[0],
                       xm[1], xm[2], xm[3]);
          }
        }
        k += K_UNROLL;
      } else { /* a chunk that is not a multiple of K_UNROLL: one k at a time */
        unpack(R, r, w->q);
        for (m = 0; m < rows; m++) row_single(8 * R, w->dot + (size_t)m * 8 * R, w->q, p->xr[(size_t)m * K + k]);
        k++;
      }
    }
    /* zero point and scale once per chunk: s * (sum x q - z sum x) */
    for (c = 0; c < 8; c++)
      for (j = 0; j < R; j++) {
        const uint32_t zw = p->qz[g * W + (size_t)w->j0 + j];
        const float z = c == 7 ? (float)(int32_t)((zw >> 4) & 0xf000000u) : (float)(int32_t)(zw & zmask[c]);
        const float s = half_bits(p->sc[g * N + 8 * ((size_t)w->j0 + j) + (size_t)c]) * unscale[c];
        for (m = 0; m < rows; m++) {
          const size_t i = ((size_t)m * 8 + (size_t)c) * R + j;
          w->acc[i] += s * (w->dot[i] - z * sx[m]);
        }
      }
  }
  for (m = 0; m < rows; m++)
    for (j = 0; j < R; j++)
      for (c = 0; c < 8; c++) {
        const size_t n = 8 * ((size_t)w->j0 + j) + (size_t)c;
        float v = w->acc[((size_t)m * 8 + (size_t)c) * R + j];
        if (p->bias) v += half_bits(p->bias[n]);
        p->y[(size_t)m * N + n] = round_half(v); /* AutoAWQ's fp16 result */
      }
}

HOT static void compute_generic(struct oftawq__cpu_int4 *p, worker *w) { compute(p, w); }
#ifdef HAVE_AVX2_CLONE
/* The same source for the x86-64 ISA the OpenCL CPU device compiles for (PoCL targets the host CPU). */
HOT __attribute__((target("avx2,fma"))) static void compute_avx2(struct oftawq__cpu_int4 *p, worker *w)
{
  compute(p, w);
}
#endif

static void run_share(struct oftawq__cpu_int4 *p, worker *w)
{
#ifdef HAVE_AVX2_CLONE
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    compute_avx2(p, w);
    return;
  }
#endif
  compute_generic(p, w);
}

static void *worker_main(void *arg)
{
  worker *w = arg;
  struct oftawq__cpu_int4 *p = w->p;
  unsigned long seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->lock);
    while (!p->quit && p->generation == seen) pthread_cond_wait(&p->go, &p->lock);
    if (p->quit) {
      pthread_mutex_unlock(&p->lock);
      return NULL;
    }
    seen = p->generation;
    pthread_mutex_unlock(&p->lock);
    run_share(p, w);
    pthread_mutex_lock(&p->lock);
    if (--p->pending == 0) pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->lock);
  }
}

void oftawq__cpu_int4_destroy(oftawq__cpu_int4 *p)
{
  int t;
  if (!p) return;
  if (p->started) {
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->lock);
    for (t = 1; t < p->started; t++) pthread_join(p->w[t].thread, NULL);
  }
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->go);
  pthread_cond_destroy(&p->done);
  for (t = 0; p->w && t < p->threads; t++) {
    free(p->w[t].dot);
    free(p->w[t].acc);
    free(p->w[t].q);
    free(p->w[t].sx);
  }
  free(p->w);
  free(p->xr);
  free(p);
}

oftawq_status oftawq__cpu_int4_create(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales,
                                      const uint16_t *bias, int K, int N, int G, int max_rows, int threads,
                                      oftawq__cpu_int4 **out)
{
  oftawq__cpu_int4 *p;
  int t, W = N / 8, blocks;
  *out = NULL;
  if (K < 1 || N < 8 || N % 8 || G < 1 || K % G || max_rows < 1 || threads < 1) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!(p = calloc(1, sizeof *p))) return OFTAWQ_E_OUT_OF_MEMORY;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->go, NULL);
  pthread_cond_init(&p->done, NULL);
  p->qw = (const uint32_t *)(const void *)qweight;
  p->qz = (const uint32_t *)(const void *)qzeros;
  p->sc = scales;
  p->bias = bias;
  p->K = K;
  p->N = N;
  p->G = G;
  p->chunk = oftawq__awq_chunk(G);
  p->max_rows = max_rows;
  blocks = (W + WORD_ALIGN - 1) / WORD_ALIGN;
  p->threads = threads < blocks ? threads : blocks;
  if (!(p->xr = malloc((size_t)max_rows * K * sizeof(float))) || !(p->w = calloc((size_t)p->threads, sizeof *p->w)))
    goto oom;
  for (t = 0; t < p->threads; t++) {
    worker *w = &p->w[t];
    size_t R;
    w->p = p;
    w->j0 = (int)((size_t)blocks * t / p->threads) * WORD_ALIGN;
    w->j1 = (int)((size_t)blocks * (t + 1) / p->threads) * WORD_ALIGN;
    if (w->j1 > W) w->j1 = W;
    R = (size_t)(w->j1 - w->j0);
    if (!(w->dot = malloc(((size_t)max_rows * 8 * R + 1) * sizeof(float))) ||
        !(w->acc = malloc(((size_t)max_rows * 8 * R + 1) * sizeof(float))) ||
        !(w->q = malloc(((size_t)K_UNROLL * 8 * R + 1) * sizeof(float))) ||
        !(w->sx = malloc((size_t)max_rows * sizeof(float))))
      goto oom;
  }
  for (p->started = 1; p->started < p->threads; p->started++)
    if (pthread_create(&p->w[p->started].thread, NULL, worker_main, &p->w[p->started]) != 0) goto oom;
  *out = p;
  return OFTAWQ_OK;
oom:
  oftawq__cpu_int4_destroy(p);
  return OFTAWQ_E_OUT_OF_MEMORY;
}

oftawq_status oftawq__cpu_int4_forward(oftawq__cpu_int4 *p, const float *x, float *y, int rows)
{
  size_t i, n;
  if (!p || !x || !y || rows < 1 || rows > p->max_rows) return OFTAWQ_E_INVALID_ARGUMENT;
  n = (size_t)rows * (size_t)p->K;
  for (i = 0; i < n; i++) p->xr[i] = round_half(x[i]); /* AutoAWQ's fp16 input */
  p->x = x;
  p->y = y;
  p->rows = rows;
  pthread_mutex_lock(&p->lock);
  p->pending = p->threads - 1;
  p->generation++;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->lock);
  run_share(p, &p->w[0]);
  pthread_mutex_lock(&p->lock);
  while (p->pending > 0) pthread_cond_wait(&p->done, &p->lock);
  pthread_mutex_unlock(&p->lock);
  return OFTAWQ_OK;
}
