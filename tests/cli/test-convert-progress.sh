#!/bin/sh
# convert -p into a non-terminal (a CI log): plain lines, one per phase and
# per 5 % of the allocated data (not hundreds of carriage-return updates),
# counting allocated data only (holes are not data), ending with "done".
. "$(dirname "$0")/functions.sh"

in="$TMPD/in.raw"
truncate -s 512M "$in"
# 24 MiB of data in 3 places; the rest is holes
for seek in 0 200 480; do
  dd if=/dev/urandom of="$in" bs=1M count=8 seek=$seek conv=notrunc status=none
done
timeout 120 "$SCIMG" convert -p -O qcow2 "$in" "$TMPD/out.qcow2" > "$TMPD/out" 2> "$TMPD/err" ||
  { cat "$TMPD/err"; fail "convert -p"; }
[ -s "$TMPD/out" ] && fail "progress went to stdout"
if LC_ALL=C grep -q "$(printf '\r')" "$TMPD/err"; then fail "carriage returns in a non-terminal stream"; fi
n=$(wc -l < "$TMPD/err")
[ "$n" -ge 5 ] && [ "$n" -le 26 ] || { cat "$TMPD/err"; fail "$n progress lines, expected 5..26"; }
grep -q '^scimg convert: scanning' "$TMPD/err" || fail "no scanning phase line"
[ "$(grep -c '^scimg convert: copying ' "$TMPD/err")" -ge 3 ] || fail "too few copying lines"
grep -q 'of 24 MiB data' "$TMPD/err" || { cat "$TMPD/err"; fail "total is not the 24 MiB allocated"; }
tail -n 1 "$TMPD/err" | grep -q '^scimg convert: done *100%  24 MiB of 24 MiB data, .*took [0-9]' ||
  { cat "$TMPD/err"; fail "last line is not the done line"; }
# percentages never go down
grep -o ' [0-9]*%' "$TMPD/err" | tr -d ' %' | sort -n -c 2>/dev/null || fail "percentages go down"
timeout 120 "$SCIMG" compare "$in" "$TMPD/out.qcow2" > /dev/null || fail "content differs"
# no data at all: still ends with done
truncate -s 64M "$TMPD/empty.raw"
timeout 60 "$SCIMG" convert -p -O raw "$TMPD/empty.raw" "$TMPD/empty.out" 2> "$TMPD/err" || fail "convert -p of an empty disk"
tail -n 1 "$TMPD/err" | grep -q 'done *100%' || { cat "$TMPD/err"; fail "empty disk: no done line"; }
echo ok
