#!/bin/bash
# Flavour (a), VMware-like: fstab and root= name /dev/sda1 and the initramfs
# (MODULES=list) has no virtio, NVMe or Xen driver.  Before: it fails to boot
# from virtio-blk.  After inject-drivers (-O raw, a fixed copy): it boots on
# IDE, virtio-blk, virtio-scsi, NVMe and as a Xen PV domU through pygrub;
# the report says SATA cannot work (the cloud kernel has no AHCI) and that
# pvgrub2 cannot load its LZ4 kernel -- and pvgrub2 really fails.
. "$(dirname "$0")/functions.sh"
requires_boot_tools

guest_copy vmware "$WORK/orig.img"
# before, in the background while inject-drivers works
( "$HERE/boot-qemu.sh" "$WORK/orig.img" virtio-blk "$WORK/before-virtio-blk.log" "$BOOT_TIMEOUT" \
    > "$WORK/before.out"; echo $? > "$WORK/before.rc" ) &
BEFORE=$!

sum=$(sha256sum < "$WORK/orig.img")
inject "$WORK/report.json" -O raw "$WORK/orig.img" "$WORK/vmware.img"
[ "$(sha256sum < "$WORK/orig.img")" = "$sum" ] || fail "-O changed its input"
report_check "$WORK/report.json" '
assert r["guest"]["initramfs-tool"] == "initramfs-tools"
assert k["compression"] == "lz4"
for d in ("xen-blkfront", "xen-netfront", "virtio_blk", "virtio_scsi", "virtio_net", "virtio_pci", "nvme"):
    assert k["initramfs"][d], d
assert m["xen-pv-pygrub"]["works"] and not m["xen-pv-pvgrub2"]["works"]
assert "not xen image" in m["xen-pv-pvgrub2"]["reason"]
assert not m["hvm-bios-sata"]["works"] and "AHCI" in m["hvm-bios-sata"]["reason"]
for b in ("ide", "virtio-blk", "virtio-scsi", "nvme"):
    assert m["hvm-bios-" + b]["works"], b
assert any("/dev/sda1 -> UUID=" in c["change"] for c in r["changes"])
'
say "report: SATA not possible (no AHCI in the kernel), pvgrub2 not possible (LZ4), as expected"

wait $BEFORE
say "before: $(cat "$WORK/before.out" | head -1)"
[ "$(cat "$WORK/before.rc")" != 0 ] || { FAILED=1; say "UNEXPECTED: the unfixed guest booted from virtio-blk"; }
grep -aoE 'ALERT! .* does not exist|Gave up waiting for root[^.]*' "$WORK/before-virtio-blk.log" | head -1 |
  while IFS= read -r l; do say "before, on virtio-blk the guest says: $l"; done

for bus in ide virtio-blk virtio-scsi nvme; do
  expect_boot ok "$WORK/vmware.img" $bus
done
expect_xen "$WORK/vmware.img" "ok pygrub" "fail pvgrub not xen image"
finish
