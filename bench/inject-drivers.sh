#!/bin/bash
# bench/inject-drivers.sh - wall time of `scimg inject-drivers` against
# `virt-v2v -i disk ... -o local` on the same Debian fixture guest (one run
# each), and their ratio.  Goal: scimg takes at most half of virt-v2v's time.
# Then `scimg convert -O sci` (copy + inject-drivers + describe + package,
# one appliance) against inject-drivers plus a plain copy (convert -O
# qcow2): the SCI build should cost no more than those two.
# SKIP_V2V=1 leaves virt-v2v out (scimg's own figures only).
#
# Usage: bench/inject-drivers.sh [FLAVOUR]    (vmware by default)
# Env: SCIMG (default ./cmd/scimg), WORK (scratch dir, default under /var/tmp).
# Both tools run their libguestfs appliance with TCG (force_tcg): on hosts
# where nested KVM aborts, virt-v2v has no fallback of its own.
# scimg boots its TCG appliance with "norandmaps mitigations=off" (see
# scimg-inject-drivers(1)); a third run gives virt-v2v the same kernel
# arguments (LIBGUESTFS_APPEND) so the rest of the difference shows too.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
FLAVOUR=${1:-vmware}
SCIMG=${SCIMG:-$HERE/cmd/scimg}
[ -x "$SCIMG" ] || SCIMG=$(command -v scimg || true)
[ -x "$SCIMG" ] || { echo "bench: build scimg first (or set SCIMG)" >&2; exit 2; }
[ "${SKIP_V2V:-0}" = 1 ] ||
  for t in virt-v2v nbdkit nbdcopy; do command -v $t >/dev/null || { echo "bench: $t is not installed (setup.sh)" >&2; exit 2; }; done
WORK=${WORK:-$(mktemp -d /var/tmp/scimg-bench.XXXXXX)}
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg

"$HERE/tests/fixtures/build-guest.sh" "$FLAVOUR" "$WORK/a.img" >/dev/null || exit 2
cp --sparse=always "$WORK/a.img" "$WORK/b.img"
cp --sparse=always "$WORK/a.img" "$WORK/c.img"
cp --sparse=always "$WORK/a.img" "$WORK/d.img"
mkdir -p "$WORK/v2v" "$WORK/v2v-tuned"

now() { date +%s.%N; }
s=$(now)
"$SCIMG" inject-drivers "$WORK/a.img" > "$WORK/scimg.log" 2>&1; src=$?
e=$(now); t_scimg=$(python3 -c "print($e - $s)")
s=$(now)
"$SCIMG" convert -O qcow2 "$WORK/d.img" "$WORK/d.qcow2" > "$WORK/copy.log" 2>&1; crc=$?
e=$(now); t_copy=$(python3 -c "print($e - $s)")
s=$(now)
"$SCIMG" convert -O sci "$WORK/d.img" "$WORK/d.sci" > "$WORK/sci.log" 2>&1; scirc=$?
e=$(now); t_sci=$(python3 -c "print($e - $s)")
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'scimg inject-drivers: %8.1f s (exit %d)\n' "$t_scimg" $src
printf 'scimg convert -O qcow2 (the copy): %.1f s (exit %d)\n' "$t_copy" $crc
printf 'scimg convert -O sci: %8.1f s (exit %d)\n' "$t_sci" $scirc
printf 'ratio sci / (inject-drivers + copy): %.2f (goal <= 1.00)\n' "$(python3 -c "print($t_sci / ($t_scimg + $t_copy))")"
[ "${SKIP_V2V:-0}" = 1 ] && exit 0
s=$(now)
virt-v2v -i disk "$WORK/b.img" -o local -os "$WORK/v2v" -on v2v > "$WORK/v2v.log" 2>&1; vrc=$?
e=$(now); t_v2v=$(python3 -c "print($e - $s)")
s=$(now)
LIBGUESTFS_APPEND="norandmaps mitigations=off" \
  virt-v2v -i disk "$WORK/c.img" -o local -os "$WORK/v2v-tuned" -on v2v > "$WORK/v2v-tuned.log" 2>&1; trc=$?
e=$(now); t_tuned=$(python3 -c "print($e - $s)")

[ $src = 0 ] || { echo "bench: scimg inject-drivers failed:"; tail -5 "$WORK/scimg.log"; }
[ $vrc = 0 ] || { echo "bench: virt-v2v failed (its time still counts as measured):"; grep -iE "error|not found" "$WORK/v2v.log" | tail -5; }
printf 'load average at end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'scimg inject-drivers: %8.1f s (exit %d)\n' "$t_scimg" $src
printf 'virt-v2v -o local:    %8.1f s (exit %d)\n' "$t_v2v" $vrc
printf 'virt-v2v, LIBGUESTFS_APPEND="norandmaps mitigations=off": %.1f s (exit %d)\n' "$t_tuned" $trc
printf 'ratio scimg/virt-v2v: %8.2f (goal <= 0.50)\n' "$(python3 -c "print($t_scimg / $t_v2v)")"
printf 'ratio scimg/virt-v2v with the same kernel arguments: %.2f\n' "$(python3 -c "print($t_scimg / $t_tuned)")"
