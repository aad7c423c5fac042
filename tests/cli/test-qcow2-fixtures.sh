#!/bin/sh
# Every qcow2 and raw sample in the shared fixtures reads bit-exact (the
# guest content SHA-256 of images.tsv); the qcow v1 sample is not taken
# for qcow2; the bundled example converts.
. "$(dirname "$0")/functions.sh"

# the bundled example first (no external fixtures needed)
ex="$top_srcdir/tests/fixtures/example.qcow2"
[ -f "$ex" ] || fail "missing $ex"
"$SCIMG" info "$ex" | grep -q '^file format: qcow2' || fail "example not probed as qcow2"
"$SCIMG" convert -O raw "$ex" "$TMPD/example.raw" || fail "convert example"
[ "$(stat -c %s "$TMPD/example.raw")" = 67108864 ] || fail "example virtual size"
grep -q 'scimg example' "$TMPD/example.raw" || fail "example text missing"

requires_external
tsv="$SHARED_DIR/fixtures/external/images.tsv"
n=0 bad=0
while IFS="$(printf '\t')" read -r file qfmt sub vsize fsha csha rest; do
  case "$qfmt" in qcow2|raw) ;; *) continue ;; esac
  [ "$csha" = "-" ] && continue
  fopt=
  [ "$qfmt" = raw ] && fopt="-f raw"
  out="$TMPD/out.raw"
  rm -f "$out"
  # shellcheck disable=SC2086
  if ! timeout 120 "$SCIMG" convert $fopt -O raw "$EXT_UNPACKED/$file" "$out" 2>"$TMPD/err"; then
    echo "convert failed: $file: $(cat "$TMPD/err")"
    bad=$((bad + 1))
    continue
  fi
  got=$(sha "$out")
  if [ "$got" != "$csha" ]; then
    echo "content differs: $file ($got, expected $csha)"
    bad=$((bad + 1))
  fi
  if [ "$qfmt" = qcow2 ]; then
    "$SCIMG" info "$EXT_UNPACKED/$file" | grep -q '^file format: qcow2' || {
      echo "not probed as qcow2: $file"; bad=$((bad + 1)); }
  fi
  n=$((n + 1))
done < "$tsv"
echo "$n fixtures read, $bad failures"
[ "$n" -ge 19 ] || fail "expected at least 19 qcow2/raw fixtures, found $n"
[ "$bad" = 0 ] || fail "$bad fixtures failed"

# qcow version 1 is not qcow2: not probed as qcow2, refused when forced
v1="$EXT_UNPACKED/sleuthkit/image.qcow"
"$SCIMG" info "$v1" | grep -q '^file format: qcow2' && fail "qcow v1 probed as qcow2"
"$SCIMG" info -f qcow2 "$v1" 2>"$TMPD/err" && fail "qcow v1 opened as qcow2"
grep -q 'version 1' "$TMPD/err" || fail "qcow v1 error does not say version 1: $(cat "$TMPD/err")"
echo ok
