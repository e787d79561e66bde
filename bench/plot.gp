# The benchmarks' ratios against their targets (bench/plot.sh makes `dat`:
# name, ratio, target ratio or ?, colour, label; writes `out`).
set terminal pngcairo size 1400,700 font "sans,10"
set output out
set datafile separator "\t"
set datafile missing "?"
set title "devmm bench: ratio to the baseline measured in the same run (log scale)\ngreen: target met, red: missed, grey: no target; black bar: the target (<= lower is better, >= higher is better)"
set logscale y
set yrange [0.001:20]
set ylabel "ratio (devmm / baseline)"
set grid ytics
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -35 left noenhanced
set xrange [-0.6:*]
set key off
set bmargin 9
plot dat using 0:2:4:xtic(5) with boxes lc rgb variable, \
     dat using 0:(0.0016):(sprintf("%.3g", $2)) with labels font "sans,11", \
     dat using ($0 - 0.45):3:(0.9):(0) with vectors nohead lw 4 lc rgb "black"
