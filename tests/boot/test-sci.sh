#!/bin/bash
# Supercloud image end to end, with real boots: the VMware-flavoured fixture
# as a streamOptimized VMDK (when this build writes VMDK; else qemu-img
# makes it, or the raw fixture is used) -> scimg convert -O sci -> scimg
# check exit 0 -> the disk member, unpacked with tar as a user would, boots
# from virtio-blk under QEMU, and the disk (read back through the SCI
# reader) boots as a Xen PV domU through pygrub, the loader the descriptor
# and xl.cfg name.
. "$(dirname "$0")/functions.sh"
requires_boot_tools

guest_copy vmware "$WORK/orig.img"
SRC=$WORK/orig.img
if "$SCIMG" --help | grep -q ' vmdk(r'; then
  if "$SCIMG" --help | grep -q ' vmdk(rw)'; then
    "$SCIMG" convert -f raw -O vmdk -o subformat=streamOptimized "$SRC" "$WORK/guest.vmdk" ||
      fail "convert to streamOptimized VMDK"
  else
    qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$SRC" "$WORK/guest.vmdk" ||
      fail "qemu-img convert to streamOptimized VMDK"
  fi
  SRC=$WORK/guest.vmdk
else
  say "this build does not read VMDK: packaging the raw fixture"
fi
s=$(date +%s)
"$SCIMG" convert -O sci -o name=vmware-sci "$SRC" "$WORK/guest.sci" 2>"$WORK/convert.err" ||
  { cat "$WORK/convert.err"; fail "convert -O sci"; }
say "convert -O sci of $(basename "$SRC"): $(( $(date +%s) - s ))s, $(du -h "$WORK/guest.sci" | cut -f1)"
s=$(date +%s)
"$SCIMG" check --output=json "$WORK/guest.sci" >"$WORK/check.json" 2>"$WORK/check.err"
rc=$?
say "check: exit $rc in $(( $(date +%s) - s ))s"
[ $rc = 0 ] || { cat "$WORK/check.json" "$WORK/check.err"; fail "check of the SCI: exit $rc"; }
python3 - "$WORK/check.json" <<'PY' || fail "check report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["compliant"] and r["format"] == "sci"
m = [(x["name"], x.get("loader")) for x in r["boot"]["methods"]]
assert ("xen-pv", "pygrub") in m and ("hvm-bios", None) in m, m
PY
grep -q 'bootloader = "pygrub"' <(tar xOf "$WORK/guest.sci" xl.cfg) || fail "xl.cfg does not boot with pygrub"

( cd "$WORK" && tar xf guest.sci disk0.qcow2 ) || fail "tar xf disk0.qcow2"
expect_boot ok "$WORK/disk0.qcow2" virtio-blk
"$SCIMG" convert "$WORK/guest.sci" -O raw "$WORK/sci-disk.img" || fail "convert guest.sci -O raw"
expect_xen ok "$WORK/sci-disk.img" pygrub
finish
