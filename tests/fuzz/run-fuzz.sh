#!/bin/bash
# run-fuzz.sh - run the libFuzzer target (built by `make fuzz-build`) for
# every format it can read (`fuzz-image --list-formats`: the registry), each
# for FUZZ_SECONDS, FUZZ_JOBS formats at a time, seeded from
# tests/fuzz/corpus/<fmt>, and the small shared samples whose name suggests
# the format.  The working corpus grows in BUILDDIR/fuzz/corpus-<fmt> (not in
# the source tree); crashes, timeouts and OOMs are saved in
# BUILDDIR/fuzz/crashes/<fmt>/.  Once fixed, copy the minimised reproducer
# (fuzz-<fmt> -minimize_crash=1 FILE) to tests/fuzz/corpus/<fmt>/ so that
# tests/fuzz/test-fuzz-replay.sh replays it.
#
# Usage: run-fuzz.sh SRCDIR BUILDDIR
# Environment: FUZZ_SECONDS (60: wall seconds per run), FUZZ_FORMATS
#   (default: every format), FUZZ_JOBS (1: formats at a time), FUZZ_RSS_MB
#   (512), FUZZ_ARGS (more libFuzzer flags), FUZZ_CPU_SECONDS (run each
#   format again, FUZZ_SECONDS at a time, until it has used this much CPU
#   time: on a loaded machine wall time says little).  Each run appends a
#   line to BUILDDIR/fuzz/stats.tsv: format, wall s, CPU s, executions,
#   corpus files, exit status, peak RSS MiB.
# Exit status: 0 when no format produced a crash, 1 otherwise.
set -uo pipefail
srcdir=$1 builddir=$2
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
out=$builddir/fuzz
bin=$out/fuzz-image
[ -x "$bin" ] || { echo "run-fuzz.sh: $bin not built (make fuzz-build)" >&2; exit 2; }
formats=${FUZZ_FORMATS:-$("$bin" --list-formats)} || exit 2
[ -n "$formats" ] || { echo "run-fuzz.sh: no format to fuzz" >&2; exit 2; }
ext=$srcdir/../shared/fixtures/external

seed() { # seed FORMAT CORPUS
  local f=$1 corpus=$2 g
  mkdir -p "$corpus"
  # NAME.seed.gz: a seed kept compressed (a VHDX is 1 MiB-aligned regions)
  for g in "$srcdir/tests/fuzz/corpus/$f/"*; do
    [ -f "$g" ] || continue
    case $g in
      *.seed.gz) gzip -dc "$g" >"$corpus/$(basename "$g" .seed.gz)" ;;
      *) cp -n "$g" "$corpus/" ;;
    esac
  done
  # the tiny fixtures kept in the tree
  for g in "$srcdir"/tests/fixtures/*."$f"; do
    [ -f "$g" ] && [ "$(stat -c %s "$g")" -le 1048576 ] && cp -n "$g" "$corpus/"
  done
  [ -d "$ext" ] || return 0
  # the shared real-world samples whose name suggests the format (small ones)
  find "$ext" -name "*.gz" -size -400k | while read -r g; do
    case "$g" in
      *"$f"*|*.$f.gz) gzip -dc "$g" 2>/dev/null | head -c 1M > "$corpus/ext-$(basename "$g" .gz)" ;;
    esac
  done
  true
}

run_one() { # run_one FORMAT
  local f=$1 corpus=$out/corpus-$f crashes=$out/crashes/$f log=$out/fuzz-$f.log
  local cpu=0 rounds=0 failed=0 rc t0 used runs
  local maxlen
  ln -sf fuzz-image "$out/fuzz-$f"
  seed "$f" "$corpus"
  mkdir -p "$crashes"
  # inputs up to 1 MiB, or up to the largest seed (at most 8 MiB): a format
  # whose smallest image is larger (VHDX) is not cut short
  maxlen=$(find "$corpus" -type f -printf '%s\n' | sort -n | tail -1)
  [ "${maxlen:-0}" -gt 1048576 ] || maxlen=1048576
  [ "$maxlen" -le 8388608 ] || maxlen=8388608
  while :; do
    t0=$(date +%s)
    # -malloc_limit_mb: one allocation over the RSS limit is a bug (a size
    # taken from the input without a bound)
    /usr/bin/time -f 'cpu %U %S' -o "$log.time" \
      "$out/fuzz-$f" -max_total_time="$secs" -rss_limit_mb="${FUZZ_RSS_MB:-512}" \
      -malloc_limit_mb="${FUZZ_RSS_MB:-512}" -timeout=10 -max_len="$maxlen" \
      -print_final_stats=1 -artifact_prefix="$crashes/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
    rc=$?
    used=$(awk '/^cpu /{printf "%.2f", $2 + $3}' "$log.time")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cpu=$(awk -v a="$cpu" -v b="${used:-0}" 'BEGIN { printf "%.2f", a + b }')
    rounds=$((rounds + 1))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$f" $(( $(date +%s) - t0 )) "${used:-0}" "${runs:-0}" \
      "$(ls "$corpus" | wc -l)" $rc "$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")" >>"$out/stats.tsv"
    echo "== fuzz-$f: exit $rc, ${used:-?} CPU s (total $cpu), ${runs:-?} runs," \
         "$(ls "$corpus" | wc -l) corpus files"
    if [ $rc -ne 0 ]; then
      grep -m1 -A12 'ERROR: \|==ERROR\|runtime error' "$log" | head -20
      ls "$crashes"
      cp "$log" "$log.fail-$(date +%s)"
      failed=1
    fi
    # the next round goes on from the corpus; a crash is not in it
    awk -v a="$cpu" -v b="${FUZZ_CPU_SECONDS:-0}" 'BEGIN { exit !(a < b) }' &&
      [ $rounds -lt 1000 ] || break
  done
  return $failed
}

status=0 running=0
for f in $formats; do
  run_one "$f" &
  running=$((running + 1))
  if [ $running -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ $running -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
