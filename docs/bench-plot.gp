# bench-plot.gp: time vs M per implementation, from `make bench-plot` (gnuplot; docs/bench-plot.tsv holds one
# block per implementation, in the order of `impls`, blocks separated by two blank lines).
set terminal pngcairo size 900,600 noenhanced
set output outfile
set title "oftawq bench " . shape . ": median time per call vs tokens M\n" . device
set xlabel "tokens M"
set ylabel "milliseconds"
set logscale xy
set key top left
set grid
impls = "awq oft_awq oft_awq_recompute rotate clblast_f32 copy"
plot for [k=1:words(impls)] datafile index (k-1) using 1:3 with linespoints title word(impls, k)
