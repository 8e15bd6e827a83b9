/* bench_stats.c: what the benchmarks report from their timed runs - median, minimum and the derived rates. */
#include "config.h"

#include <stdlib.h>

#include "tools/bench_stats.h"

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void oftawq__bench_summarize(oftawq_bench_result *r, double *t, size_t runs)
{
  qsort(t, runs, sizeof *t, cmp_double);
  r->runs = (int)runs;
  r->min_s = t[0];
  r->median_s = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
  r->gbps = r->bytes / r->median_s * 1e-9;
  r->gflops = r->flops / r->median_s * 1e-9;
}
