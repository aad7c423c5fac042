#!/bin/bash
# Flavour (b): dracut (hostonly) instead of initramfs-tools, root=/dev/sda1,
# and the generic linux-image-amd64 kernel (XZ-compressed, has AHCI).  After
# inject-drivers in place: boots on IDE, SATA (AHCI), virtio-blk,
# virtio-scsi, NVMe, and as a Xen PV domU through pygrub and pvgrub2.
# In CI (SCIMG_BOOT_CI=1, set by tests/run-tests.sh) only SATA, virtio-blk
# and NVMe are booted here: IDE and virtio-scsi are booted by test-vmware
# and test-ami in the same run, and dracut's boots are the slowest (110-220 s
# each under CI load); `make check-boot` boots all five.
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
buses="ide sata virtio-blk virtio-scsi nvme"
[ "${SCIMG_BOOT_CI:-0}" = 1 ] && buses="sata virtio-blk nvme"
for bus in $buses; do
  expect_boot ok "$WORK/dracut.img" $bus
done
expect_xen "$WORK/dracut.img" "ok pvgrub" "ok pygrub"
finish
