#!/bin/sh
# scimg-blanket - the blanket's dom0 service: start every Supercloud guest
# disk attached to this machine as a Xen PV domU and report each one's fate
# on the serial console.  Installed by `scimg blanket create` as
# /usr/local/sbin/scimg-blanket and run once at boot by
# scimg-blanket.service.
#
# Which disks: every whole disk except the one holding dom0's root.  A disk
# holds a guest's disk image as the provider's volume shows it (raw: e.g.
# `scimg convert IMAGE.sci -O raw`, or a provider volume made from it).
# How each starts: a disk whose serial is "scimg-bt-MODE" (set by
# `scimg boot-test --xen`) with MODE (pygrub, pvgrub2 or direct), is
# destroyed once its fate is known and, when every such disk is done, dom0
# powers off; MODE direct gives xl the guest's kernel, initramfs and command
# line (kernel=, ramdisk=, extra=; no bootloader) from the "carrier" disk
# whose serial is "scimg-bt-files" (a tar: vmlinuz, initrd, cmdline), which
# is not a guest itself;
# MODE sci (and any disk that holds a Supercloud image package, the .sci
# file itself) starts the package's disk member the way its own xl.cfg
# says: its loader (pygrub or pvgrub2), memory and vcpus (within dom0's
# free memory and the CPUs but one); a raw member is used in place
# through a loop device, a qcow2
# member through qemu-nbd with --snapshot (its writes land in dom0's
# /var/tmp and are dropped when the domU ends: a qcow2 member cannot grow
# inside the package).  Only those xl.cfg keys are read; a package whose
# xl.cfg asks for anything else to boot (another kernel, bootloader or
# type) is refused, as is one that breaks the SCI member rules;
# any other disk with pygrub, then pvgrub2 if xl create fails, and is left
# running with one vif on xenbr0 (when the bridge exists).
# /etc/scimg-blanket.conf may set MEM (MiB per domU; default: dom0's free
# memory shared out), TIMEOUT (seconds to wait for proof of boot, 900) and
# STALL (seconds the console may stay silent, 600).
#
# Lines it prints (grep for them): "scimg-blanket: SCIMG-DOM0-UP ...",
# "scimg-blanket: SCIMG-XEN-OK N DISK MODE after Ss (WHAT)",
# "scimg-blanket: SCIMG-XEN-FAIL N DISK MODE (REASON after Ss)",
# "scimg-blanket: SCIMG-XEN-DONE"; each domU's console as "[domuN] LINE".
exec >/dev/console 2>&1
say() { echo "scimg-blanket: $*"; }
TIMEOUT=900; STALL=600; MEM=
[ -r /etc/scimg-blanket.conf ] && . /etc/scimg-blanket.conf
modprobe xen-blkback 2>/dev/null
modprobe xen-netback 2>/dev/null
mkdir -p /var/log/xen/console
udevadm settle --timeout=30 2>/dev/null
say "SCIMG-DOM0-UP $(xl info 2>/dev/null | grep -E '^xen_version' | tr -s ' ')"

rootsrc=$(findmnt -nvo SOURCE /)
rootdisk=$(lsblk -lnspo NAME,TYPE "$rootsrc" 2>/dev/null | awk '$2 == "disk" { print $1; exit }')
DISKS=
DIRECT=/var/lib/scimg-direct  # the root filesystem: an initramfs may not fit /run
for d in $(lsblk -dnpo NAME,TYPE | awk '$2 == "disk" { print $1 }'); do
  [ "$d" = "$rootdisk" ] && continue
  case "$d" in /dev/loop*|/dev/ram*|/dev/zram*|/dev/sr*) continue ;; esac
  # the direct boot's carrier (scimg boot-test --xen=direct): files, not a guest
  if [ "$(lsblk -dno SERIAL "$d" 2>/dev/null | tr -d ' ')" = scimg-bt-files ]; then
    rm -rf "$DIRECT"; mkdir -p "$DIRECT"
    if tar -xf "$d" -C "$DIRECT" --no-same-owner --no-same-permissions vmlinuz initrd cmdline; then
      say "direct: carrier $d: vmlinuz $(stat -c %s "$DIRECT/vmlinuz") bytes, initrd $(stat -c %s "$DIRECT/initrd") bytes"
    else
      say "the carrier $d could not be unpacked"
    fi
    continue
  fi
  DISKS="$DISKS $d"
done
set -- $DISKS
NDISK=$#
if [ -z "$MEM" ]; then
  free=$(xl info 2>/dev/null | awk '$1 == "free_memory" { print $3 }')
  MEM=$(( ${free:-1024} / (NDISK > 0 ? NDISK : 1) - 64 ))
  [ "$MEM" -gt 4096 ] && MEM=4096
  [ "$MEM" -lt 256 ] && MEM=256
fi

# the console file's first line that shows the domU is up, or failed
OKRE='login: *$|Reached target .*Multi-User System|Reached target .*Graphical Interface|Cloud-init v\. .* finished|SCIMG-BOOT-OK'
FAILRE='not xen image|you need to load the kernel first|Gave up waiting for root|ALERT! .* does not exist|Kernel panic|You are in emergency mode|Entering emergency mode|dracut:/#'

# sci_read DISK: when DISK holds an SCI package, print shell assignments
# (SCI_ERR, or SCI_NAME SCI_LOADER SCI_MEM SCI_VCPUS SCI_MEMBER SCI_FMT
# SCI_OFF SCI_SIZE), made of [A-Za-z0-9._-] only; nothing for any other disk.
sci_read() {
  python3 - "$1" <<'PY' 2>/dev/null
import re, sys, tarfile
dev = sys.argv[1]
def out(**kv):
    for k, v in kv.items():
        print("SCI_%s=%s" % (k, re.sub(r"[^A-Za-z0-9._-]", "_", str(v))[:64]))
    sys.exit(0)
with open(dev, "rb") as f:
    head = f.read(512)
    if len(head) < 512 or head[257:262] != b"ustar":
        sys.exit(0)
    f.seek(0)
    try:
        t = tarfile.open(fileobj=f, mode="r:")
        members = []
        for m in t:
            members.append(m)
            if len(members) > 16:
                out(ERR="more_members_than_an_SCI_has")
    except (tarfile.TarError, OSError, ValueError):
        out(ERR="not_a_readable_tar")
    names = [m.name for m in members]
    if not names or names[0] != "supercloud.xml":
        sys.exit(0)   # a tar, not an SCI: left to the loaders
    if len(set(names)) != len(names) or any(not m.isreg() for m in members):
        out(ERR="duplicate_or_non-regular_members")
    disks = [m for m in members if re.fullmatch(r"disk0\.(raw|qcow2)", m.name)]
    cfgm = [m for m in members if m.name == "xl.cfg"]
    if len(disks) != 1 or len(cfgm) != 1:
        out(ERR="no_disk0.raw_or_disk0.qcow2_member_or_no_xl.cfg")
    d = disks[0]
    if d.offset_data % 512 or d.size <= 0 or cfgm[0].size > 65536:
        out(ERR="disk_member_misaligned_or_empty_or_xl.cfg_too_large")
    f.seek(cfgm[0].offset_data)
    text = f.read(cfgm[0].size).decode("utf-8", "replace")
    kv = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        mm = re.fullmatch(r"([a-z_]+)\s*=\s*(.+)", line)
        if mm:
            kv[mm.group(1)] = mm.group(2).strip()
    def sval(k):
        v = kv.get(k)
        if v is None:
            return None
        mm = re.fullmatch(r'"([^"]*)"|\'([^\']*)\'', v)
        return (mm.group(1) if mm.group(1) is not None else mm.group(2)) if mm else v
    def ival(k, lo, hi, dflt):
        v = kv.get(k)
        if v is None:
            return dflt
        if not re.fullmatch(r"[0-9]{1,8}", v) or not lo <= int(v) <= hi:
            out(ERR="xl.cfg_%s_is_not_a_number_from_%d_to_%d" % (k, lo, hi))
        return int(v)
    if sval("type") not in (None, "pv"):
        out(ERR="xl.cfg_type_is_not_pv")
    loader = None
    if sval("bootloader") is not None:
        if sval("bootloader") != "pygrub":
            out(ERR="xl.cfg_bootloader_is_not_pygrub")
        loader = "pygrub"
    if sval("kernel") is not None:
        if loader or not sval("kernel").endswith("/grub-x86_64-xen.bin"):
            out(ERR="xl.cfg_kernel_is_not_pvgrub2")
        loader = "pvgrub2"
    for k in ("ramdisk", "extra", "cmdline", "root", "bootloader_args", "device_model_override"):
        if k in kv:
            out(ERR="xl.cfg_sets_" + k)
    if not loader:
        out(ERR="xl.cfg_names_no_loader")
    disk = kv.get("disk", "")
    if not re.search(r"target=%s\b" % re.escape(d.name), disk):
        out(ERR="xl.cfg_disk_is_not_" + d.name)
    out(NAME=sval("name") or "sci", LOADER=loader, MEM=ival("memory", 32, 1048576, 512),
        VCPUS=ival("vcpus", 1, 128, 1), MEMBER=d.name, FMT=d.name.split(".")[1],
        OFF=d.offset_data, SIZE=d.size)
PY
}

# boot_one N DISK MODE TEST [VCPUS]: domU N from DISK; MODE pygrub, pvgrub2,
# direct or auto (pygrub, then pvgrub2)
boot_one() {
  n=$1; disk=$2; mode=$3; test=$4; vcpus=${5:-1}; name=scimg-domu$n
  cfg=/run/$name.cfg
  log=/var/log/xen/console/guest-$name.log
  start=$(date +%s)
  for m in $( [ "$mode" = auto ] && echo "pygrub pvgrub2" || echo "$mode" ); do
    {
      echo "name = \"$name\""; echo 'type = "pv"'; echo "memory = $MEM"; echo "vcpus = $vcpus"
      echo "disk = [ 'format=raw, vdev=xvda, access=rw, target=$disk' ]"
      [ "$test" = 0 ] && ip link show xenbr0 >/dev/null 2>&1 && echo "vif = [ 'bridge=xenbr0' ]"
      echo 'on_poweroff = "destroy"'; echo 'on_crash = "destroy"'
      [ "$test" = 1 ] && echo 'on_reboot = "destroy"'
      case "$m" in
        pvgrub2) echo 'kernel = "/usr/lib/grub-xen/grub-x86_64-xen.bin"' ;;
        direct)
          echo "kernel = \"$DIRECT/vmlinuz\""
          [ -s "$DIRECT/initrd" ] && echo "ramdisk = \"$DIRECT/initrd\""
          # boot-test wrote one line of printable characters without quotes
          echo "extra = \"$(head -n 1 "$DIRECT/cmdline" 2>/dev/null | tr -cd '[:print:]' | tr -d '"\\')\"" ;;
        *) echo 'bootloader = "pygrub"' ;;
      esac
    } > "$cfg"
    rm -f "$log"
    [ "$m" = direct ] && say "direct: xl create $(grep -E '^(kernel|ramdisk|extra)' "$cfg" | tr '\n' ' ')"
    if xl create "$cfg" >/run/$name.create 2>&1; then mode=$m; break; fi
    say "xl create with $m failed: $(tail -n 3 /run/$name.create | tr '\n' ' ')"
    mode=failed
  done
  if [ "$mode" = failed ]; then
    say "SCIMG-XEN-FAIL $n $disk $3 (xl create failed after $(( $(date +%s) - start ))s)"
    return
  fi
  [ "$mode" = direct ] && say "direct: domU created after $(( $(date +%s) - start ))s"
  tail -n +1 -F "$log" 2>/dev/null | sed -u "s/^/[domu$n] /" &
  relay=$!
  res=timeout; last=-1; changed=$(date +%s)
  while [ $(( $(date +%s) - start )) -lt "$TIMEOUT" ]; do
    ok=$(grep -aoE "$OKRE" "$log" 2>/dev/null | head -1)
    [ -n "$ok" ] && { res="ok $ok"; break; }
    f=$(grep -aoE "$FAILRE" "$log" 2>/dev/null | head -1)
    [ -n "$f" ] && { sleep 3; res="domU failure: $f"; break; }
    xl list "$name" >/dev/null 2>&1 || { sleep 2; res="the domU stopped before it showed it had booted"; break; }
    sz=$(stat -c %s "$log" 2>/dev/null || echo 0)
    [ "$sz" != "$last" ] && { last=$sz; changed=$(date +%s); }
    [ $(( $(date +%s) - changed )) -ge "$STALL" ] && { res="the domU console was silent for ${STALL}s"; break; }
    # a direct boot says once a minute whether its domU runs
    [ "$mode" = direct ] && [ $(( ($(date +%s) - start) % 60 )) -lt 2 ] &&
      say "direct: $(xl list "$name" 2>/dev/null | awk 'NR == 2 { print "state " $5 ", cpu " $6 " s" }'), console $sz bytes after $(( $(date +%s) - start ))s; $(ls /var/log/xen/console 2>&1 | tr '\n' ' '); $(xenstore-ls -f "/local/domain/$(xl domid "$name" 2>/dev/null)/console" 2>&1 | grep -E 'ring-ref|port|type|tty' | tr '\n' ' ' | cut -c1-300)"
    sleep 2
  done
  t=$(( $(date +%s) - start ))
  [ "$test" = 1 ] && xl destroy "$name" 2>/dev/null
  sleep 1
  kill $relay 2>/dev/null
  case "$res" in
    ok*) say "SCIMG-XEN-OK $n $disk $mode after ${t}s (${res#ok })" ;;
    *) say "SCIMG-XEN-FAIL $n $disk $mode ($res after ${t}s)" ;;
  esac
}

# boot_sci N DISK TEST [INFO]: the SCI package on DISK, as its xl.cfg
# says; INFO: what sci_read printed for DISK already (read here if not given)
boot_sci() {
  n=$1; sdisk=$2; stest=$3
  SCI_ERR=; SCI_NAME=
  if [ $# -ge 4 ]; then info=$4; else info=$(sci_read "$sdisk"); fi
  eval "$info"
  if [ -z "$SCI_ERR$SCI_NAME" ]; then
    SCI_ERR="not_a_Supercloud_image_package"
  fi
  if [ -n "$SCI_ERR" ]; then
    say "SCIMG-XEN-FAIL $n $sdisk sci (the SCI package was refused: $SCI_ERR after 0s)"
    return
  fi
  # what dom0 can give: the xl.cfg's memory and vcpus, within dom0's share
  smem=$MEM; [ "$SCI_MEM" -lt "$smem" ] && smem=$SCI_MEM
  ncpu=$(xl info 2>/dev/null | awk '$1 == "nr_cpus" { print $3 }')
  # one CPU stays dom0's
  maxv=$(( ${ncpu:-2} - 1 )); [ "$maxv" -lt 1 ] && maxv=1
  svcpus=$SCI_VCPUS; [ "$svcpus" -gt "$maxv" ] && svcpus=$maxv
  if [ "$SCI_FMT" = raw ]; then
    target=$(losetup -f --show -o "$SCI_OFF" --sizelimit "$SCI_SIZE" "$sdisk" 2>&1) || target=
    how="in place"
  else
    modprobe nbd max_part=0 2>/dev/null
    target=
    lo=$(losetup -f --show -r -o "$SCI_OFF" --sizelimit "$SCI_SIZE" "$sdisk" 2>&1) &&
      for nb in /dev/nbd*; do
        [ -b "$nb" ] && [ "$(cat /sys/block/${nb#/dev/}/size 2>/dev/null)" = 0 ] || continue
        qemu-nbd -c "$nb" -f qcow2 --snapshot "$lo" >/run/scimg-nbd$n.log 2>&1 && target=$nb
        break
      done
    how="through qemu-nbd, writes dropped at the end"
  fi
  if [ -z "$target" ] || [ ! -b "$target" ]; then
    say "SCIMG-XEN-FAIL $n $sdisk sci (cannot expose $SCI_MEMBER: $(tail -n 2 /run/scimg-nbd$n.log 2>/dev/null | tr '\n' ' ')$target after 0s)"
    return
  fi
  say "sci: $sdisk: image $SCI_NAME, $SCI_MEMBER ($SCI_SIZE bytes at $SCI_OFF) $how as $target; xl.cfg: $SCI_LOADER, memory $SCI_MEM MiB, vcpus $SCI_VCPUS; given memory $smem MiB, vcpus $svcpus"
  omem=$MEM; MEM=$smem
  boot_one "$n" "$target" "$SCI_LOADER" "$stest" "$svcpus"
  MEM=$omem
}

n=0; ntest=0
for d in $DISKS; do
  serial=$(lsblk -dno SERIAL "$d" 2>/dev/null | tr -d ' ')
  # a Supercloud image package attached as it is: its own xl.cfg (read
  # once, and handed on)
  info=
  if [ -z "$serial" ] || [ "${serial#scimg-bt-}" = "$serial" ]; then
    info=$(sci_read "$d")
    [ -n "$info" ] && serial=scimg-sci
  fi
  case "$serial" in
    scimg-bt-sci) boot_sci $n "$d" 1; ntest=$((ntest + 1)) ;;
    scimg-sci) boot_sci $n "$d" 0 "$info" ;;
    scimg-bt-pygrub) boot_one $n "$d" pygrub 1; ntest=$((ntest + 1)) ;;
    scimg-bt-pvgrub2) boot_one $n "$d" pvgrub2 1; ntest=$((ntest + 1)) ;;
    scimg-bt-direct) boot_one $n "$d" direct 1; ntest=$((ntest + 1)) ;;
    *) boot_one $n "$d" auto 0 ;;
  esac
  n=$((n + 1))
done
[ "$n" = 0 ] && say "no guest disk attached: nothing to start"
say "SCIMG-XEN-DONE"
# boot-test's disks only: the answer is on the console, nothing runs on
[ "$ntest" -gt 0 ] && [ "$ntest" = "$n" ] && systemctl poweroff
exit 0
