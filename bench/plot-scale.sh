#!/bin/sh
# bench/plot-scale.sh JSON PNG: draw ns/page against pages from the
# scale_sweep row of a `devmm bench --json` file (see bench/scale.c).
# Needs jq and gnuplot (make bench-scale installs gnuplot-nox, jq).
set -eu
json=$1
png=$2
dat=${png%.png}.dat
jq -r '.[] | select(.name == "scale_sweep") | .points[] | [.pages, .touch, .to_dev, .to_sys, .unmap] | @tsv' \
	"$json" > "$dat"
if [ ! -s "$dat" ]; then
	echo "$json has no scale_sweep row" >&2
	exit 1
fi
gnuplot -e "dat='$dat'; out='$png'" "$(dirname "$0")/plot-scale.gp"
echo "wrote $png"
