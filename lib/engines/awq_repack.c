/* awq_repack.c: the load-time repack of AWQ tensors into the K4 layout (a GPU lane reads 4 k of a packed word as one
 * uint4, the scale and zero of a column as one fp16 pair) and its exact inverse. */
#include "config.h"

#include "common/ref.h"
#include "engines/awq_repack.h"
#include "runtime/tuning.h"

/* Column c of a group of 8 sits at this shift of a packed word (SPEC 4). */
#define AWQ_SHIFT(c) (4u * (((c) & 1u) * 4u + ((c) >> 1)))

int oftawq__awq_k4_possible(int K, int G) { return K % 4 == 0 && oftawq__awq_chunk(G) % 4 == 0; }

void oftawq__awq_repack_k4(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales, int K, int N, int G,
                           uint32_t *k4, uint16_t *pairs)
{
  const size_t W = (size_t)N / 8, groups = (size_t)(K / G);
  size_t k, j, g, n;
  for (k = 0; k < (size_t)K; k++)
    for (j = 0; j < W; j++) k4[((k / 4) * W + j) * 4 + k % 4] = (uint32_t)qweight[k * W + j];
  for (g = 0; g < groups; g++)
    for (n = 0; n < (size_t)N; n++) {
      const uint32_t z = ((uint32_t)qzeros[g * W + n / 8] >> AWQ_SHIFT((unsigned)(n % 8))) & 0xfu;
      pairs[(g * N + n) * 2] = scales[g * N + n];
      pairs[(g * N + n) * 2 + 1] = oftawq__float_to_half((float)z);
    }
}

void oftawq__awq_unpack_k4(const uint32_t *k4, const uint16_t *pairs, int K, int N, int G, int32_t *qweight,
                           int32_t *qzeros, uint16_t *scales)
{
  const size_t W = (size_t)N / 8, groups = (size_t)(K / G);
  size_t k, j, g, n;
  for (k = 0; k < (size_t)K; k++)
    for (j = 0; j < W; j++) qweight[k * W + j] = (int32_t)k4[((k / 4) * W + j) * 4 + k % 4];
  for (g = 0; g < groups; g++)
    for (j = 0; j < W; j++) {
      uint32_t word = 0;
      unsigned c;
      for (c = 0; c < 8; c++) {
        n = 8 * j + c;
        scales[g * N + n] = pairs[(g * N + n) * 2];
        word |= ((uint32_t)oftawq__half_to_float(pairs[(g * N + n) * 2 + 1]) & 0xfu) << AWQ_SHIFT(c);
      }
      qzeros[g * W + j] = (int32_t)word;
    }
}
