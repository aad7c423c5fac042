#!/bin/sh
# The fuzz target builds and links with clang (make fuzz-build: the
# library's own sources and link flags) and runs for a few seconds per
# format without a crash, a timeout or an OOM.  Every format the scimg
# command can read is fuzzed.
. "$(dirname "$0")/../cli/functions.sh"
[ -z "${SCIMG_SANITIZERS:-}" ] || skip "the plain build's run covers it (the fuzzer has its own sanitizers)"
requires clang make
secs=${FUZZ_TEST_SECONDS:-5}
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$TMPD/t.c"
timeout 120 clang -fsanitize=fuzzer,address "$TMPD/t.c" -o "$TMPD/t" >"$TMPD/err" 2>&1 ||
  skip "clang cannot link a libFuzzer target (libclang-rt-14-dev?): $(head -3 "$TMPD/err")"

# the same make as `make fuzz-build`, two compiles at a time (the test
# harness gives no jobserver to a test)
start=$(date +%s)
MAKEFLAGS= timeout 600 make -s -C "$top_builddir" -j2 fuzz-build >"$TMPD/build.log" 2>&1 ||
  { tail -30 "$TMPD/build.log"; fail "make fuzz-build failed"; }
bin="$top_builddir/fuzz/fuzz-image"
[ -x "$bin" ] || fail "no $bin after make fuzz-build"
echo "built in $(( $(date +%s) - start ))s"

fuzzed=$(timeout 30 "$bin" --list-formats) || fail "fuzz-image --list-formats: exit $?"
readable=$(formats read) || exit 1
for f in $readable; do
  echo "$fuzzed" | grep -qx "$f" || fail "'$f' is readable but not fuzzed (a plugin's sources missing from FUZZ_PLUGIN_SOURCES?)"
done
timeout 30 "$bin" --format=no-such-format -runs=0 >/dev/null 2>&1 && fail "an unknown format was accepted"

# each format for $secs seconds, two at a time, from its saved corpus (a
# 30 s limit per input: a loaded CI machine is no reason to go red)
run() {
  f=$1 c="$TMPD/corpus-$f"
  mkdir -p "$c" "$TMPD/crash-$f"
  for s in "$top_srcdir/tests/fuzz/corpus/$f/"*; do
    case $s in
      *.seed.gz) gzip -dc "$s" >"$c/$(basename "$s" .seed.gz)" ;;
      *) cp "$s" "$c/" ;;
    esac
  done 2>/dev/null
  timeout $((secs + 60)) "$bin" --format="$f" -max_total_time="$secs" -rss_limit_mb=512 \
    -malloc_limit_mb=512 -timeout=30 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$TMPD/crash-$f/" "$c" >"$TMPD/log-$f" 2>&1
  echo $? >"$TMPD/rc-$f"
}
set -- $fuzzed
while [ $# -gt 0 ]; do
  run "$1" & p1=$!
  [ $# -gt 1 ] && { run "$2" & p2=$!; wait $p2; shift; }
  wait $p1; shift
done
bad=0
for f in $fuzzed; do
  rc=$(cat "$TMPD/rc-$f")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMPD/log-$f")
  echo "$f: exit $rc, ${runs:-?} runs"
  if [ "$rc" != 0 ]; then
    grep -m1 -A15 'ERROR\|runtime error\|Initialize' "$TMPD/log-$f" | head -20
    for a in "$TMPD/crash-$f"/*; do
      [ -f "$a" ] && echo "reproducer ($f, base64):" && base64 -w0 "$a" | head -c 4000 && echo
    done
    bad=1
  fi
done
[ $bad = 0 ] || fail "a fuzz run failed"
echo "ok ($(( $(date +%s) - start ))s)"
