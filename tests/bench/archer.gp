# SPDX-License-Identifier: MIT
# archer.gp: the ARCHER report's figure from archer.csv (tests/bench/archer.sh):
# for each number of ranks, the job's total time and its computation, naive
# and staged.
#     gnuplot -e "csv='archer.csv'; png='archer.png'" tests/bench/archer.gp
set terminal pngcairo size 900,560 font ",11"
set output png
set datafile separator ","
set title "A DOLFIN Poisson solve under mpiexec -n N, its trees and form cache behind slowfs"
set xlabel "MPI ranks (on 2 cores)"
set ylabel "seconds"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key below
set grid ytics
set yrange [0:*]
# one row per N: naive total, naive compute, staged total, staged compute
rows = sprintf("< awk -F, 'NR > 1 { t[$1 \",\" $2] = $3; c[$1 \",\" $2] = $4; if (!($2 in seen)) { seen[$2] = 1; n[++k] = $2 } } END { for (i = 1; i <= k; i++) print n[i] \",\" t[\"naive,\" n[i]] \",\" c[\"naive,\" n[i]] \",\" t[\"staged,\" n[i]] \",\" c[\"staged,\" n[i]] }' '%s'", csv)
plot rows using 2:xtic(1) title "naive: total", \
     '' using 3 title "naive: computation", \
     '' using 4 title "staged from a bundle: total (staging included)", \
     '' using 5 title "staged: computation"
