/* ref.c: plain-C reference maths in double precision - the oracle for tests and the host fallback. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/ref.h"

int oftawq__ref_adjust(int d, int p)
{
  int higher = p, lower = p;
  if (p >= d) return d;
  while (higher <= d && d % higher != 0) higher++;
  while (lower > 1 && d % lower != 0) lower--;
  return (p - lower) <= (higher - p) ? lower : higher;
}

void oftawq__ref_skew(const float *w, int b, double *Q)
{
  int r, c, m = 0;
  memset(Q, 0, (size_t)b * b * sizeof *Q);
  for (r = 0; r < b; r++)
    for (c = r + 1; c < b; c++, m++) {
      Q[(size_t)r * b + c] = w[m];
      Q[(size_t)c * b + r] = -(double)w[m];
    }
}

/* y = Q v for Q = skew(w), without forming Q. */
static void skew_times(const float *w, int b, const double *v, double *y)
{
  int r, c, m = 0;
  memset(y, 0, (size_t)b * sizeof *y);
  for (r = 0; r < b; r++)
    for (c = r + 1; c < b; c++, m++) {
      y[r] += w[m] * v[c];
      y[c] -= w[m] * v[r];
    }
}

double oftawq__ref_skew_norm2_lower(const float *w, int b, int iterations, double *scratch)
{
  double *v = scratch, *u = scratch + b, best = 0;
  int i, k;
  uint64_t s = UINT64_C(0x9e3779b97f4a7c15);
  for (i = 0; i < b; i++) { /* a fixed start that no structured Q is orthogonal to in practice */
    s = s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    v[i] = (double)(s >> 11) / 9007199254740992.0 - 0.5;
  }
  for (k = 0; k < iterations; k++) {
    double nv = 0, nu = 0;
    for (i = 0; i < b; i++) nv += v[i] * v[i];
    if (nv == 0) break;
    skew_times(w, b, v, u); /* |Q v| / |v| <= |Q|_2 whatever v is */
    for (i = 0; i < b; i++) nu += u[i] * u[i];
    if (sqrt(nu / nv) > best) best = sqrt(nu / nv);
    skew_times(w, b, u, v); /* v = Q Q v = -Q^T Q v: the power iteration on Q^T Q (sign irrelevant) */
    nv = 0;
    for (i = 0; i < b; i++) nv += v[i] * v[i];
    for (i = 0; nv > 0 && i < b; i++) v[i] /= sqrt(nv);
  }
  return best;
}

void oftawq__ref_coft(float *w, int rows, int n_el, double eps)
{
  /* PEFT computes eps' in fp32 and the norm of the full skew matrix. */
  float e = (float)(eps / sqrt((double)rows));
  int i, m;
  for (i = 0; i < rows; i++) {
    float *row = w + (size_t)i * n_el;
    double ss = 0;
    float norm;
    for (m = 0; m < n_el; m++) ss += (double)row[m] * row[m];
    norm = (float)sqrt(2.0 * ss);
    if (norm <= e) continue;
    for (m = 0; m < n_el; m++) row[m] = e * (row[m] / norm);
  }
}

int oftawq__ref_cayley_exact(const float *w, int b, double *R)
{
  /* X (I + Q) = (I - Q)  <=>  (I - Q) X^T = (I + Q), since Q^T = -Q. */
  size_t bb = (size_t)b * b;
  double *A = malloc(bb * sizeof *A), *B = malloc(bb * sizeof *B), *Q = malloc(bb * sizeof *Q);
  int *piv = malloc((size_t)b * sizeof *piv);
  int i, j, k, ok = 1;
  if (!A || !B || !Q || !piv) {
    ok = 0;
    goto done;
  }
  oftawq__ref_skew(w, b, Q);
  for (i = 0; i < b; i++)
    for (j = 0; j < b; j++) {
      A[(size_t)i * b + j] = (i == j) - Q[(size_t)i * b + j];
      B[(size_t)i * b + j] = (i == j) + Q[(size_t)i * b + j];
    }
  for (k = 0; k < b; k++) { /* LU with partial pivoting, applied to B as we go */
    int p = k;
    for (i = k + 1; i < b; i++)
      if (fabs(A[(size_t)i * b + k]) > fabs(A[(size_t)p * b + k])) p = i;
    if (A[(size_t)p * b + k] == 0.0) {
      ok = 0;
      goto done;
    }
    piv[k] = p;
    if (p != k)
      for (j = 0; j < b; j++) {
        double t = A[(size_t)k * b + j];
        A[(size_t)k * b + j] = A[(size_t)p * b + j];
        A[(size_t)p * b + j] = t;
        t = B[(size_t)k * b + j];
        B[(size_t)k * b + j] = B[(size_t)p * b + j];
        B[(size_t)p * b + j] = t;
      }
    for (i = k + 1; i < b; i++) {
      double f = A[(size_t)i * b + k] / A[(size_t)k * b + k];
      for (j = k; j < b; j++) A[(size_t)i * b + j] -= f * A[(size_t)k * b + j];
      for (j = 0; j < b; j++) B[(size_t)i * b + j] -= f * B[(size_t)k * b + j];
    }
  }
  for (j = 0; j < b; j++) /* back substitution per column of B: B := X^T */
    for (i = b - 1; i >= 0; i--) {
      double s = B[(size_t)i * b + j];
      for (k = i + 1; k < b; k++) s -= A[(size_t)i * b + k] * B[(size_t)k * b + j];
      B[(size_t)i * b + j] = s / A[(size_t)i * b + i];
    }
  for (i = 0; i < b; i++)
    for (j = 0; j < b; j++) R[(size_t)i * b + j] = B[(size_t)j * b + i];
done:
  free(A);
  free(B);
  free(Q);
  free(piv);
  return ok;
}

static void matmul(const double *A, const double *B, double *C, int b)
{
  int i, j, k;
  for (i = 0; i < b; i++)
    for (j = 0; j < b; j++) {
      double s = 0;
      for (k = 0; k < b; k++) s += A[(size_t)i * b + k] * B[(size_t)k * b + j];
      C[(size_t)i * b + j] = s;
    }
}

static void add_scaled(double *R, const double *P, double alpha, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) R[i] += alpha * P[i];
}

void oftawq__ref_cayley_neumann(const float *w, int b, int terms, int legacy, double *R)
{
  size_t bb = (size_t)b * b, i;
  double *Q = malloc(bb * sizeof *Q), *P = malloc(bb * sizeof *P), *T = malloc(bb * sizeof *T);
  int k;
  if (!Q || !P || !T) {
    memset(R, 0, bb * sizeof *R); /* callers check allocation before; keep R defined */
    goto done;
  }
  oftawq__ref_skew(w, b, Q);
  for (i = 0; i < bb; i++) R[i] = (i % (size_t)(b + 1)) == 0;
  if (terms > 1) add_scaled(R, Q, 2.0, bb);
  memcpy(P, Q, bb * sizeof *P);
  if (legacy) { /* I + 2 sum_{k=1}^{n-1} Q^k */
    for (k = 2; k < terms; k++) {
      matmul(P, Q, T, b);
      memcpy(P, T, bb * sizeof *P);
      add_scaled(R, P, 2.0, bb);
    }
  } else if (terms > 2) { /* I + 2Q + 2Q^2 + ... + 2Q^(n-2) + Q^(n-1), with n = 3 giving the n = 4 matrix */
    matmul(Q, Q, P, b);
    add_scaled(R, P, 2.0, bb);
    for (k = 3; k < terms - 1; k++) {
      matmul(P, Q, T, b);
      memcpy(P, T, bb * sizeof *P);
      add_scaled(R, P, 2.0, bb);
    }
    matmul(P, Q, T, b);
    add_scaled(R, T, 1.0, bb);
  }
done:
  free(Q);
  free(P);
  free(T);
}

void oftawq__ref_rotate(const float *x, size_t rows, int blocks, int b, const double *R, int share, float *y)
{
  size_t d = (size_t)blocks * b, row;
  double *tmp = malloc((size_t)b * sizeof *tmp);
  int blk, c, k;
  if (!tmp) return;
  for (row = 0; row < rows; row++)
    for (blk = 0; blk < blocks; blk++) {
      const float *xb = x + row * d + (size_t)blk * b;
      const double *Rb = R + (share ? 0 : (size_t)blk * b * b);
      for (c = 0; c < b; c++) {
        double s = 0;
        for (k = 0; k < b; k++) s += (double)xb[k] * Rb[(size_t)k * b + c];
        tmp[c] = s;
      }
      for (c = 0; c < b; c++) y[row * d + (size_t)blk * b + c] = (float)tmp[c];
    }
  free(tmp);
}

uint16_t oftawq__float_to_half(float f)
{
  uint32_t x, sign, mant;
  int32_t exp;
  memcpy(&x, &f, sizeof x);
  sign = (x >> 16) & 0x8000u;
  exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0)); /* Inf / NaN */
  if (exp >= 31) return (uint16_t)(sign | 0x7c00u);                                        /* overflow */
  if (exp <= 0) {                                                                          /* subnormal or zero */
    uint32_t shift, half, rest;
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000u;
    shift = (uint32_t)(14 - exp);
    half = mant >> shift;
    rest = mant & ((1u << shift) - 1);
    if (rest > (1u << (shift - 1)) || (rest == (1u << (shift - 1)) && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  {
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13), rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++; /* carries into the exponent correctly */
    return (uint16_t)h;
  }
}

float oftawq__half_to_float(uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, x;
  float f;
  if (exp == 0) {
    f = (float)ldexp((double)mant, -24);
    return sign ? -f : f;
  }
  if (exp == 31)
    x = sign | 0x7f800000u | (mant << 13);
  else
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  memcpy(&f, &x, sizeof f);
  return f;
}

unsigned oftawq__awq_nibble(uint32_t word, unsigned c)
{
  static const unsigned char shift[8] = {0, 16, 4, 20, 8, 24, 12, 28}; /* 4 * {0,4,1,5,2,6,3,7} */
  return (word >> shift[c & 7u]) & 0xfu;
}

void oftawq__ref_awq(const float *x, size_t rows, int K, int N, int G, const int32_t *qweight, const int32_t *qzeros,
                     const uint16_t *scales, const uint16_t *bias, float *y)
{
  size_t m;
  int k, n, W = N / 8;
  double *acc = malloc((size_t)N * sizeof *acc);
  if (!acc) return;
  for (m = 0; m < rows; m++) {
    for (n = 0; n < N; n++) acc[n] = 0;
    for (k = 0; k < K; k++) {
      double xv = oftawq__half_to_float(oftawq__float_to_half(x[m * K + k]));
      int g = k / G;
      for (n = 0; n < N; n++) {
        unsigned q = oftawq__awq_nibble((uint32_t)qweight[(size_t)k * W + n / 8], (unsigned)n & 7u);
        unsigned z = oftawq__awq_nibble((uint32_t)qzeros[(size_t)g * W + n / 8], (unsigned)n & 7u);
        acc[n] += xv * ((double)q - (double)z) * oftawq__half_to_float(scales[(size_t)g * N + n]);
      }
    }
    for (n = 0; n < N; n++) {
      double v = acc[n] + (bias ? oftawq__half_to_float(bias[n]) : 0.0);
      y[m * N + n] = oftawq__half_to_float(oftawq__float_to_half((float)v));
    }
  }
  free(acc);
}

uint16_t oftawq__float_to_bf16(float f)
{
  uint32_t u;
  if (isnan(f)) return 0x7fc0;
  memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float oftawq__bf16_to_float(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
