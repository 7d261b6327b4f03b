# SPDX-License-Identifier: MIT
# net.gp: the network figure from net.csv (tests/bench/net.sh): every
# run's time against the node count: filled, the job's wall time with its
# launch (every method); open, stage-py's own total (--stats).
#     gnuplot -e "csv='net.csv'; png='net.png'" tests/bench/net.gp
set terminal pngcairo size 900,560 font ",11" noenhanced
set output png
set datafile separator ","
set title "cold staging over links limited by tc (every fake node in a namespace of its own)"
set xlabel "nodes"
set ylabel "seconds"
set logscale x 2
set xrange [0.8:10]
set yrange [0:*]
set xtics (1, 2, 4, 8)
set key top left
set grid
way(w) = sprintf("< grep ',%s,' '%s'", w, csv)
plot way("two-tree") using 1:4 with points pt 7 ps 1.2 lc 1 title "stage-py, two trees: wall", \
     way("two-tree") using 1:5 with points pt 6 ps 1.2 lc 1 title "... its own total", \
     way("binary") using 1:4 with points pt 5 ps 1.2 lc 2 title "stage-py, binary tree: wall", \
     way("binary") using 1:5 with points pt 4 ps 1.2 lc 2 title "... its own total", \
     way("bcast-tar") using 1:4 with points pt 9 ps 1.2 lc 3 title "MPI_Bcast of a tar, then untar (python-mpi-bcast): wall"
