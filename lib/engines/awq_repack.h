/* awq_repack.h: internal interface of awq_repack.c - the load-time repack of AWQ tensors into the layout
 * GPU lanes read in 16-byte loads, and back. */
#ifndef OFTAWQ_AWQ_REPACK_H
#define OFTAWQ_AWQ_REPACK_H

#include <stddef.h>
#include <stdint.h>

/* The layouts a base layer keeps on the device (the kernels' AWQ_LAYOUT). */
#define OFTAWQ__LAYOUT_AWQ 0     /* AutoAWQ's tensors as they are */
#define OFTAWQ__LAYOUT_K4 1      /* qweight [K/4][N/8][4]: one uint4 holds 4 k of a packed word; scales and zeros
                                  * as fp16 pairs (s, z) [K/G][N]; no separate qzeros */

/* Whether a K x N layer with group G can take the K4 layout (K and the kernels' k-chunk multiples of 4). */
int oftawq__awq_k4_possible(int K, int G);

/* Repacks qweight [K][N/8] into k4 [K/4][N/8][4] and scales [K/G][N] with qzeros [K/G][N/8] into pairs
 * [K/G][N][2] (fp16 bits: the scale, then the zero point 0..15, exact in fp16). */
void oftawq__awq_repack_k4(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales, int K, int N, int G,
                           uint32_t *k4, uint16_t *pairs);
/* The inverse: AutoAWQ's tensors, bit for bit, from the K4 layout. */
void oftawq__awq_unpack_k4(const uint32_t *k4, const uint16_t *pairs, int K, int N, int G, int32_t *qweight,
                           int32_t *qzeros, uint16_t *scales);

#endif /* OFTAWQ_AWQ_REPACK_H */
