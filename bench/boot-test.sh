#!/bin/bash
# boot-test.sh - what running the boots of `scimg boot-test` in parallel
# buys: one run with all buses against each bus booted alone (its slowest
# single boot), per-boot times, peak memory.
#
# Usage: bench/boot-test.sh SCIMG IMAGE [BUSES] [JOBS]
#   SCIMG  the scimg binary (e.g. build/cmd/scimg)
#   IMAGE  a bootable guest, e.g. a fixture fixed by inject-drivers:
#          tests/fixtures/build-guest.sh vmware /var/tmp/v.img &&
#          scimg inject-drivers -O raw /var/tmp/v.img /var/tmp/v-fixed.img
#   BUSES  comma list (default ide,virtio-blk,virtio-scsi,nvme)
#   JOBS   boots at once in the all-in-one run (default: scimg decides)
# Env: EXPECT (passed as --expect: the fixture guests power themselves off
# right after printing SCIMG-BOOT-OK, which may beat their login prompt),
# TIMEOUT (per boot, default 900), XEN (Xen loaders, e.g. pygrub,pvgrub2:
# also booted as PV domUs in the blanket, in the all-in-one run and alone)
# and BLANKET (the blanket for XEN; default: scimg's cached build).
# Prints a table; paste it into bench/RESULTS.md with the machine's load.
set -uo pipefail

SCIMG=${1:?usage: boot-test.sh SCIMG IMAGE [BUSES] [JOBS]}
IMG=${2:?usage: boot-test.sh SCIMG IMAGE [BUSES] [JOBS]}
BUSES=${3:-ide,virtio-blk,virtio-scsi,nvme}
JOBS=${4:-}
TIMEOUT=${TIMEOUT:-900}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/scimg-bench-boot.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT

# run NAME ARGS...: time one boot-test run; records wall s, peak RSS of the
# largest process (KiB) and the machine's lowest MemAvailable during it
run() {
  local name=$1; shift
  local low
  ( low=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
    while :; do
      m=$(awk '/MemAvailable/{print $2}' /proc/meminfo); [ "$m" -lt "$low" ] && low=$m
      echo "$low" > "$W/$name.low"; sleep 0.5
    done ) &
  local mon=$!
  local base; base=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
  /usr/bin/time -f '%e %M' -o "$W/$name.time" "$SCIMG" boot-test --output=json --timeout "$TIMEOUT" \
    ${EXPECT:+--expect "$EXPECT"} "$@" \
    "$IMG" > "$W/$name.json" 2> "$W/$name.err"
  echo $? > "$W/$name.rc"
  kill $mon 2>/dev/null; wait $mon 2>/dev/null
  low=$(cat "$W/$name.low")
  echo $(( (base - low) / 1024 )) > "$W/$name.mem"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
XEN=${XEN:-}
XARGS=()
[ -n "$XEN" ] && XARGS=(--blanket "${BLANKET:-$("$SCIMG" blanket path --no-build)}")
run all --bus "$BUSES" ${XEN:+--xen "$XEN"} "${XARGS[@]}" ${JOBS:+--jobs "$JOBS"}
IFS=, read -ra BL <<< "$BUSES"
for b in "${BL[@]}"; do run "one-$b" --bus "$b"; done
IFS=, read -ra XL <<< "$XEN"
for x in "${XL[@]}"; do run "one-xen-$x" --xen "$x" "${XARGS[@]}"; done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$W" "$BUSES" "$XEN" <<'EOF'
import json, sys
w = sys.argv[1]
items = [("hvm-bios-" + b, "one-" + b, b) for b in sys.argv[2].split(",")] + \
        [("xen-pv-" + x, "one-xen-" + x, "xen " + x) for x in sys.argv[3].split(",") if x]
def load(n):
    # GNU time puts "Command exited with non-zero status N" first when a
    # boot failed; the figures are the last line
    t = open(f"{w}/{n}.time").read().strip().splitlines()[-1].split()
    return (json.load(open(f"{w}/{n}.json")), float(t[0]), int(t[1]) // 1024,
            int(open(f"{w}/{n}.mem").read()), int(open(f"{w}/{n}.rc").read()))
allr, allw, allrss, allmem, allrc = load("all")
print(f"\nall in one run ({allr['jobs']} at once, {allr['accel']}): wall {allw:.1f} s, exit {allrc}, "
      f"largest process {allrss} MiB, machine memory used at peak {allmem} MiB")
print("\n| boot | in the all-in-one run: result, s | alone: result, s | alone: wall s | alone: peak MiB |")
print("|---|---:|---:|---:|---:|")
slowest = 0
for method, name, label in items:
    x = [y for y in allr["boots"] if y["method"] == method][0]
    one, ow, orss, omem, orc = load(name)
    y = one["boots"][0]
    slowest = max(slowest, ow)
    print(f"| {label} | {x['result']}, {x['seconds']} | {y['result']}, {y['seconds']} | {ow:.1f} | {omem} |")
print(f"\nall-in-one wall / slowest single run wall = {allw:.1f} / {slowest:.1f} = {allw / slowest:.2f}")
print(f"(sum of single runs: {sum(load(n)[1] for _, n, _ in items):.1f} s)")
EOF
