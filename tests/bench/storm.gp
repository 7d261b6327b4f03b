# SPDX-License-Identifier: MIT
# storm.gp: the import-storm figure from storm.csv (tests/bench/storm.sh):
# the median seconds of each way at each N.
#     gnuplot -e "csv='storm.csv'; png='storm.png'; title='...'" tests/bench/storm.gp
# A way whose runs failed (the zip, for FEniCS) has no points; a label
# says so.
if (!exists("title")) title = ""
if (title eq "") title = "import storm: N interpreters at once, their trees behind slowfs"
set terminal pngcairo size 900,560 font ",11"
set output png
set datafile separator ","
set title title
set xlabel "interpreters importing at once"
set ylabel "seconds until the last one is done (staging included)"
set logscale xy 2
set xrange [0.8:20]
set xtics (1, 2, 4, 8, 16)
set key top left
set grid
way(w) = sprintf("< grep '^%s,' '%s'", w, csv)
failed(w) = system(sprintf("grep -c '^%s,[0-9]*,failed' '%s' || true", w, csv)) + 0 > 0 ? " (failed)" : ""
if (failed("zip") ne "") set label 1 "zip (2014): the import failed at every N" at graph 0.98, graph 0.05 right
plot way("naive") using 2:3 with linespoints lw 2 title "naive", \
     way("zip") using 2:3 with linespoints lw 2 title "zip (2014)".failed("zip"), \
     way("stage-py") using 2:3 with linespoints lw 2 title "stage-py, trees on PYTHONPATH", \
     way("bundle") using 2:3 with linespoints lw 2 title "stage-py, trees from a bundle", \
     way("env") using 2:3 with linespoints lw 2 title "stage-py, whole environment", \
     way("env-bundle") using 2:3 with linespoints lw 2 title "stage-py, whole environment from a bundle", \
     way("warm") using 2:3 with linespoints lw 2 dt 2 title "the same, second job on a warm node"
