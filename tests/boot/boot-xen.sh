#!/bin/bash
# boot-xen.sh - start IMAGE as a Xen PV domU under a nested Xen: QEMU (TCG)
# boots the Xen hypervisor with a small Debian 12 dom0, whose test unit
# creates the domU with xl and relays its console.
#
# Usage: boot-xen.sh IMAGE MODES LOG [TIMEOUT]
#        boot-xen.sh --prepare   (only build the cached dom0, then exit)
#   MODES, one or more of these, comma-separated:
#   pygrub : bootloader = "pygrub" (dom0 reads the image's grub.cfg and
#            loads kernel + initramfs)
#   pvgrub : kernel = grub-x86_64-xen.bin (pvgrub2 runs in the domU and
#            reads /boot/grub/grub.cfg; GRUB 2.06 loads gzip/xz kernels)
#   Each mode boots its own domU from the image as it is on the host (QEMU
#   attaches it once per mode, each with its own snapshot), one after the
#   other in one Xen session, so Xen and dom0 start once for all of them.
#   One line per mode: "boot-xen: IMAGE mode=M result=R rc=N time=Ns" (rc
#   0 when that domU printed SCIMG-BOOT-OK on hvc0; R names the failure,
#   "not xen image" is pvgrub2 refusing the kernel), then the domU's marker.
#   Exit 0 when every mode booted, 1 otherwise, 2 usage.
# The dom0 (Xen 4.17, xl) is built once with mmdebstrap into $CACHE
# (default /var/tmp/scimg-xen-cache); that needs root and Debian's archive.
# IMAGE is attached with snapshot=on: it is never written.
# Env: CACHE, MIRROR, MEM (QEMU MiB, 2048), DOMU_MEM (MiB, 512), STALL (600 s).
set -euo pipefail

PREPARE=0
if [ "${1:-}" = --prepare ]; then PREPARE=1; set -- /dev/null pygrub /dev/null; fi
IMG=${1:?usage: boot-xen.sh IMAGE pygrub|pvgrub[,...] LOG [TIMEOUT]}
MODES=${2:?usage: boot-xen.sh IMAGE pygrub|pvgrub[,...] LOG [TIMEOUT]}
LOG=${3:?usage: boot-xen.sh IMAGE pygrub|pvgrub[,...] LOG [TIMEOUT]}
TIMEOUT=${4:-900}
CACHE=${CACHE:-/var/tmp/scimg-xen-cache}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
MEM=${MEM:-2048}
DOMU_MEM=${DOMU_MEM:-512}
STALL=${STALL:-600}  # the domU console may be silent this long (quiet boot, loaded host)
IFS=, read -r -a MODE_LIST <<< "$MODES"
[ ${#MODE_LIST[@]} -ge 1 ] && [ ${#MODE_LIST[@]} -le 8 ] ||
  { echo "boot-xen: one to eight modes" >&2; exit 2; }
for m in "${MODE_LIST[@]}"; do
  case "$m" in pygrub|pvgrub) ;; *) echo "boot-xen: mode must be pygrub or pvgrub, not '$m'" >&2; exit 2 ;; esac
done
[ -r "$IMG" ] || { echo "boot-xen: cannot read $IMG" >&2; exit 2; }

DOM0_UUID=5c1a6e00-0d00-4d00-9a00-0000000000d0
PKGS=linux-image-amd64,xen-system-amd64,grub-xen-host,systemd-sysv,udev,initramfs-tools,kmod,e2fsprogs,procps
KEY=$(printf '%s\n' bookworm "$PKGS" scimg-dom0-v1 | sha256sum | cut -c1-12)
D0=$CACHE/dom0-$KEY

# The test run in dom0: start the domU named on the kernel command line and
# relay its console.  Written into the dom0 image when it changes.
dom0_script() {
  cat <<'EOF'
#!/bin/sh
exec >/dev/hvc0 2>&1
say() { echo "[dom0] $*"; }
MODES=pygrub; MEM=512; TMO=800; STALL=600
for a in $(cat /proc/cmdline); do case "$a" in
  scimg.modes=*) MODES=${a#*=} ;; scimg.mem=*) MEM=${a#*=} ;; scimg.timeout=*) TMO=${a#*=} ;; scimg.stall=*) STALL=${a#*=} ;; esac; done
say "SCIMG-DOM0-UP modes=$MODES $(xl info | grep -E '^xen_version' | tr -s ' ')"
modprobe xen-blkback
mkdir -p /var/log/xen/console
# boot_one N MODE: domU N from the disk with serial scimg-domuN
boot_one() {
  n=$1; mode=$2; name=scimg-domu$n
  DISK=/dev/disk/by-id/virtio-scimg-domu$n
  for i in $(seq 60); do [ -b "$DISK" ] && break; sleep 1; done
  [ -b "$DISK" ] || { say "SCIMG-XEN-FAIL $n (no domU disk after 60s)"; return; }
  CFG=/run/$name.cfg
  {
    echo "name = \"$name\""; echo 'type = "pv"'; echo "memory = $MEM"; echo 'vcpus = 1'
    echo "disk = [ 'format=raw, vdev=xvda, access=rw, target=$(readlink -f $DISK)' ]"
    echo 'on_poweroff = "destroy"'; echo 'on_reboot = "destroy"'; echo 'on_crash = "destroy"'
    if [ "$mode" = pvgrub ]; then echo 'kernel = "/usr/lib/grub-xen/grub-x86_64-xen.bin"'
    else echo 'bootloader = "pygrub"'; fi
  } > $CFG
  CLOG=/var/log/xen/console/guest-$name.log
  rm -f $CLOG
  start=$(date +%s)
  xl create $CFG || { say "SCIMG-XEN-FAIL $n (xl create failed after $(( $(date +%s) - start ))s)"; return; }
  tail -n +1 -F $CLOG 2>/dev/null | sed -u "s/^/[domU$n] /" &
  res=timeout; last=-1; changed=$(date +%s)
  while [ $(( $(date +%s) - start )) -lt $TMO ]; do
    grep -aq SCIMG-BOOT-OK $CLOG 2>/dev/null && { res=ok; break; }
    f=$(grep -aoE 'not xen image|you need to load the kernel first|Gave up waiting for root[^.]*|ALERT! .* does not exist|Kernel panic.{0,60}|You are in emergency mode|Entering emergency mode' $CLOG 2>/dev/null | head -1)
    [ -n "$f" ] && { sleep 3; res="domU failure: $f"; break; }
    xl list $name >/dev/null 2>&1 || { sleep 2; grep -aq SCIMG-BOOT-OK $CLOG && res=ok || res="domU gone"; break; }
    sz=$(stat -c %s $CLOG 2>/dev/null || echo 0)
    [ "$sz" != "$last" ] && { last=$sz; changed=$(date +%s); }
    [ $(( $(date +%s) - changed )) -ge $STALL ] && { res="domU console silent for ${STALL}s"; break; }
    sleep 2
  done
  # the marker is the proof: the domU is not left to power off
  xl destroy $name 2>/dev/null
  sleep 1  # the relay's last lines
  pkill -f "tail -n +1 -F $CLOG" 2>/dev/null
  if [ "$res" = ok ]; then say "SCIMG-XEN-OK $n after $(( $(date +%s) - start ))s"
  else say "SCIMG-XEN-FAIL $n ($res after $(( $(date +%s) - start ))s)"; fi
}
n=0
for mode in $(echo "$MODES" | tr + ' '); do
  boot_one $n $mode
  n=$((n + 1))
done
say "SCIMG-XEN-DONE"
systemctl poweroff
EOF
}

build_dom0() {
  [ "$(id -u)" = 0 ] || { echo "boot-xen: building the dom0 needs root" >&2; exit 1; }
  command -v mmdebstrap >/dev/null || { echo "boot-xen: mmdebstrap missing (setup.sh)" >&2; exit 1; }
  local root=$D0.root
  rm -rf "$root" "$D0.img.tmp"
  mkdir -p "$CACHE"
  echo "boot-xen: building the dom0 (once) with mmdebstrap" >&2
  mmdebstrap --mode=root --variant=minbase --include="$PKGS" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    bookworm "$root" "$MIRROR" >&2
  echo scimg-dom0 > "$root/etc/hostname"
  chroot "$root" passwd -d root
  chroot "$root" systemctl set-default multi-user.target
  echo "UUID=$DOM0_UUID / ext4 errors=remount-ro 0 1" > "$root/etc/fstab"
  echo 'XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console"' > "$root/etc/default/xen"
  dom0_script > "$root/usr/local/sbin/scimg-domu-test"
  chmod 755 "$root/usr/local/sbin/scimg-domu-test"
  cat > "$root/etc/systemd/system/scimg-domu-test.service" <<'EOF'
[Unit]
Description=scimg: start the PV domU and relay its console
After=xen.service xenconsoled.service local-fs.target
Wants=xen.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/scimg-domu-test
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
  ln -sf /etc/systemd/system/scimg-domu-test.service \
    "$root/etc/systemd/system/multi-user.target.wants/scimg-domu-test.service"
  ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
  ln -sf /dev/null "$root/etc/systemd/system/serial-getty@hvc0.service"
  local kver
  kver=$(ls "$root"/boot/vmlinuz-* | sed 's|.*/vmlinuz-||' | sort -V | tail -1)
  # QEMU's multiboot loader wants the uncompressed Xen ELF
  gunzip -c "$(ls "$root"/boot/xen-*-amd64.gz | sort -V | tail -1)" > "$D0.xen"
  cp "$root/boot/vmlinuz-$kver" "$D0.vmlinuz"
  cp "$root/boot/initrd.img-$kver" "$D0.initrd"
  truncate -s 3G "$D0.img.tmp"
  mkfs.ext4 -q -F -U "$DOM0_UUID" -E root_owner=0:0 -d "$root" "$D0.img.tmp"
  mv "$D0.img.tmp" "$D0.img"
  rm -rf "$root"
  touch "$D0.complete"
}

if [ ! -e "$D0.complete" ]; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  [ -e "$D0.complete" ] || build_dom0
  exec 9>&-
fi

# keep the test script in the (cached) dom0 image current, without a rebuild
want=$(dom0_script | sha256sum | cut -c1-16)
if [ "$(cat "$D0.script" 2>/dev/null)" != "$want" ]; then
  exec 9>"$CACHE/.lock"
  flock 9
  if [ "$(cat "$D0.script" 2>/dev/null)" != "$want" ]; then
    dom0_script > "$CACHE/script.tmp"
    printf 'rm /usr/local/sbin/scimg-domu-test\nwrite %s /usr/local/sbin/scimg-domu-test\nsif /usr/local/sbin/scimg-domu-test mode 0100755\n' \
      "$CACHE/script.tmp" > "$CACHE/debugfs.cmd"
    debugfs -w -f "$CACHE/debugfs.cmd" "$D0.img" >/dev/null 2>&1 || { echo "boot-xen: debugfs failed" >&2; exit 1; }
    echo "$want" > "$D0.script"
  fi
  exec 9>&-
fi
[ $PREPARE = 0 ] || exit 0

case "$IMG" in *.qcow2) FMT=qcow2 ;; *) FMT=raw ;; esac
# smap=0: under QEMU 7.2 TCG a PV dom0 crashes at its first bounce frame
# with SMAP on ("d0v0 Unhandled: vec 14, #PF[0001]")
# xpti=false spec-ctrl=no, and norandmaps mitigations=off for dom0: under
# TCG, Xen's page-table isolation for 64-bit PV guests flushes QEMU's
# software TLB on every guest kernel entry, and address-space randomisation
# makes QEMU translate every new process's code again; neither changes what
# is being tested (that the domU boots), both cost minutes per boot.
XEN_ARGS="console=com1 com1=115200,8n1 smap=0 dom0_mem=1024M,max:1024M dom0_max_vcpus=1 noreboot xpti=false spec-ctrl=no"
# (modes joined with "+": QEMU's -initrd list takes a comma as the separator)
DOM0_ARGS="root=UUID=$DOM0_UUID ro console=hvc0 quiet norandmaps mitigations=off scimg.modes=${MODES//,/+} scimg.mem=$DOMU_MEM scimg.timeout=$TIMEOUT scimg.stall=$STALL"
DISKS=()
for n in "${!MODE_LIST[@]}"; do
  DISKS+=(-drive "file=$IMG,format=$FMT,if=none,id=g$n,snapshot=on,cache=unsafe"
          -device "virtio-blk-pci,drive=g$n,serial=scimg-domu$n")
done
: > "$LOG"
t0=$(date +%s)
qemu-system-x86_64 -accel tcg -cpu max -m "$MEM" -smp 2 -nodefaults -no-reboot \
  -display none -vga none -monitor none -serial "file:$LOG" \
  -kernel "$D0.xen" -append "$XEN_ARGS" \
  -initrd "$D0.vmlinuz $DOM0_ARGS,$D0.initrd" \
  -drive "file=$D0.img,format=raw,if=ide,index=0,snapshot=on,cache=unsafe" \
  "${DISKS[@]}" </dev/null >"$LOG.qemu" 2>&1 &
QPID=$!
trap 'kill $QPID 2>/dev/null || true; wait $QPID 2>/dev/null || true' EXIT INT TERM
why=timeout
while [ $(( $(date +%s) - t0 )) -lt $(( TIMEOUT * ${#MODE_LIST[@]} + 300 )) ]; do
  if grep -aq 'SCIMG-XEN-DONE' "$LOG"; then why=done; break; fi
  if grep -aqE 'Panic on CPU|Dom0 crashed|Domain 0 \(vcpu#[0-9]+\) crashed' "$LOG"; then
    why="xen: $(grep -a -m1 -E 'Panic on CPU|Dom0 crashed|crashed' "$LOG" | tr -d '\r')"; break; fi
  kill -0 $QPID 2>/dev/null || { why="qemu stopped: $(tail -c 200 "$LOG.qemu" | tr '\n' ' ')"; break; }
  sleep 2
done
# every result is in the log: dom0 is not left to power off
kill $QPID 2>/dev/null || true
wait $QPID 2>/dev/null || true
total=$(( $(date +%s) - t0 ))
up=$(grep -a -m1 'SCIMG-DOM0-UP' "$LOG" >/dev/null && echo yes || echo no)
rc=0
for n in "${!MODE_LIST[@]}"; do
  line=$(grep -a -m1 -E "SCIMG-XEN-(OK|FAIL) $n " "$LOG" | tr -d '\r' || true)
  case "$line" in
    *SCIMG-XEN-OK*) r=ok; t=${line##*after } ;;
    *SCIMG-XEN-FAIL*) r=${line#*SCIMG-XEN-FAIL $n (}; r=${r% after *}; t=${line##* after }; t=${t%)} ;;
    *) r="not reached ($why; dom0 up: $up)"; t=- ;;
  esac
  [ "$r" = ok ] || rc=1
  echo "boot-xen: $(basename "$IMG") mode=${MODE_LIST[$n]} result=$r rc=$([ "$r" = ok ] && echo 0 || echo 1) time=$t"
  [ "$r" = ok ] && { grep -a -m1 "\[domU$n\] .*SCIMG-BOOT-OK" "$LOG" | tr -d '\r' || true; }
done
echo "boot-xen: one Xen session for ${#MODE_LIST[@]} domU(s): ${total}s"
exit $rc
