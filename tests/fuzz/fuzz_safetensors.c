/* fuzz_safetensors.c: libFuzzer target for the safetensors parser (make fuzz). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "files/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  oftawq_safetensors *st = NULL;
  char why[256];
  if (oftawq__safetensors_parse(data, size, &st, why, sizeof why) == OFTAWQ_OK) {
    size_t i, n = oftawq_safetensors_count(st);
    volatile uint8_t sink = 0;
    for (i = 0; i < n; i++) { /* every byte a tensor claims must be readable */
      oftawq_tensor t;
      size_t k;
      oftawq_tensor_init(&t);
      oftawq_safetensors_get(st, i, &t);
      for (k = 0; k < t.nbytes; k++) sink ^= ((const uint8_t *)t.data)[k];
      (void)strlen(t.name);
    }
    (void)oftawq_safetensors_metadata(st, "format");
    (void)sink;
    oftawq_safetensors_close(st);
  }
  return 0;
}
