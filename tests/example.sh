#!/bin/sh
# example.sh - build scimg and run its main job (README.md, command 1):
#  1. the bundled example image: what it is, converted, compared (seconds);
#  2. the main job: a small VMware-style Debian 12 guest (built once with
#     tests/fixtures/build-guest.sh and cached; its initramfs has no virtio,
#     NVMe or Xen driver and fstab names /dev/sda1), exported as a
#     streamOptimized VMDK as VMware would, gated by `scimg check` (not
#     compliant), turned into a Supercloud image by `scimg convert -O sci`,
#     gated again (compliant), and booted by `scimg boot-test` on virtio-blk
#     and NVMe.  Needs root, mmdebstrap and Debian's archive for the first
#     build (~6 min); then ~8 min under TCG.  SCIMG_EXAMPLE_QUICK=1: part 1 only.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -x build-plain/cmd/scimg ]; then
  autoreconf -fi >/dev/null
  mkdir -p build-plain
  (cd build-plain && ../configure >/dev/null && make -j"$jobs" >/dev/null)
fi
scimg=build-plain/cmd/scimg
out=example.out
mkdir -p "$out"
echo "== scimg info tests/fixtures/example.qcow2"
$scimg info tests/fixtures/example.qcow2
for f in qcow2 raw; do
  case $f in qcow2) opt=-c ;; *) opt= ;; esac
  echo "== scimg convert -O $f $opt tests/fixtures/example.qcow2 $out/example.$f"
  $scimg convert -p -O $f $opt tests/fixtures/example.qcow2 "$out/example.$f"
  $scimg info "$out/example.$f"
done
echo "== scimg compare tests/fixtures/example.qcow2 $out/example.raw"
$scimg compare tests/fixtures/example.qcow2 "$out/example.raw"

[ -z "${SCIMG_EXAMPLE_QUICK:-}" ] || exit 0
if [ "$(id -u)" != 0 ] || ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "== the guest part needs root and mmdebstrap (./setup.sh): skipped"
  exit 0
fi
t0=$(date +%s)
step() { echo "== [+$(( $(date +%s) - t0 ))s] $*"; }
step "a VMware-style Debian 12 guest (tests/fixtures/build-guest.sh vmware; cached)"
guest=$(bash tests/fixtures/build-guest.sh vmware)
step "scimg convert -O vmdk -o subformat=streamOptimized (as VMware exports it)"
$scimg convert -p -O vmdk -o subformat=streamOptimized "$guest" "$out/web.vmdk"
step "scimg check $out/web.vmdk (the gate: this guest is not ready)"
$scimg check "$out/web.vmdk" || true
step "scimg convert -O sci $out/web.vmdk $out/web.sci (drivers, GRUB, fstab; one appliance)"
$scimg convert -p -O sci "$out/web.vmdk" "$out/web.sci"
step "scimg info $out/web.sci"
$scimg info "$out/web.sci"
step "scimg check $out/web.sci (the gate again)"
$scimg check "$out/web.sci"
step "scimg boot-test --bus virtio-blk,nvme $out/web.sci (real boots under QEMU)"
# (the fixture guest prints SCIMG-BOOT-OK and powers off, maybe before its
# login prompt: --expect counts the marker as proof too)
$scimg boot-test --expect SCIMG-BOOT-OK --bus virtio-blk,nvme "$out/web.sci"
step "done"
