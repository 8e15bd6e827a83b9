/* fuzz_config.c: libFuzzer target for config.json, quant_config.json and adapter_config.json parsing (make fuzz). */
#include <stddef.h>
#include <stdint.h>

#include "files/configs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  char why[256];
  int group = 0;
  oftawq_oft_config c;
  (void)oftawq__quant_config_parse(text, size, 0, &group, why, sizeof why);
  (void)oftawq__quant_config_parse(text, size, 1, &group, why, sizeof why);
  oftawq_oft_config_init(&c);
  if (oftawq__adapter_config_parse(text, size, &c, why, sizeof why) == OFTAWQ_OK) {
    /* and the r / block-size rules on what it gave, for a few layer widths */
    static const int widths[] = {1, 37, 64, 1000, 4096};
    size_t i;
    for (i = 0; i < sizeof widths / sizeof widths[0]; i++) {
      oftawq_oft_shape s;
      oftawq_oft_shape_init(&s);
      (void)oftawq_oft_resolve(&c, widths[i], NULL, NULL, &s, why, sizeof why);
    }
  }
  return 0;
}
