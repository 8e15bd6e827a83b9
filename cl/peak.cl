/* peak.cl: fp32 fma chains on every lane - the device's arithmetic ceiling for the kernels' own operation. */

/* Built with -DVEC=1, 2, 4, 8 or 16 (the lanes of one chain: the device's native float width), -DPEAK_CHAINS
 * and -DPEAK_SEEDS (lib/tools/peak.h). Each work-item runs its chains a <- fma(a, x, y), `iterations` steps
 * each, then stores every lane, so that no step is dead. With x = y = 1 a chain counts: lane l of chain c of
 * item g starts at ((g * PEAK_CHAINS + c) * VEC + l) % PEAK_SEEDS and ends, exactly, that many steps on. */

#if PEAK_CHAINS != 8
#error "peak.cl keeps 8 chains a work-item"
#endif

#if VEC == 1
typedef float peak_t;
#define PEAK_LANES(base) ((float)(base))
#define PEAK_STORE(v, i, p) ((p)[i] = (v))
#else
#define PEAK_CAT_(a, b) a##b
#define PEAK_CAT(a, b) PEAK_CAT_(a, b)
typedef PEAK_CAT(float, VEC) peak_t;
__constant float peak_iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#define PEAK_LANES(base) ((peak_t)((float)(base)) + PEAK_CAT(vload, VEC)(0, peak_iota))
#define PEAK_STORE(v, i, p) PEAK_CAT(vstore, VEC)((v), (i), (p))
#endif

/* The start of chain c of this item (PEAK_SEEDS is a multiple of VEC: the lanes do not wrap). */
#define PEAK_SEED(c) PEAK_LANES(((g * PEAK_CHAINS + (c)) * VEC) % PEAK_SEEDS)

__kernel void fma_chains(__global float *restrict out, const float x, const float y, const int iterations)
{
  const uint g = (uint)get_global_id(0);
  const peak_t vx = (peak_t)x, vy = (peak_t)y;
  peak_t a0 = PEAK_SEED(0), a1 = PEAK_SEED(1), a2 = PEAK_SEED(2), a3 = PEAK_SEED(3);
  peak_t a4 = PEAK_SEED(4), a5 = PEAK_SEED(5), a6 = PEAK_SEED(6), a7 = PEAK_SEED(7);
  for (int i = 0; i < iterations; i++) {
    a0 = fma(a0, vx, vy);
    a1 = fma(a1, vx, vy);
    a2 = fma(a2, vx, vy);
    a3 = fma(a3, vx, vy);
    a4 = fma(a4, vx, vy);
    a5 = fma(a5, vx, vy);
    a6 = fma(a6, vx, vy);
    a7 = fma(a7, vx, vy);
  }
  PEAK_STORE(a0, g * PEAK_CHAINS + 0, out);
  PEAK_STORE(a1, g * PEAK_CHAINS + 1, out);
  PEAK_STORE(a2, g * PEAK_CHAINS + 2, out);
  PEAK_STORE(a3, g * PEAK_CHAINS + 3, out);
  PEAK_STORE(a4, g * PEAK_CHAINS + 4, out);
  PEAK_STORE(a5, g * PEAK_CHAINS + 5, out);
  PEAK_STORE(a6, g * PEAK_CHAINS + 6, out);
  PEAK_STORE(a7, g * PEAK_CHAINS + 7, out);
}
