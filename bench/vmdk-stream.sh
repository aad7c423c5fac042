#!/bin/bash
# bench/vmdk-stream.sh - raw -> VMDK streamOptimized, scimg against qemu-img
# (-O vmdk -o subformat=streamOptimized) on the same mixed input, printing
# wall time, peak memory, output size and the scimg/qemu-img ratios (below
# 1.0: scimg is faster / smaller).  scimg runs twice: without -c (the
# writer deflates each grain itself, like qemu-img) and with -c (worker
# threads deflate, one writer keeps the stream in order).
#
# Usage: bench/vmdk-stream.sh [SCIMG] [WORKDIR]
# Environment: SIZE_MIB (input size, default 1024: a third random, a third
#   text, a third zeros, interleaved in 48 MiB strides), REPEAT (best of, 2),
#   THREADS (-m for the -c run; default: all CPUs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SCIMG=${1:-$here/../cmd/scimg}
WORK=${2:-/var/tmp/scimg-bench-vmdk}
SIZE_MIB=${SIZE_MIB:-1024}
REPEAT=${REPEAT:-2}
QEMU_IMG=${QEMU_IMG:-qemu-img}
command -v "$QEMU_IMG" >/dev/null || { echo "qemu-img not found"; exit 77; }
[ -x "$SCIMG" ] || { echo "scimg binary not found at $SCIMG"; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found (Debian package 'time')"; exit 77; }
mkdir -p "$WORK"

src=$WORK/input.raw
if [ ! -f "$src" ] || [ "$(cat "$WORK/input.stamp" 2>/dev/null)" != "$SIZE_MIB" ]; then
  echo "building input: $SIZE_MIB MiB (random, text, zeros)"
  rm -f "$src"
  text=$WORK/text.bin
  { yes "The quick brown fox jumps over the lazy dog; scimg vmdk bench" || true; } | head -c 16M > "$text"
  stride=16
  for ((off = 0; off < SIZE_MIB; off += 3 * stride)); do
    head -c ${stride}M /dev/urandom | dd of="$src" bs=1M seek=$off conv=notrunc status=none
    dd if="$text" of="$src" bs=1M seek=$((off + stride)) count=$stride conv=notrunc status=none
    dd if=/dev/zero of="$src" bs=1M seek=$((off + 2 * stride)) count=$stride conv=notrunc status=none
  done
  truncate -s ${SIZE_MIB}M "$src"
  echo "$SIZE_MIB" > "$WORK/input.stamp"
fi
echo "input: $(stat -c %s "$src") bytes, $(du -B1 "$src" | cut -f1) allocated; $(nproc) CPUs"

measure() { # prints "seconds peak-KiB cpu-seconds"
  /usr/bin/time -o "$WORK/time.out" -f "%e %M %U %S" "$@" >/dev/null 2>"$WORK/cmd.err" ||
    { echo "command failed: $* : $(cat "$WORK/cmd.err")" >&2; exit 1; }
  tail -1 "$WORK/time.out" | awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}'
}

best() { # OUT CMD... : best of REPEAT runs, "seconds peak-KiB cpu-seconds"
  local out=$1; shift
  local b="" m="" c=""
  for ((r = 0; r < REPEAT; r++)); do
    rm -f "$out"
    read -r s k u < <(measure "$@")
    if [ -z "$b" ] || awk "BEGIN{exit !($s < $b)}"; then b=$s; m=$k; c=$u; fi
  done
  echo "$b $m $c"
}

cat "$src" > /dev/null   # warm the page cache for every run
qo=$WORK/out-qemu.vmdk
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r qt qm qc < <(best "$qo" "$QEMU_IMG" convert -f raw -O vmdk -o subformat=streamOptimized "$src" "$qo")
qs=$(stat -c %s "$qo")
printf '%-20s %8s %8s %8s %12s %7s %7s %7s\n' tool seconds cpu-s peak-MiB output-bytes t-ratio c-ratio s-ratio
printf '%-20s %8s %8s %8d %12d %7s %7s %7s\n' "qemu-img" "$qt" "$qc" $((qm / 1024)) "$qs" 1.00 1.00 1.000
mopt=()
[ -n "${THREADS:-}" ] && mopt=(-m "$THREADS")
for variant in plain c; do
  so=$WORK/out-scimg-$variant.vmdk
  if [ $variant = c ]; then
    args=(-c "${mopt[@]}"); label="scimg -c${THREADS:+ -m $THREADS}"
  else
    args=(); label="scimg"
  fi
  read -r st sm sc < <(best "$so" "$SCIMG" convert "${args[@]}" -f raw -O vmdk -o subformat=streamOptimized "$src" "$so")
  ss=$(stat -c %s "$so")
  "$QEMU_IMG" compare -q -f raw -F vmdk "$src" "$so" || { echo "MISMATCH: $label output differs from the input"; exit 1; }
  "$QEMU_IMG" check -q -f vmdk "$so" || { echo "qemu-img check fails on $label output"; exit 1; }
  printf '%-20s %8s %8s %8d %12d %7s %7s %7s\n' "$label" "$st" "$sc" $((sm / 1024)) "$ss" \
    "$(awk "BEGIN{printf \"%.2f\", $st / $qt}")" "$(awk "BEGIN{printf \"%.2f\", $sc / $qc}")" \
    "$(awk "BEGIN{printf \"%.3f\", $ss / $qs}")"
  rm -f "$so"
done
rm -f "$qo"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(best of $REPEAT by wall time; t-ratio = wall time / qemu-img's, c-ratio = CPU (user+sys) / qemu-img's,"
echo " s-ratio = output size / qemu-img's; scimg flushes its output (fdatasync) before renaming it)"
