/* loss.c: the training loss of oftawq train - mean squared error and its gradient, as torch computes them (SPEC 12). */
#include "config.h"

#include <math.h>

#include "common/ref.h"
#include "common/internal.h"

oftawq_status oftawq_mse_loss(oftawq_dtype dtype, const void *y, const float *target, size_t n, void *dy, double *loss)
{
  /* torch: ((y.float() - t) ** 2).mean(); backward: (1/n) * (2 (y - t)) in fp32, cast to y's dtype */
  const float inv = n ? 1.0f / (float)n : 0.0f;
  double sum = 0;
  size_t i;
  if (loss) *loss = 0;
  if (!loss || (n && (!y || !target)) || (dtype != OFTAWQ_F32 && dtype != OFTAWQ_F16)) return OFTAWQ_E_INVALID_ARGUMENT;
  for (i = 0; i < n; i++) {
    float v = dtype == OFTAWQ_F32 ? ((const float *)y)[i] : oftawq__half_to_float(((const uint16_t *)y)[i]);
    float d = v - target[i], g = inv * (2.0f * d);
    sum += (double)d * d;
    if (!dy) continue;
    if (dtype == OFTAWQ_F32)
      ((float *)dy)[i] = g;
    else
      ((uint16_t *)dy)[i] = oftawq__float_to_half(g);
  }
  *loss = n ? (double)(float)(sum / (double)n) : 0.0;
  return OFTAWQ_OK;
}
