#!/bin/bash
# Flavour (b): dracut (hostonly) instead of initramfs-tools, root=/dev/sda1,
# and the generic linux-image-amd64 kernel (XZ-compressed, has AHCI).  After
# inject-drivers in place: boots on IDE, SATA (AHCI), virtio-blk,
# virtio-scsi, NVMe, and as a Xen PV domU through pygrub and pvgrub2.
. "$(dirname "$0")/functions.sh"
requires_boot_tools

guest_copy dracut "$WORK/dracut.img"
inject "$WORK/report.json" "$WORK/dracut.img"
report_check "$WORK/report.json" '
assert r["guest"]["initramfs-tool"] == "dracut"
assert k["compression"] == "xz", k["compression"]
for d in ("xen-blkfront", "virtio_blk", "virtio_scsi", "virtio_pci", "nvme", "ahci"):
    assert k["initramfs"][d] or k["drivers"][d] == "built-in", d
assert m["xen-pv-pygrub"]["works"] and m["xen-pv-pvgrub2"]["works"]
for b in ("ide", "sata", "virtio-blk", "virtio-scsi", "nvme"):
    assert m["hvm-bios-" + b]["works"], b
'
for bus in ide sata virtio-blk virtio-scsi nvme; do
  expect_boot ok "$WORK/dracut.img" $bus
done
expect_xen "$WORK/dracut.img" "ok pvgrub" "ok pygrub"
finish
