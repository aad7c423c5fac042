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
# -s: sizes must match, and block status too (as qemu-img compare -s)
"$SCIMG" compare -s -f raw -F raw "$TMPD/a.raw" "$TMPD/c.raw" > "$TMPD/out"; rc=$?
[ $rc -eq 1 ] && grep -q 'Strict mode: Image size mismatch!' "$TMPD/out" || fail "-s size: $rc $(cat "$TMPD/out")"
"$SCIMG" compare -s -f raw -F raw "$TMPD/a.raw" "$TMPD/a.raw" >/dev/null || fail "-s identical"
# the copy's written zeros became holes: same content, other block status
cp --sparse=always "$TMPD/a.raw" "$TMPD/d.raw"
"$SCIMG" compare -s -f raw -F raw "$TMPD/a.raw" "$TMPD/d.raw" > "$TMPD/out"; rc=$?
[ $rc -eq 1 ] && grep -q 'Strict mode: Offset [0-9]* block status mismatch!' "$TMPD/out" || fail "-s block status: $rc $(cat "$TMPD/out")"
# -p: progress on stderr ends at 100%
"$SCIMG" compare -p -f raw -F raw "$TMPD/a.raw" "$TMPD/d.raw" 2> "$TMPD/err" >/dev/null || fail "-p"
grep -q '100.00/100%' "$TMPD/err" || fail "-p shows no progress"
if [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ]; then
  # a qcow2 with unallocated and zero runs against its raw conversion:
  # same data, different block status; scimg and qemu-img agree
  timeout 120 "$SCIMG" convert -f raw -O qcow2 "$TMPD/a.raw" "$TMPD/a.qcow2" || fail "convert"
  timeout 120 "$SCIMG" convert -f raw -O raw "$TMPD/a.raw" "$TMPD/full.raw" -S 0 || fail "convert -S 0"
  for pair in "a.qcow2 a.raw" "a.qcow2 full.raw" "a.raw full.raw" "a.raw d.raw" "a.qcow2 a.qcow2"; do
    set -- $pair
    s=$(timeout 120 "$SCIMG" compare -s "$TMPD/$1" "$TMPD/$2"); src=$?
    q=$(timeout 120 "$QEMU_IMG" compare -s "$TMPD/$1" "$TMPD/$2"); qrc=$?
    [ $src -eq $qrc ] && [ "$s" = "$q" ] || fail "-s $pair: scimg $src '$s', qemu-img $qrc '$q'"
  done
fi
echo ok
