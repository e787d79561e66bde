#!/bin/sh
# SPDX-License-Identifier: MIT
#
# static-archive.sh LD OBJCOPY AR INTERNAL_ARCHIVE OUTPUT
#
# Build the installed libdevmm.a from the internal archive (compiled with
# -fvisibility=hidden): link every object into one relocatable object, turn
# its hidden symbols into local ones, and archive that single object. Only
# the symbols the public header declares stay global, as in libdevmm.so.
set -eu
if [ $# -ne 5 ]; then
	echo "usage: $0 LD OBJCOPY AR INTERNAL_ARCHIVE OUTPUT" >&2
	exit 2
fi
ld=$1 objcopy=$2 ar=$3 in=$4 out=$5
obj="${out%.a}.o"
rm -f "$obj" "$out"
"$ld" -r -o "$obj" --whole-archive "$in"
"$objcopy" --localize-hidden "$obj"
"$ar" rcs "$out" "$obj"
rm -f "$obj"
