#!/bin/sh
# SPDX-License-Identifier: MIT
#
# static-archive.sh OBJCOPY AR INTERNAL_ARCHIVE OUTPUT CC [CC_FLAGS...]
#
# Build the installed libdevmm.a from the internal archive (compiled with
# -fvisibility=hidden): link every object into one relocatable object, turn
# its hidden symbols into local ones, and archive that single object. Only
# the symbols the public header declares stay global, as in libdevmm.so.
#
# The relocatable link goes through the compiler driver (CC -r), so that
# with link-time optimization (-Db_lto=true: the objects hold only the
# compiler's intermediate code) CC_FLAGS can ask for real code
# (gcc: -flto -flinker-output=nolto-rel): objcopy can only localize
# symbols of machine code, and an archive of intermediate code would be
# usable by the same compiler version only.
set -eu
if [ $# -lt 5 ]; then
	echo "usage: $0 OBJCOPY AR INTERNAL_ARCHIVE OUTPUT CC [CC_FLAGS...]" >&2
	exit 2
fi
objcopy=$1 ar=$2 in=$3 out=$4
shift 4
obj="${out%.a}.o"
rm -f "$obj" "$out"
"$@" -r -nostdlib -o "$obj" -Wl,--whole-archive "$in" -Wl,--no-whole-archive
"$objcopy" --localize-hidden "$obj"
"$ar" rcs "$out" "$obj"
rm -f "$obj"
