# The latency distribution (CDF, one line per benchmark) and the throughput by message
# size, side by side in one PNG. Drawn by `shmq bench --plot` (which has this script
# built in) and by `bench/report.py --plot` from a full run's JSON. Both write the data
# files and set, with -e or before this script:
#   out              the PNG to write
#   latency          one block per benchmark, blocks separated by two blank lines;
#                    rows "one-way latency in ns" "fraction of round trips at or below it"
#   latency_titles   the blocks' titles, one word each
#   throughput       a header row "bytes title1 title2 ...", then per message size
#                    "bytes bytes_per_s1 bytes_per_s2 ..." ("NaN": not measured)
#   throughput_columns  how many columns that file has
set terminal pngcairo size 1400,560 font "sans,10"
set output out
set multiplot layout 1,2

set title "One-way latency (ping-pong round trip / 2)"
set logscale x
set format x "%.0s%c"
set xlabel "latency (ns)"
set ylabel "fraction of round trips"
set yrange [0:1]
set key bottom right
set grid
plot for [i=1:words(latency_titles)] latency index (i-1) using 1:2 with steps lw 2 title word(latency_titles, i)

set title "Throughput by message size (two processes, every byte touched)"
set logscale xy
set format x "%.0s%c"
set format y "%.0s%c"
set xlabel "message size (bytes)"
set ylabel "bytes per second"
set autoscale y
set key top left autotitle columnhead
plot for [c=2:throughput_columns] throughput using 1:c with linespoints lw 2 pt 7

unset multiplot
