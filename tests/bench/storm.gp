# SPDX-License-Identifier: MIT
# storm.gp: the import-storm figure from storm.csv (tests/bench/storm.sh).
#     gnuplot -e "csv='storm.csv'; png='storm.png'; title='...'" tests/bench/storm.gp
if (!exists("title")) title = ""
if (title eq "") title = "import storm: N interpreters at once, their trees behind slowfs"
set terminal pngcairo size 900,560 font ",11"
set output png
set datafile separator ","
set title title
set xlabel "interpreters importing at once"
set ylabel "seconds until the last one is done (staging included)"
set logscale xy 2
set xtics (1, 2, 4, 8, 16)
set key top left
set grid
plot csv using 2:(strcol(1) eq "naive" ? $3 : 1/0) with linespoints lw 2 title "naive", \
     csv using 2:(strcol(1) eq "zip" ? $3 : 1/0) with linespoints lw 2 title "zip (2014)", \
     csv using 2:(strcol(1) eq "stage-py" ? $3 : 1/0) with linespoints lw 2 title "stage-py, trees on PYTHONPATH", \
     csv using 2:(strcol(1) eq "bundle" ? $3 : 1/0) with linespoints lw 2 title "stage-py, trees from a bundle", \
     csv using 2:(strcol(1) eq "env" ? $3 : 1/0) with linespoints lw 2 title "stage-py, whole environment"
