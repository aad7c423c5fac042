#!/bin/bash
# Flavour (c): a partitionless ext4 image like an old AMI (fstab /dev/xvda1,
# no partition table, no boot code).  inject-drivers --partition on a qcow2
# copy, in place: the filesystem moves into partition 1 of a new disk that
# gets GRUB; it then boots on IDE, virtio-blk, virtio-scsi, NVMe and as a
# Xen PV domU through pygrub.
. "$(dirname "$0")/functions.sh"
requires_boot_tools
command -v qemu-img >/dev/null || skip "qemu-img not installed"

guest_copy ami "$WORK/ami.img"
# a qcow2 image, changed in place (libguestfs reads and writes qcow2 itself)
qemu-img convert -O qcow2 "$WORK/ami.img" "$WORK/ami.qcow2" && rm -f "$WORK/ami.img"
inject "$WORK/dry.json" --dry-run --partition "$WORK/ami.qcow2"
report_check "$WORK/dry.json" '
assert r["partitioned"] == "would"
assert any("new partitioned disk" in c["change"] for c in r["changes"])
'
inject "$WORK/report.json" --partition "$WORK/ami.qcow2"
report_check "$WORK/report.json" '
assert r["partitioned"] == "yes"
assert any("/dev/xvda1 -> UUID=" in c["change"] for c in r["changes"])
assert m["xen-pv-pygrub"]["works"] and m["hvm-bios-virtio-blk"]["works"]
'
qemu-img check -q "$WORK/ami.qcow2" || fail "qemu-img check: the rewritten qcow2 is damaged"
# the new disk has an MBR with one bootable Linux partition at 1 MiB
qemu-img dd -f qcow2 -O raw bs=512 count=1 if="$WORK/ami.qcow2" of="$WORK/mbr.bin" 2>/dev/null
python3 - "$WORK/mbr.bin" <<'PY' || fail "no MBR partition table after --partition"
import struct, sys
b = open(sys.argv[1], "rb").read(512)
assert b[510:512] == b"\x55\xaa"
boot, ptype, start = b[446], b[446 + 4], struct.unpack("<I", b[446 + 8:446 + 12])[0]
assert boot == 0x80 and ptype == 0x83 and start == 2048, (boot, ptype, start)
# GRUB's boot.img (not a generic MBR in front of a partition without boot code)
assert b"GRUB" in b[:440], "no GRUB boot code in the MBR"
PY
say "--partition: MBR, partition 1 bootable, type 83, from sector 2048"
for bus in ide virtio-blk virtio-scsi nvme; do
  expect_boot ok "$WORK/ami.qcow2" $bus
done
expect_xen "$WORK/ami.qcow2" "ok pygrub"
finish
