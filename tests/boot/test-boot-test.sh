#!/bin/bash
# scimg boot-test on a real guest: the VMware-like fixture (root on
# /dev/sda1, no virtio/NVMe/Xen driver in its initramfs).  Unfixed, its
# virtio-blk boot must fail with the initramfs's own reason; fixed by
# inject-drivers (-O raw), it must boot on IDE, virtio-blk, virtio-scsi and
# NVMe as boot-test sees it (through inject-drivers --verify, whose report
# then says "measured" for these methods), and UEFI must fail at once (the guest
# has GRUB for BIOS only, no EFI system partition).  Per-boot times are
# printed.  The fixture powers itself off right after printing its marker
# (SCIMG-BOOT-OK), which often beats getty's login prompt (measured: the
# prompt came first on virtio-blk only), and inject-drivers' grub.cfg boots
# with "quiet" (no systemd status lines): so the marker is also given as
# --expect, and each boot must end in the login prompt or the marker.
. "$(dirname "$0")/functions.sh"
requires_boot_tools

# bt NAME EXPECTED-EXIT ARGS...: scimg boot-test --output=json into NAME.json
bt() {
  local name=$1 want=$2 rc=0 s; shift 2
  s=$(date +%s)
  timeout $(( BOOT_TIMEOUT * 3 + 120 )) "$SCIMG" boot-test --output=json --jobs 2 --timeout "$BOOT_TIMEOUT" "$@" \
    > "$WORK/$name.json" 2> "$WORK/$name.err" || rc=$?
  say "boot-test $*: exit $rc in $(( $(date +%s) - s ))s"
  cat "$WORK/$name.err"
  python3 - "$WORK/$name.json" <<'PY' | while IFS= read -r l; do say "  $l"; done
import json, sys
for b in json.load(open(sys.argv[1]))["boots"]:
    print(f'{b["bus"]:<11} {b["firmware"]:<4} {b["result"]:<7} {b["seconds"]:>6} s  {b["reason"]}')
PY
  [ "$rc" = "$want" ] || { FAILED=1; say "UNEXPECTED: exit $rc, expected $want"; }
}

# check NAME PYTHON-ASSERTION (r = report, b = boots by "bus/firmware")
check() {
  python3 - "$WORK/$1.json" "$2" <<'PY' || { FAILED=1; say "UNEXPECTED: $1: $2 does not hold"; }
import json, sys
r = json.load(open(sys.argv[1]))
b = {x["bus"] + "/" + x["firmware"]: x for x in r["boots"]}
assert eval(sys.argv[2])
PY
}

guest_copy vmware "$WORK/orig.img"
sum=$(sha256sum < "$WORK/orig.img")
bt before 1 --bus virtio-blk "$WORK/orig.img"
check before 'b["virtio-blk/bios"]["result"] == "fail" and ("root device" in b["virtio-blk/bios"]["reason"] or "gave up" in b["virtio-blk/bios"]["reason"])'
[ "$(sha256sum < "$WORK/orig.img")" = "$sum" ] || fail "boot-test changed its input"

# inject-drivers --verify boots the fixed copy itself: the BIOS boots
# replace the predicted methods by measured ones
inject "$WORK/report.json" --verify=ide,virtio-blk,virtio-scsi,nvme --expect 'SCIMG-BOOT-OK flavour=vmware' \
  -O raw "$WORK/orig.img" "$WORK/fixed.img"
report_check "$WORK/report.json" '
for bus in ("ide", "virtio-blk", "virtio-scsi", "nvme"):
    x = m["hvm-bios-" + bus]
    assert x["basis"] == "measured" and x["works"] and x["predicted"], x
    assert x["boot"]["result"] == "ok" and x["boot"]["reason"].split(":")[0] in ("login prompt", "systemd reached the multi-user target", "matched --expect \x27SCIMG-BOOT-OK flavour=vmware\x27"), x["boot"]
assert m["xen-pv-pygrub"]["basis"] == "predicted" and m["hvm-bios-sata"]["basis"] == "predicted"
assert r["result"] == "ok"
'
# UEFI must fail at once, without QEMU: no EFI system partition
bt after 1 --bus ide,virtio-blk,virtio-scsi,nvme --firmware uefi "$WORK/fixed.img"
for bus in ide virtio-blk virtio-scsi nvme; do
  check after "b['$bus/uefi']['result'] == 'fail' and 'no EFI system partition' in b['$bus/uefi']['reason'] and b['$bus/uefi']['accel'] is None"
done
finish
