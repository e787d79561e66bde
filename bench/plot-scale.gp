# ns per page of each phase of the scale runs against the size of the
# working set (bench/plot-scale.sh makes `dat`: pages, touch, to_dev,
# to_sys, unmap; writes `out`). Flat lines: the cost per page does not
# grow with size.
set terminal pngcairo size 1000,600 font "sans,10"
set output out
set datafile separator "\t"
set title "devmm bench scale_sweep: ns per page against the working set (contents=none, 4x oversubscribed device)" noenhanced
set logscale x 2
set format x "2^{%L}"
set xrange [8192:33554432]
set yrange [0:*]
set xlabel "pages in the mapping (2^{14} = 64 MiB ... 2^{24} = 64 GiB)"
set ylabel "ns per page"
set grid
set key top left
plot dat using 1:2 with linespoints lw 2 title "touch (MADV_POPULATE_WRITE)" noenhanced, \
     dat using 1:3 with linespoints lw 2 title "migrate to device (per migrated page)", \
     dat using 1:4 with linespoints lw 2 title "migrate back (per migrated page)", \
     dat using 1:5 with linespoints lw 2 title "munmap"
