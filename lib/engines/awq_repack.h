/* awq_repack.h: internal interface of awq_repack.c - the load-time repack of AWQ tensors into the interleaved
 * layouts (K4 for GPU lanes' 16-byte loads, KC for a CPU core's contiguous runs), and back. */
#ifndef OFTAWQ_AWQ_REPACK_H
#define OFTAWQ_AWQ_REPACK_H

#include <stddef.h>
#include <stdint.h>

/* The layouts a base layer keeps on the device (the kernels' AWQ_LAYOUT). In the interleaved ones qweight is
 * [K/KI][N/8][KI]: KI consecutive k of a packed word lie together (one uint4 holds 4 of them), and scales
 * and zeros are fp16 pairs (s, z) [K/G][N]; there is no separate qzeros. */
#define OFTAWQ__LAYOUT_AWQ 0     /* AutoAWQ's tensors as they are */
#define OFTAWQ__LAYOUT_K4 1      /* interleaved, KI = 4: adjacent GPU lanes read adjacent 16 bytes */
#define OFTAWQ__LAYOUT_KC 2      /* interleaved, KI = the kernels' k-chunk: a work-item's chunk is one run */
/* (runtime/tuning.h's OFTAWQ__AWQ_LAYOUTS counts them) */

/* Whether a K x N layer with group G can take the interleaved layouts (the k-chunk a multiple of 4). */
int oftawq__awq_interleave_possible(int K, int G);
/* The k interleave of a layout for group size G (1 for AutoAWQ's). */
int oftawq__awq_layout_ki(int layout, int G);
/* Whether the kernels read several packed words per work-item in a layout: AutoAWQ's always, KC with a float8
 * per word (AWQ_COLVEC; an item's words are adjacent runs), K4 and KC with lanes over words never. */
int oftawq__awq_layout_multiword(int layout, int colvec);
/* A layout's name: "AutoAWQ", "K4", "KC". */
const char *oftawq__awq_layout_name(int layout);

/* Repacks qweight [K][N/8] into packed [K/ki][N/8][ki] and scales [K/G][N] with qzeros [K/G][N/8] into pairs
 * [K/G][N][2] (fp16 bits: the scale, then the zero point 0..15, exact in fp16). ki divides K. */
void oftawq__awq_repack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales, int K, int N, int G,
                        int ki, uint32_t *packed, uint16_t *pairs);
/* The inverse: AutoAWQ's tensors, bit for bit, from an interleaved layout. */
void oftawq__awq_unpack(const uint32_t *packed, const uint16_t *pairs, int K, int N, int G, int ki, int32_t *qweight,
                        int32_t *qzeros, uint16_t *scales);

#endif /* OFTAWQ_AWQ_REPACK_H */
