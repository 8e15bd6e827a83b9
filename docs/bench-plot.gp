# bench-plot.gp: time vs M per implementation, from `make bench-plot` (gnuplot; docs/bench-plot.tsv).
set terminal pngcairo size 900,600 noenhanced
set output outfile
set title "oftawq bench, " . shape . " - median time per call vs tokens M (" . device . ")"
set xlabel "tokens M"
set ylabel "milliseconds"
set logscale xy
set key top left
set grid
impls = "awq oft_awq oft_awq_recompute rotate clblast_f32 copy"
plot for [i in impls] datafile using 1:(strcol(2) eq i ? $3 : 1/0) with linespoints title i
