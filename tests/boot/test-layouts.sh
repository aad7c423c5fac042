#!/bin/bash
# The disk layouts real migrations bring (tests/fixtures/build-layout.py:
# lvm, xfs, btrfs, uefi, dracut-lvm, hybrid, twokernel), each "VMware-style"
# (no virtio/NVMe/Xen driver in its initramfs, root by device name).  Per layout: inject-drivers
# (-O raw, a fixed copy), then every boot method of its report is booted for
# real and what the report claims must be what happens: a method claimed to
# work must boot (SCIMG-BOOT-OK), one claimed not to work must not boot and
# must say why (a non-empty reason).  scimg check must not call the fixed
# guest non-compliant when it booted by every method.
#   hvm-bios-BUS -> boot-qemu.sh on BUS;  hvm-uefi -> boot-qemu.sh with OVMF
#   (FIRMWARE=uefi) on virtio-blk;  xen-pv-pygrub / xen-pv-pvgrub2 ->
#   scimg boot-test --xen pygrub,pvgrub2 in the blanket.
# Env: LAYOUTS (default "lvm xfs btrfs uefi dracut-lvm hybrid twokernel";
#      run part of them), METHODS (only these boot methods, e.g.
#      "hvm-bios-ide xen-pv-pygrub"; default all: the others are in the
#      truth table as measured "not-run", never as passed, and the blanket is
#      not needed when no xen-pv-* method is asked for), BOOT_PAR (QEMU boots
#      at a time, default 1, at most 4).
# The truth table is printed at the end and kept as results.tsv (layout,
# method, claimed, measured, seconds, claimed reason, measured outcome).
. "$(dirname "$0")/functions.sh"
requires_boot_tools

LAYOUTS=${LAYOUTS:-lvm xfs btrfs uefi dracut-lvm hybrid twokernel}
# the layouts are built with libguestfs' Python binding (python3-guestfs,
# libguestfs-xfs); without it only cached fixtures can be used
/usr/bin/python3 -c 'import guestfs' 2>/dev/null ||
  ls "${CACHE:-/var/tmp/scimg-guest-cache}"/layout-*.img >/dev/null 2>&1 ||
  skip "python3-guestfs not installed (it builds the layout fixtures)"
METHODS=${METHODS:-}
BOOT_PAR=${BOOT_PAR:-1}
case "$BOOT_PAR" in [1-4]) ;; *) fail "BOOT_PAR must be 1 to 4" ;; esac
for l in $LAYOUTS; do
  case "$l" in lvm|xfs|btrfs|uefi|dracut-lvm|hybrid|twokernel) ;; *) fail "unknown layout '$l'" ;; esac
done
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || say "note: no OVMF (package ovmf): hvm-uefi boots will be usage errors"
RES=$WORK/results.tsv
printf 'layout\tmethod\tclaimed\tmeasured\tseconds\tclaimed-reason\tmeasured-outcome\n' > "$RES"

# record LAYOUT METHOD CLAIMED MEASURED SECONDS REASON OUTCOME
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RES"
  # (the verdict is taken from $RES at the end: this may run in a subshell)
  [ "$4" = not-run ] && return 0
  if [ "$3" = works ] && [ "$4" != boots ]; then say "UNEXPECTED: $1 $2 claimed to work, did not boot: $7"; fi
  if [ "$3" = "no" ] && [ "$4" = boots ]; then say "UNEXPECTED: $1 $2 claimed not to work, booted"; fi
  if [ "$3" = "no" ] && [ -z "$6" ]; then say "UNEXPECTED: $1 $2 claimed not to work without a reason"; fi
  return 0
}

# qemu_boot LAYOUT IMAGE METHOD CLAIMED REASON: one QEMU boot, recorded
qemu_boot() {
  local l=$1 img=$2 m=$3 claimed=$4 reason=$5 bus fw=bios out rc s why
  case "$m" in
    hvm-bios-*) bus=${m#hvm-bios-} ;;
    hvm-uefi) bus=virtio-blk; fw=uefi ;;
  esac
  s=$(date +%s)
  for try in 1 2 3; do  # a starved TCG guest's timer check is retried
    out=$(FIRMWARE=$fw nice "$HERE/boot-qemu.sh" "$img" "$bus" "$WORK/boot-$l-$m.log" "$BOOT_TIMEOUT")
    rc=$?
    [ $rc = 3 ] || break
    say "$l $m: $(printf '%s\n' "$out" | head -1 | sed 's/.*result=//'), boot $try of 3"
  done
  why=$(printf '%s\n' "$out" | sed -n '1s/.* result=\(.*\) rc=.*/\1/p')
  printf '%s\n' "$out" | head -1 | while IFS= read -r x; do say "$x"; done
  record "$l" "$m" "$claimed" "$([ $rc = 0 ] && echo boots || echo fails)" "$(( $(date +%s) - s ))" "$reason" "$why"
}

for l in $LAYOUTS; do
  say "== $l"
  s=$(date +%s)
  if ! "$top_srcdir/tests/fixtures/build-guest.sh" "$l" "$WORK/$l-orig.img" >/dev/null 2>"$WORK/build-$l.log"; then
    tail -20 "$WORK/build-$l.log"; FAILED=1; say "UNEXPECTED: building the $l fixture failed"
    record "$l" build - fails "$(( $(date +%s) - s ))" "" "fixture build failed"
    continue
  fi
  say "fixture ready in $(( $(date +%s) - s ))s"
  s=$(date +%s)
  "$SCIMG" inject-drivers --output=json -O raw "$WORK/$l-orig.img" "$WORK/$l.img" \
    >"$WORK/$l-report.json" 2>"$WORK/$l-report.err"
  rc=$?
  say "inject-drivers: exit $rc in $(( $(date +%s) - s ))s"
  rm -f "$WORK/$l-orig.img"
  if [ $rc != 0 ]; then
    cat "$WORK/$l-report.err"; FAILED=1; say "UNEXPECTED: inject-drivers failed on $l"
    record "$l" inject-drivers - fails "$(( $(date +%s) - s ))" "" "$(tail -1 "$WORK/$l-report.err")"
    continue
  fi
  s=$(date +%s)
  "$SCIMG" check --output=json "$WORK/$l.img" >"$WORK/$l-check.json" 2>"$WORK/$l-check.err"
  crc=$?
  say "check: exit $crc in $(( $(date +%s) - s ))s"
  python3 - "$WORK/$l-check.json" <<'PY' | while IFS= read -r x; do say "  $x"; done
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no JSON from check: {e}"); sys.exit(0)
print("compliant:", r.get("compliant"))
for f in r.get("findings", []):
    print(f'{f.get("severity")}: {f.get("id")}: {f.get("message")}')
PY
  # the claims: METHOD<TAB>works|no<TAB>reason
  python3 - "$WORK/$l-report.json" > "$WORK/$l-claims.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for m in r.get("boot-methods", []):
    reason = " ".join((m.get("reason") or "").split())
    print(f'{m["method"]}\t{"works" if m["works"] else "no"}\t{reason}')
PY
  while IFS=$'\t' read -r m c why; do say "claim: $m $c${why:+ ($why)}"; done < "$WORK/$l-claims.tsv"
  want() { [ -z "$METHODS" ] || case " $METHODS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
  # a method left out by METHODS is listed as not run (neither boots nor fails)
  while IFS=$'\t' read -r m c why; do
    want "$m" || record "$l" "$m" "$c" not-run - "$why" "not asked for (METHODS)"
  done < "$WORK/$l-claims.tsv"

  # QEMU boots, BOOT_PAR at a time (each bounded by BOOT_TIMEOUT)
  n=0
  while IFS=$'\t' read -r m c why; do
    case "$m" in hvm-*) ;; *) continue ;; esac
    want "$m" || continue
    qemu_boot "$l" "$WORK/$l.img" "$m" "$c" "$why" &
    n=$((n + 1))
    [ $n -ge "$BOOT_PAR" ] && { wait; n=0; }
  done < "$WORK/$l-claims.tsv"
  wait

  # Xen: scimg boot-test --xen in the blanket, one QEMU per loader
  loaders=; xm=()
  while IFS=$'\t' read -r m c why; do
    case "$m" in xen-pv-pygrub|xen-pv-pvgrub2) ;; *) continue ;; esac
    want "$m" || continue
    loaders=${loaders:+$loaders,}${m#xen-pv-}; xm+=("$m	$c	$why")
  done < "$WORK/$l-claims.tsv"
  if [ -n "$loaders" ]; then
    bl=$(blanket_path) || bl=/nonexistent
    nice "$SCIMG" boot-test --xen "$loaders" --blanket "$bl" --expect SCIMG-BOOT-OK \
      --timeout "$BOOT_TIMEOUT" --output=json "$WORK/$l.img" >"$WORK/xen-$l.json" 2>"$WORK/xen-$l.err"
    for e in "${xm[@]}"; do
      IFS=$'\t' read -r m c why <<< "$e"
      IFS=$'\t' read -r r t < <(python3 - "$WORK/xen-$l.json" "$m" <<'PY' 2>/dev/null || printf 'no result from boot-test: %s\t-\n' "$(tail -1 "$WORK/xen-$l.err")"
import json, sys
b = [x for x in json.load(open(sys.argv[1]))["boots"] if x["method"] == sys.argv[2]][0]
print(("ok" if b["result"] == "ok" else b["result"] + ": " + b["reason"]) + "\t%.0f" % b["seconds"])
PY
)
      say "boot-test --xen: $l $m: $r (${t}s)"
      record "$l" "$m" "$c" "$([ "$r" = ok ] && echo boots || echo fails)" "$t" "$why" "$r"
    done
  fi

  # check must not call a guest that booted by every method non-compliant
  if [ -z "$METHODS" ] && ! awk -F'\t' -v l="$l" '$1 == l && $4 != "boots" { bad = 1 } END { exit bad }' "$RES"; then
    say "$l did not boot by every method: check's verdict is not judged"
  elif [ -z "$METHODS" ] && [ "$crc" != 0 ]; then
    FAILED=1; say "UNEXPECTED: $l booted by every method but check says it is not compliant (exit $crc)"
  fi
done

awk -F'\t' 'NR > 1 && $4 != "not-run" && ($3 == "-" || ($3 == "works" && $4 != "boots") || ($3 == "no" && ($4 == "boots" || $6 == ""))) { bad = 1 }
  END { exit bad }' "$RES" || FAILED=1
say "truth table (claimed / measured):"
column -t -s $'\t' "$RES" 2>/dev/null | while IFS= read -r x; do say "  $x"; done || cat "$RES"
finish
