#!/bin/sh
# compare: 0 identical, 1 different (offset named), 2 error; size rule.
. "$(dirname "$0")/functions.sh"

make_mixed_raw "$TMPD/a.raw" 8
cp --sparse=always "$TMPD/a.raw" "$TMPD/b.raw"
"$SCIMG" compare -f raw -F raw "$TMPD/a.raw" "$TMPD/b.raw" | grep -q identical || fail "identical"
printf 'X' | dd of="$TMPD/b.raw" bs=1 seek=5000000 conv=notrunc status=none
"$SCIMG" compare -f raw -F raw "$TMPD/a.raw" "$TMPD/b.raw" > "$TMPD/out"; rc=$?
[ $rc -eq 1 ] || fail "different exit $rc"
grep -q 'offset 5000000' "$TMPD/out" || fail "offset: $(cat "$TMPD/out")"
"$SCIMG" compare -q -f raw -F raw "$TMPD/a.raw" "$TMPD/b.raw" > "$TMPD/out"; [ $? -eq 1 ] && [ ! -s "$TMPD/out" ] || fail "-q"
# larger image with zero tail is equal; with data in the tail it is not
cp --sparse=always "$TMPD/a.raw" "$TMPD/c.raw"; truncate -s 16M "$TMPD/c.raw"
"$SCIMG" compare -f raw -F raw "$TMPD/a.raw" "$TMPD/c.raw" >/dev/null || fail "zero tail"
printf 'Y' | dd of="$TMPD/c.raw" bs=1 seek=10000000 conv=notrunc status=none
"$SCIMG" compare -f raw -F raw "$TMPD/a.raw" "$TMPD/c.raw" >/dev/null; [ $? -eq 1 ] || fail "data in tail"
"$SCIMG" compare -f raw "$TMPD/a.raw" "$TMPD/nonexistent" 2>/dev/null; [ $? -eq 2 ] || fail "error exit"
echo ok
