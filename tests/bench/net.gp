# SPDX-License-Identifier: MIT
# net.gp: the network figure from net.csv (tests/bench/net.sh): each run's
# wall time against the node count, one line per method through the
# medians' neighbourhood (every round is a point).
#     gnuplot -e "csv='net.csv'; png='net.png'" tests/bench/net.gp
set terminal pngcairo size 900,560 font ",11"
set output png
set datafile separator ","
set title "cold staging over links limited by tc (every fake node in a namespace of its own)"
set xlabel "nodes"
set ylabel "seconds, the job with its launch"
set logscale x 2
set xrange [0.8:10]
set yrange [0:*]
set xtics (1, 2, 4, 8)
set key top left
set grid
way(w) = sprintf("< grep ',%s,' '%s'", w, csv)
plot way("two-tree") using 1:4 with points pt 7 ps 1.2 title "stage-py, two trees", \
     way("binary") using 1:4 with points pt 5 ps 1.2 title "stage-py, binary tree", \
     way("bcast-tar") using 1:4 with points pt 9 ps 1.2 title "MPI_Bcast of a tar, then untar (python-mpi-bcast)"
