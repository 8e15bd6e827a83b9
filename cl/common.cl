/* common.cl: prepended to every kernel family - activation dtypes in memory (math is fp32) and fp16 rounding.
 *
 * Build parameters (-D):
 *   X_DTYPE   activations in memory, the values of oftawq_dtype: 0 F32, 1 F16, 2 BF16 (default 0)
 *
 * X_TYPE is the element type of an activation buffer; LOAD_X(p, i) reads element i as a float,
 * STORE_X(v, p, i) writes v rounded to nearest even into the dtype, and ROUND_X(v) is that rounded
 * value as a float (for results kept in registers or local memory, as a store and reload would give).
 */
#ifndef X_DTYPE
#define X_DTYPE 0
#endif

/* The bf16 bits of f, rounded to nearest even (a NaN stays a NaN: the quiet NaN 0x7fc0, as c10::BFloat16 converts it). */
inline ushort bf16_bits(float f)
{
  if (isnan(f)) return (ushort)0x7fc0u;
  uint u = as_uint(f);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (ushort)(u >> 16);
}

/* The nearest bf16 value (ties to even) as a float. */
inline float round_bf16(float f) { return as_float((uint)bf16_bits(f) << 16); }

#if X_DTYPE == 2
#define X_TYPE ushort
#define LOAD_X(p, i) as_float((uint)(p)[i] << 16)
#define STORE_X(v, p, i) ((p)[i] = bf16_bits(v))
#define ROUND_X(v) round_bf16(v)
#elif X_DTYPE == 1
#define X_TYPE half
#define LOAD_X(p, i) vload_half((i), (p))
#define STORE_X(v, p, i) vstore_half_rte((v), (i), (p))
#define ROUND_X(v) round_half(v)
#elif X_DTYPE == 0
#define X_TYPE float
#define LOAD_X(p, i) ((p)[i])
#define STORE_X(v, p, i) ((p)[i] = (v))
#define ROUND_X(v) (v)
#else
#error "X_DTYPE must be 0 (F32), 1 (F16) or 2 (BF16)"
#endif

/* The nearest fp16 value (ties to even) as a float; no cl_khr_fp16 needed. */
inline float round_half(float f)
{
  const float a = fabs(f);
  if (a >= 65520.0f) return isnan(f) ? f : copysign(INFINITY, f);
  if (a < 6.103515625e-05f) return rint(f * 16777216.0f) * 5.9604644775390625e-08f; /* subnormal: 2^-24 steps */
  uint u = as_uint(f);
  u += 0xfffu + ((u >> 13) & 1u);
  return as_float(u & 0xffffe000u);
}
