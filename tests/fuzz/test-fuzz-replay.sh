#!/bin/sh
# Replay every saved fuzz input (seeds and fixed crashes; NAME.seed.gz is
# kept compressed) through the fuzz target, for the format of its directory and with every format bidding:
# no crash, no hang.  Every readable format (the registry, as the scimg
# command sees it) has a corpus directory and is in the fuzz target, and no
# corpus directory names a format that does not exist.
. "$(dirname "$0")/../cli/functions.sh"
replay="$top_builddir/tests/fuzz/fuzz-replay"
[ -x "$replay" ] || fail "fuzz-replay not built"
fuzzed=$(timeout 30 "$replay" --list-formats) || fail "fuzz-replay --list-formats: exit $?"
readable=$(formats read) || exit 1
for f in $readable; do
  echo "$fuzzed" | grep -qx "$f" || fail "'$f' is readable but not in the fuzz target (FUZZ_PLUGIN_SOURCES)"
  [ -d "$top_srcdir/tests/fuzz/corpus/$f" ] || fail "no seed corpus tests/fuzz/corpus/$f"
done
for d in "$top_srcdir"/tests/fuzz/corpus/*/; do
  f=$(basename "$d")
  echo "$fuzzed" | grep -qx "$f" || fail "tests/fuzz/corpus/$f names no format"
done
n=0
for f in $fuzzed; do
  for file in "$top_srcdir/tests/fuzz/corpus/$f"/*; do
    [ -f "$file" ] || continue
    case $file in
      *.seed.gz) gzip -dc "$file" >"$TMPD/seed" || fail "$file: gzip -d"; file="$TMPD/seed" ;;
    esac
    timeout 60 "$replay" "$f" "$file"; rc=$?
    [ $rc -eq 0 ] || fail "$f: $file: exit $rc"
    timeout 60 "$replay" probe "$file"; rc=$?
    [ $rc -eq 0 ] || fail "probe: $file: exit $rc"
    n=$((n + 1))
  done
done
[ $n -gt 0 ] || fail "no input replayed"
echo "replayed $n inputs of $(echo $fuzzed | wc -w) formats"
