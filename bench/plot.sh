#!/bin/sh
# bench/plot.sh JSON PNG: draw the ratio of every benchmark that has a
# baseline (the JSON of `devmm bench --json`), with its target where the
# issue set one. Needs jq and gnuplot (make bench installs gnuplot-nox, jq).
set -eu
json=$1
png=$2
dat=${png%.png}.dat
# name, ratio, target ratio (? when none), bar colour, xtic label
jq -r '.[] | select(.baseline > 0) | [
	.name,
	.ratio,
	(.target_ratio // "?"),
	(if .met == null then 10066329 elif .met then 2924588 else 14034728 end),
	(.name + (if .target then "\n(" + .target + (.target_ratio | tostring) + ")" else "" end))
] | @tsv' "$json" > "$dat"
gnuplot -e "dat='$dat'; out='$png'" "$(dirname "$0")/plot.gp"
echo "wrote $png"
