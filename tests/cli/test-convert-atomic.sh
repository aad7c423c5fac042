#!/bin/sh
# Output appears only when complete: errors and signals leave nothing behind,
# and the input is never modified.
. "$(dirname "$0")/functions.sh"

make_mixed_raw "$TMPD/in.raw" 8
before=$(sha "$TMPD/in.raw"); mtime=$(stat -c %Y "$TMPD/in.raw")
mkdir "$TMPD/out"

# unknown output option: error, nothing left
"$SCIMG" convert -O raw -o nosuch=1 "$TMPD/in.raw" "$TMPD/out/x.raw" 2>"$TMPD/err"; rc=$?
[ $rc -eq 2 ] || fail "bad option exit $rc"
grep -q "nosuch" "$TMPD/err" || fail "error does not name the option"
[ -z "$(ls -A "$TMPD/out")" ] || fail "left files behind: $(ls -A "$TMPD/out")"

# missing input
"$SCIMG" convert -O raw "$TMPD/missing" "$TMPD/out/y.raw" 2>"$TMPD/err"; [ $? -eq 2 ] || fail "missing input"
grep -q "missing" "$TMPD/err" || fail "error does not name the file"
[ -z "$(ls -A "$TMPD/out")" ] || fail "left files behind"

# SIGTERM / SIGINT during a long conversion (-S 0 of a big sparse file)
for sig in TERM INT; do
  truncate -s 8G "$TMPD/big.raw"
  "$SCIMG" convert -S 0 -f raw -O raw "$TMPD/big.raw" "$TMPD/out/big.raw" 2>"$TMPD/err" &
  pid=$!
  wait_for_temp "$TMPD/out" $pid
  sleep 0.3
  kill -$sig $pid
  wait $pid; rc=$?
  [ $rc -ne 0 ] || fail "SIG$sig: convert finished before the signal (machine too fast?)"
  grep -q "interrupted" "$TMPD/err" || fail "SIG$sig: no 'interrupted' message: $(cat "$TMPD/err")"
  [ -z "$(ls -A "$TMPD/out")" ] || fail "SIG$sig left files behind: $(ls -A "$TMPD/out")"
  rm -f "$TMPD/big.raw"
done

# existing target is replaced only on success
echo old > "$TMPD/out/keep.raw"
"$SCIMG" convert -O raw -o nosuch=1 "$TMPD/in.raw" "$TMPD/out/keep.raw" 2>/dev/null
[ "$(cat "$TMPD/out/keep.raw")" = old ] || fail "failed convert clobbered the target"
"$SCIMG" convert -f raw -O raw "$TMPD/in.raw" "$TMPD/out/keep.raw" || fail "convert over existing"
cmp "$TMPD/in.raw" "$TMPD/out/keep.raw" || fail "replaced content"

[ "$(sha "$TMPD/in.raw")" = "$before" ] || fail "input changed"
[ "$(stat -c %Y "$TMPD/in.raw")" = "$mtime" ] || fail "input mtime changed"
echo ok
