#!/bin/bash
# boot-qemu.sh - boot a disk image under qemu-system-x86_64 with its disk on
# one bus and wait for the fixture's console marker.
#
# Usage: boot-qemu.sh IMAGE BUS LOG [TIMEOUT]
#   BUS: ide | sata | virtio-blk | virtio-scsi | nvme
#   exit 0: the marker "SCIMG-BOOT-OK" was printed on the serial console;
#        1: a failure was recognised (printed), QEMU stopped, or timeout;
#        2: usage error;
#        3: the guest's kernel panicked in its IO-APIC timer check, which
#        happens under TCG on a starved host (nothing about the image:
#        boot again).
# The image is attached with snapshot=on: it is never written.
# Env: ACCEL (tcg), MEM (768), SMP (1), QEMU (qemu-system-x86_64),
#      FIRMWARE (bios | uefi: OVMF from the ovmf package, a fresh copy of its
#      variable store, so no boot entry: only EFI/BOOT/BOOTX64.EFI boots;
#      OVMF_CODE, OVMF_VARS name other files).
set -uo pipefail

IMG=${1:?usage: boot-qemu.sh IMAGE BUS LOG [TIMEOUT]}
BUS=${2:?usage: boot-qemu.sh IMAGE BUS LOG [TIMEOUT]}
LOG=${3:?usage: boot-qemu.sh IMAGE BUS LOG [TIMEOUT]}
TIMEOUT=${4:-400}
ACCEL=${ACCEL:-tcg}
MEM=${MEM:-768}
SMP=${SMP:-1}
QEMU=${QEMU:-qemu-system-x86_64}
FIRMWARE=${FIRMWARE:-bios}
MARKER=SCIMG-BOOT-OK
# What initramfs-tools, dracut, systemd and the firmware say when the root
# disk is not found or boot cannot go on.
FAIL_RE='Gave up waiting for root|ALERT! .* does not exist|Kernel panic|You are in emergency mode|Give root password for maintenance|Press Enter for maintenance|Entering emergency mode|Failed to mount /sysroot|dracut Warning: Could not boot|No bootable device|Boot failed|error: no such device|error: file .* not found'
# and OVMF, when no boot option it has works (it then offers its shell/menu)
[ "$FIRMWARE" = uefi ] && FAIL_RE="$FAIL_RE|No bootable option or device was found|Shell> |UEFI Interactive Shell"

[ -r "$IMG" ] || { echo "boot-qemu: cannot read $IMG" >&2; exit 2; }
case "$IMG" in *.qcow2) FMT=qcow2 ;; *) FMT=raw ;; esac
D="file=$IMG,format=$FMT,if=none,id=d0,snapshot=on,cache=unsafe"
MACHINE=pc
case "$BUS" in
  ide)         DISK=(-drive "$D" -device ide-hd,drive=d0,bus=ide.0,bootindex=0) ;;
  sata)        MACHINE=q35; DISK=(-drive "$D" -device ide-hd,drive=d0,bus=ide.0,bootindex=0) ;;
  virtio-blk)  DISK=(-drive "$D" -device virtio-blk-pci,drive=d0,bootindex=0) ;;
  virtio-scsi) DISK=(-device virtio-scsi-pci,id=scsi0 -drive "$D" -device scsi-hd,drive=d0,bus=scsi0.0,bootindex=0) ;;
  nvme)        DISK=(-drive "$D" -device nvme,drive=d0,serial=scimg0,bootindex=0) ;;
  *) echo "boot-qemu: unknown bus '$BUS' (ide|sata|virtio-blk|virtio-scsi|nvme)" >&2; exit 2 ;;
esac
FW=()
NICROM=
case "$FIRMWARE" in
  bios) ;;
  uefi)
    CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
    VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
    [ -r "$CODE" ] && [ -r "$VARS" ] || { echo "boot-qemu: no OVMF ($CODE, $VARS: install ovmf)" >&2; exit 2; }
    cp "$VARS" "$LOG.vars"
    FW=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$CODE" -drive "if=pflash,format=raw,unit=1,file=$LOG.vars")
    NICROM=,romfile=  # no PXE after the disk
    ;;
  *) echo "boot-qemu: unknown firmware '$FIRMWARE' (bios|uefi)" >&2; exit 2 ;;
esac

: > "$LOG"
t0=$(date +%s)
"$QEMU" -accel "$ACCEL" -machine "$MACHINE" -cpu max -m "$MEM" -smp "$SMP" \
  -nodefaults -no-reboot -display none -vga none -monitor none \
  -serial "file:$LOG" -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0$NICROM \
  "${FW[@]}" "${DISK[@]}" </dev/null >"$LOG.qemu" 2>&1 &
QPID=$!
trap 'kill $QPID 2>/dev/null; wait $QPID 2>/dev/null' EXIT INT TERM

rc=1; why=timeout
while :; do
  if grep -aq "$MARKER" "$LOG"; then rc=0; why=marker; break; fi
  f=$(grep -aoE "$FAIL_RE" "$LOG" | head -1)
  if [ -n "$f" ]; then why="failure: $f"; break; fi
  if ! kill -0 $QPID 2>/dev/null; then
    if grep -aq "$MARKER" "$LOG"; then rc=0; why=marker
    else why="qemu stopped: $(tail -c 200 "$LOG.qemu" | tr '\n' ' ')"; fi
    break
  fi
  [ $(( $(date +%s) - t0 )) -ge "$TIMEOUT" ] && break
  sleep 0.5
done
if [ $rc != 0 ] && grep -aq "IO-APIC + timer doesn't work" "$LOG"; then
  rc=3; why="host too slow (the kernel's IO-APIC timer check failed under TCG)"
fi
# the marker is the proof: the guest is stopped there rather than left to
# power off (the disk is a snapshot, nothing of it is kept)
echo "boot-qemu: $(basename "$IMG") bus=$BUS$([ "$FIRMWARE" = bios ] || echo " firmware=$FIRMWARE") result=$why rc=$rc time=$(( $(date +%s) - t0 ))s"
[ $rc = 0 ] && grep -a "$MARKER" "$LOG" | head -1 | tr -d '\r'
exit $rc
