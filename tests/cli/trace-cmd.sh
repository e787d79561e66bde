#!/bin/sh
# devmm trace on the command line (cli/trace_cmd.c): gen writes the same
# bytes for the same seed and its output passes check; check reports a bad
# line as FILE:LINE:COL and exits 1, an unreadable file (or a directory) 2,
# on stderr; run and explain without a file print the usage
# (tests/cli/trace_run_test.py tests them).
#   trace-cmd.sh DEVMM
set -u
devmm=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for p in streaming strided random stencil pingpong; do
	"$devmm" trace gen $p --seed 7 > "$tmp/$p.a" 2> "$tmp/err" || fail "gen $p"
	grep -qx 'trace gen: seed 7' "$tmp/err" || fail "gen $p: seed not printed"
	"$devmm" trace gen $p --seed 7 > "$tmp/$p.b" 2>/dev/null
	cmp -s "$tmp/$p.a" "$tmp/$p.b" || fail "gen $p: not deterministic"
	"$devmm" trace check "$tmp/$p.a" > "$tmp/out" || fail "check $p: $(cat "$tmp/out")"
	grep -q ', 0 errors$' "$tmp/out" || fail "check $p: $(cat "$tmp/out")"
done
"$devmm" trace check "$tmp/streaming.a" | grep -qx \
	'  gpu0 touched 16777216 bytes: R 16777216 in 4096, W 0 in 0, A 0 in 0' ||
	fail "streaming summary"
"$devmm" trace gen pingpong --seed 7 2>/dev/null | "$devmm" trace check - | grep -qx \
	'  records: ALLOC 1, FREE 1, access 1280, COMPUTE 80, KERNEL_BEGIN 10, KERNEL_END 10, ADVISE 0, PREFETCH 0, SYNC 20' ||
	fail "pingpong summary from stdin"

printf 'ALLOC a 0x10000 4096\ngpu0 R 0x20000 1\ncpu X 0x10000 1\nSYNC\n' > "$tmp/bad.trace"
"$devmm" trace check "$tmp/bad.trace" > "$tmp/out"
[ $? -eq 1 ] || fail "check of a bad trace: status"
grep -qx "$tmp/bad.trace:2:8: gpu0 R at 0x20000: outside every live allocation" "$tmp/out" ||
	fail "bad trace: $(cat "$tmp/out")"
grep -q "^$tmp/bad.trace:3:5: " "$tmp/out" || fail "bad trace line 3: $(cat "$tmp/out")"
grep -qx "$tmp/bad.trace: 2 records, 2 errors" "$tmp/out" || fail "bad trace summary"

"$devmm" trace check "$tmp/missing.trace" 2> "$tmp/err" > /dev/null
[ $? -eq 2 ] || fail "check of a missing file: status"
grep -q 'cannot read' "$tmp/err" || fail "missing file: $(cat "$tmp/err")"
"$devmm" trace check "$tmp" 2> "$tmp/err" > "$tmp/out"
[ $? -eq 2 ] || fail "check of a directory: status"
grep -qx "$tmp: cannot read: Is a directory" "$tmp/err" && [ ! -s "$tmp/out" ] ||
	fail "directory: $(cat "$tmp/err" "$tmp/out")"
"$devmm" trace gen nosuch > "$tmp/out" 2>/dev/null
[ $? -eq 2 ] && [ ! -s "$tmp/out" ] || fail "gen of an unknown pattern"
for c in run explain; do
	"$devmm" trace $c 2> "$tmp/err"
	[ $? -eq 2 ] && grep -q '^usage: ' "$tmp/err" || fail "trace $c without a file"
done
echo "trace-cmd: passed"
