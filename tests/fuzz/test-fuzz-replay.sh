#!/bin/sh
# Replay every saved fuzz input (seeds and fixed crashes) through the reader
# of its format: no crash, no hang.
. "$(dirname "$0")/../cli/functions.sh"
replay="$top_builddir/tests/fuzz/fuzz-replay"
[ -x "$replay" ] || fail "fuzz-replay not built"
n=0
for f in $FUZZ_FORMATS; do
  d="$top_srcdir/tests/fuzz/corpus/$f"
  [ -d "$d" ] || continue
  for file in "$d"/*; do
    [ -f "$file" ] || continue
    timeout 60 "$replay" "$f" "$file"; rc=$?
    [ $rc -eq 0 ] || fail "$f: $file: exit $rc"
    timeout 60 "$replay" probe "$file"; rc=$?
    [ $rc -eq 0 ] || fail "probe: $file: exit $rc"
    n=$((n + 1))
  done
done
echo "replayed $n inputs"
