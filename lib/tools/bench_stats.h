/* bench_stats.h: internal interface of bench_stats.c - what the benchmarks report from their timed runs. */
#ifndef OFTAWQ_BENCH_STATS_H
#define OFTAWQ_BENCH_STATS_H

#include <stddef.h>

#include "oftawq.h"

/* Fills runs, min_s, median_s, gbps and gflops of `r` (bytes and flops set) from `runs` times in seconds,
 * which it sorts. */
void oftawq__bench_summarize(oftawq_bench_result *r, double *times, size_t runs);

#endif /* OFTAWQ_BENCH_STATS_H */
