/* ref.h: plain-C reference maths - the oracle for tests and the host fallback (OFT now, AWQ beside it). */
#ifndef OFTAWQ_REF_H
#define OFTAWQ_REF_H

#include <stddef.h>
#include <stdint.h>

/* PEFT's adjust_oft_parameters: the divisor of d nearest to p (ties to the lower; p >= d gives d). */
int oftawq__ref_adjust(int d, int p);

/* Q = skew(w) for one block: Q[r][c] = w[m], Q[c][r] = -w[m] over the row-major strict upper triangle. */
void oftawq__ref_skew(const float *w, int b, double *Q);

/* A lower bound of the spectral norm |Q|_2 of Q = skew(w) for one block, from `iterations` power iterations on
 * Q^T Q (it approaches |Q|_2 from below; |Q|_F only bounds it from above). scratch: 2b doubles. */
double oftawq__ref_skew_norm2_lower(const float *w, int b, int iterations, double *scratch);

/* COFT projection of `rows` weight rows of n_el floats, in place:
 * w_i *= eps' / (sqrt(2) |w_i|) when that norm exceeds eps' = eps / sqrt(rows). */
void oftawq__ref_coft(float *w, int rows, int n_el, double eps);

/* R = (I - Q)(I + Q)^-1 for one block, LU with partial pivoting in double. Returns 0 if singular. */
int oftawq__ref_cayley_exact(const float *w, int b, double *R);

/* The Cayley-Neumann series with n terms (current or pre-0.18 formula) for one block, in double. */
void oftawq__ref_cayley_neumann(const float *w, int b, int terms, int legacy, double *R);

/* y = x . BD(R) in double: x, y [rows][blocks*b]; R [share ? 1 : blocks][b][b]. y may alias x. */
void oftawq__ref_rotate(const float *x, size_t rows, int blocks, int b, const double *R, int share, float *y);

/* AWQ: the 4-bit value of column c (0..7) of a packed word. */
unsigned oftawq__awq_nibble(uint32_t word, unsigned c);

/* AWQ GEMM in double: y[m][n] = sum_k half(x[m][k]) * (q - z) * s + bias, then rounded to fp16.
 * qweight [K][N/8], qzeros [K/G][N/8], scales [K/G][N] and bias [N] (may be NULL) as fp16 bits. */
void oftawq__ref_awq(const float *x, size_t rows, int K, int N, int G, const int32_t *qweight, const int32_t *qzeros,
                     const uint16_t *scales, const uint16_t *bias, float *y);

/* IEEE half <-> float, round to nearest even. */
uint16_t oftawq__float_to_half(float f);
float oftawq__half_to_float(uint16_t h);
/* bfloat16 <-> float, round to nearest even; a NaN becomes 0x7fc0 (c10::BFloat16 rounding). */
uint16_t oftawq__float_to_bf16(float f);
float oftawq__bf16_to_float(uint16_t h);

#endif /* OFTAWQ_REF_H */
