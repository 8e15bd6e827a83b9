/* oftawq.c: the oftawq command-line tool's entry point; each command lives in tools/cmd_<name>.c and calls the public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_main[] =
  "usage: oftawq [--help] [--version] [--quiet] [--verbose] COMMAND [ARGS]\n"
  "\n"
  "Runs OFT adapters on AWQ 4-bit quantized linear layers on OpenCL devices.\n"
  "\n"
  "commands:\n"
  "  info [--json]      OpenCL platforms, devices and capabilities; the cache folder\n"
  "  forward            run modules of an AWQ model folder, with OFT adapters, on a tensor file\n"
  "  inspect            which modules each adapter wraps (as PEFT would), with what, and the device memory\n"
  "  train              train an OFT adapter on a module to (x, y_target) pairs; save it for PEFT\n"
  "  bench              time the layer and its parts against peers on this device\n"
  "  tune               tune kernel parameters and paths for this device, within a time budget\n"
  "\n"
  "Run 'oftawq COMMAND --help' for the options of a command. Global options, before or\n"
  "after the command:\n"
  "  --quiet            no warnings (errors are one line on stderr, always)\n"
  "  --verbose          details too: compiler logs after an error, library progress\n"
  "\n"
  "environment: OFTAWQ_DEVICE (device selector), OFTAWQ_CACHE_DIR (cache folder),\n"
  "             OFTAWQ_CL_DIR (folder of .cl files replacing the built-in kernels)\n";

int main(int argc, char **argv)
{
  argc = cli_global_options(argc, argv);
  if (argc < 2) {
    fputs(usage_main, stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(usage_main, stdout);
    return EXIT_SUCCESS;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("oftawq %s\n", oftawq_version_string());
    return EXIT_SUCCESS;
  }
  if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 1, argv + 1);
  if (!strcmp(argv[1], "forward")) return cmd_forward(argc - 1, argv + 1);
  if (!strcmp(argv[1], "inspect")) return cmd_inspect(argc - 1, argv + 1);
  if (!strcmp(argv[1], "tune")) return cmd_tune(argc - 1, argv + 1);
  if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
  return cli_usage_error(usage_main, "unknown command '%s'", argv[1]);
}
