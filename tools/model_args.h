/* model_args.h: the model options forward and inspect share - model folder, adapters, active list, producer. */
#ifndef OFTAWQ_MODEL_ARGS_H
#define OFTAWQ_MODEL_ARGS_H

#include "oftawq.h"

#define MODEL_ARGS_MAX_ADAPTERS 16

typedef struct model_args {
  const char *model, *active, *device, *cache_dir, *producer;
  char *dirs[MODEL_ARGS_MAX_ADAPTERS];
  const char *names[MODEL_ARGS_MAX_ADAPTERS];
  int n_adapters;
  int disable;
} model_args;

/* The help lines of these options. */
#define MODEL_ARGS_HELP                                                                                  \
  "  --model DIR           the AWQ model folder (config.json, model.safetensors or shards + index)\n"   \
  "  --adapter DIR[:NAME]  a PEFT OFT adapter folder; the first is named 'default' unless NAME\n"       \
  "                        is given, the others take their folder's name\n"                             \
  "  --active LIST         the adapters to apply, in order (default: the first)\n"                      \
  "  --disable-adapters    the base layers alone\n"                                                     \
  "  --producer NAME:VER   the AWQ producer and version for the factory's gate (autoawq:X needs\n"     \
  "                        >= 0.2.0, gptqmodel:X >= 5.6.12); default: what the checkpoint records\n"   \
  "  --device SPEC         cpu, gpu, P:D or a device-name substring (default: $OFTAWQ_DEVICE)\n"       \
  "  --cache-dir DIR       compiled-kernel cache (default: $OFTAWQ_CACHE_DIR, $XDG_CACHE_HOME/oftawq\n" \
  "                        or ~/.cache/oftawq)\n"

/* Takes the option at argv[i] if it is one of these: the number of arguments it took (1 for a flag, 2 for an
 * option and its value), 0 when it is not one of them, -1 after a usage error (printed; exit EXIT_USAGE). */
int model_args_option(model_args *args, int argc, char **argv, int i, const char *usage, const char *command);
/* A context on the device, the model with its adapters loaded and the active list set; on failure exactly one
 * error line has been printed and OFTAWQ_OK is not returned. `record_refusals` as in oftawq_model_options. */
oftawq_status model_args_open(const model_args *args, int record_refusals, oftawq_context **ctx, oftawq_model **model);
void model_args_free(model_args *args);

#endif /* OFTAWQ_MODEL_ARGS_H */
