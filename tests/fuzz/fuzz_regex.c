/* fuzz_regex.c: libFuzzer target for the Python-re matcher of PEFT's targeting rules (make fuzz): "pattern\ntext". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/pyre.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *copy = malloc(size + 1), *text, why[256];
  oftawq__pyre *re;
  long s, e;
  if (!copy) return 0;
  memcpy(copy, data, size);
  copy[size] = '\0';
  text = strchr(copy, '\n');
  if (text) *text++ = '\0';
  else text = copy + size;
  if ((re = oftawq__pyre_compile(copy, why, sizeof why)) != NULL) {
    (void)oftawq__pyre_match(re, text, 1, 1, &s, &e);
    (void)oftawq__pyre_match(re, text, 0, oftawq__pyre_groups(re), &s, &e);
    oftawq__pyre_free(re);
  }
  free(copy);
  return 0;
}
