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

# boot_one N DISK MODE: domU N from DISK; MODE pygrub, pvgrub2, direct or auto
boot_one() {
  n=$1; disk=$2; mode=$3; test=$4; name=scimg-domu$n
  cfg=/run/$name.cfg
  log=/var/log/xen/console/guest-$name.log
  start=$(date +%s)
  for m in $( [ "$mode" = auto ] && echo "pygrub pvgrub2" || echo "$mode" ); do
    {
      echo "name = \"$name\""; echo 'type = "pv"'; echo "memory = $MEM"; echo 'vcpus = 1'
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
    if [ "$m" = direct ]; then
      # created paused and started once xenconsoled has its console (the
      # domU's early console waits for room in the ring)
      say "direct: xl create $(grep -E '^(kernel|ramdisk|extra)' "$cfg" | tr '\n' ' ')"
      if xl create -p "$cfg" >/run/$name.create 2>&1; then
        w=0; while [ ! -e "$log" ] && [ $w -lt 30 ]; do sleep 1; w=$((w + 1)); done
        say "direct: console log $( [ -e "$log" ] && echo "there after ${w}s" || echo "missing after ${w}s"); xenconsoled: $(pgrep -c xenconsoled) running"
        xl unpause "$name"; mode=$m; break
      fi
    elif xl create "$cfg" >/run/$name.create 2>&1; then mode=$m; break; fi
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

n=0; ntest=0
for d in $DISKS; do
  serial=$(lsblk -dno SERIAL "$d" 2>/dev/null | tr -d ' ')
  case "$serial" in
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
