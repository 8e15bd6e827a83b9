/* awq_repack.c: the load-time repack of AWQ tensors into the interleaved layouts (KI consecutive k of a packed
 * word together, read as uint4; the scale and zero of a column as one fp16 pair) and its exact inverse. */
#include "config.h"

#include "common/ref.h"
#include "engines/awq_repack.h"
#include "runtime/tuning.h"

/* Column c of a group of 8 sits at this shift of a packed word (SPEC 4). */
#define AWQ_SHIFT(c) (4u * (((c) & 1u) * 4u + ((c) >> 1)))

int oftawq__awq_interleave_possible(int K, int G) { return K % 4 == 0 && oftawq__awq_chunk(G) % 4 == 0; }

int oftawq__awq_layout_ki(int layout, int G)
{
  return layout == OFTAWQ__LAYOUT_K4 ? 4 : layout == OFTAWQ__LAYOUT_KC ? oftawq__awq_chunk(G) : 1;
}

int oftawq__awq_layout_multiword(int layout, int colvec)
{
  return layout == OFTAWQ__LAYOUT_AWQ || (layout == OFTAWQ__LAYOUT_KC && colvec);
}

const char *oftawq__awq_layout_name(int layout)
{
  return layout == OFTAWQ__LAYOUT_K4 ? "K4" : layout == OFTAWQ__LAYOUT_KC ? "KC" : "AutoAWQ";
}

/* Where word j of row k sits in qweight [K/ki][W][ki]. */
static size_t interleaved(size_t k, size_t j, size_t W, size_t ki) { return ((k / ki) * W + j) * ki + k % ki; }

void oftawq__awq_repack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales, int K, int N, int G,
                        int ki, uint32_t *packed, uint16_t *pairs)
{
  const size_t W = (size_t)N / 8, groups = (size_t)(K / G);
  size_t k, j, g, n;
  for (k = 0; k < (size_t)K; k++)
    for (j = 0; j < W; j++) packed[interleaved(k, j, W, (size_t)ki)] = (uint32_t)qweight[k * W + j];
  for (g = 0; g < groups; g++)
    for (n = 0; n < (size_t)N; n++) {
      const uint32_t z = ((uint32_t)qzeros[g * W + n / 8] >> AWQ_SHIFT((unsigned)(n % 8))) & 0xfu;
      pairs[(g * N + n) * 2] = scales[g * N + n];
      pairs[(g * N + n) * 2 + 1] = oftawq__float_to_half((float)z);
    }
}

void oftawq__awq_unpack(const uint32_t *packed, const uint16_t *pairs, int K, int N, int G, int ki, int32_t *qweight,
                        int32_t *qzeros, uint16_t *scales)
{
  const size_t W = (size_t)N / 8, groups = (size_t)(K / G);
  size_t k, j, g, n;
  for (k = 0; k < (size_t)K; k++)
    for (j = 0; j < W; j++) qweight[k * W + j] = (int32_t)packed[interleaved(k, j, W, (size_t)ki)];
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
