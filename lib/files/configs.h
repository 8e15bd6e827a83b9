/* configs.h: the config parsers of model_file.c and adapter_file.c on text, for the fuzzers. */
#ifndef OFTAWQ_CONFIGS_H
#define OFTAWQ_CONFIGS_H

#include "common/internal.h"

/* config.json text (legacy: quant_config.json text): the AWQ settings, or the reason it is not AWQ GEMM 4-bit. */
oftawq_status oftawq__quant_config_parse(const char *text, size_t len, int legacy, int *group_size, char *why,
                                         size_t why_capacity);

/* adapter_config.json text: the OFT config (peft_version is not kept: NULL on return). */
oftawq_status oftawq__adapter_config_parse(const char *text, size_t len, oftawq_oft_config *config, char *why,
                                           size_t why_capacity);

#endif /* OFTAWQ_CONFIGS_H */
