#!/bin/bash
# scimg boot-test without a real guest: images that cannot boot fail before
# QEMU starts; argument errors; tiny boot sectors that print a line on the
# serial port (a login prompt, systemd's multi-user target with colours, a
# kernel panic) and then loop, booted for real under QEMU (a few seconds
# each, 2 QEMU at most); one that never prints times out; SIGINT stops every
# QEMU and leaves no temporary file.
. "$(dirname "$0")/functions.sh"
requires python3 timeout

T=$TMPD/tmp
mkdir -p "$T"
export TMPDIR=$T

# jval FILE EXPR: evaluate EXPR on the JSON report in FILE (r; b = boots by
# "bus/firmware")
jval() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
b = {x["bus"] + "/" + x["firmware"]: x for x in r["boots"]}
print(eval(sys.argv[2]))
EOF
}
jcheck() { [ "$(jval "$1" "$2")" = True ] || { cat "$1"; fail "$3"; }; }

# ---- fail fast: no QEMU is needed (none is on PATH here) -------------------
truncate -s 1M "$TMPD/zero.img"
rc=0; timeout 30 env PATH=/nonexistent "$SCIMG" boot-test --output=json --bus all --firmware bios,uefi \
  "$TMPD/zero.img" > "$TMPD/zero.json" 2> "$TMPD/zero.err" || rc=$?
[ $rc = 1 ] || { cat "$TMPD/zero.err"; fail "all-zero image: exit $rc, expected 1"; }
jcheck "$TMPD/zero.json" 'len(r["boots"]) == 10 and r["failed"] == 10 and r["accel"] == "none"' "zero: 10 failed boots"
jcheck "$TMPD/zero.json" 'all(x["result"] == "fail" and x["seconds"] == 0 and x["accel"] is None for x in r["boots"])' \
  "zero: every boot fails at once, without QEMU"
jcheck "$TMPD/zero.json" '"no boot signature" in b["ide/bios"]["reason"] and "zeros" in b["ide/bios"]["reason"]' "zero: bios reason"
jcheck "$TMPD/zero.json" '"no partition table" in b["nvme/uefi"]["reason"]' "zero: uefi reason"
jcheck "$TMPD/zero.json" 'b["virtio-blk/bios"]["method"] == "hvm-bios-virtio-blk" and b["sata/uefi"]["platform"] == "qemu"' "zero: method names"

# the same through a format QEMU does not read (vmdk): the library reads it
"$SCIMG" convert -O vmdk "$TMPD/zero.img" "$TMPD/zero.vmdk" || fail "convert to vmdk"
rc=0; timeout 30 env PATH=/nonexistent "$SCIMG" boot-test "$TMPD/zero.vmdk" > "$TMPD/zv.out" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$TMPD/zv.out"; fail "all-zero vmdk: exit $rc"; }
grep -q "FAIL .*no boot signature" "$TMPD/zv.out" || { cat "$TMPD/zv.out"; fail "vmdk: no reason"; }
grep -q "result: 0 of 1 boot worked" "$TMPD/zv.out" || { cat "$TMPD/zv.out"; fail "vmdk: no summary"; }

# an MBR partition table without boot code, and text
python3 - "$TMPD/noboot.img" "$TMPD/text.img" <<'EOF'
import sys
d = bytearray(1 << 20)
d[446 + 4] = 0x83; d[446 + 8] = 0x00; d[446 + 9] = 0x08; d[446 + 12] = 0x00; d[446 + 13] = 0x08
d[510:512] = b"\x55\xaa"
open(sys.argv[1], "wb").write(d)
open(sys.argv[2], "wb").write((b"just some text, no boot sector\n" * 40000)[: 1 << 20])
EOF
rc=0; timeout 30 env PATH=/nonexistent "$SCIMG" boot-test --output=json --firmware all "$TMPD/noboot.img" \
  > "$TMPD/noboot.json" || rc=$?
[ $rc = 1 ] || fail "MBR without boot code: exit $rc"
jcheck "$TMPD/noboot.json" '"boot code" in b["virtio-blk/bios"]["reason"] and "all zeros" in b["virtio-blk/bios"]["reason"]' "noboot: bios reason"
jcheck "$TMPD/noboot.json" '"no EFI system partition" in b["virtio-blk/uefi"]["reason"] and "MBR partition table" in r["content"]' "noboot: uefi reason"
rc=0; timeout 30 env PATH=/nonexistent "$SCIMG" boot-test -f raw "$TMPD/text.img" > "$TMPD/text.out" || rc=$?
[ $rc = 1 ] && grep -q "no boot signature.*unknown" "$TMPD/text.out" || { cat "$TMPD/text.out"; fail "text image: exit $rc"; }

# ---- argument errors --------------------------------------------------------
bad() {
  local want=$1; shift
  rc=0; timeout 30 "$SCIMG" boot-test "$@" > "$TMPD/bad.out" 2>&1 || rc=$?
  [ $rc = 2 ] || { cat "$TMPD/bad.out"; fail "boot-test $*: exit $rc, expected 2"; }
  grep -q -- "$want" "$TMPD/bad.out" || { cat "$TMPD/bad.out"; fail "boot-test $*: no '$want'"; }
}
bad "unknown 'scsi'" --bus scsi "$TMPD/zero.img"
bad "unknown 'efi'" --firmware efi "$TMPD/zero.img"
bad "empty list" --bus , "$TMPD/zero.img"
bad "timeout must be" --timeout 0 "$TMPD/zero.img"
bad "timeout must be" --timeout 5s "$TMPD/zero.img"
bad "memory must be" --memory 10 "$TMPD/zero.img"
bad "jobs must be" --jobs -1 "$TMPD/zero.img"
bad "not a valid extended regular expression" --expect '(' "$TMPD/zero.img"
bad "unknown 'grub4dos'" --xen grub4dos "$TMPD/zero.img"
bad "unknown 'efi'" --xen pygrub --blanket-firmware efi "$TMPD/zero.img"
bad "output must be" --output=xml "$TMPD/zero.img"
bad "exactly one IMAGE"
bad "exactly one IMAGE" "$TMPD/zero.img" "$TMPD/zero.img"
bad "nosuch.img" "$TMPD/nosuch.img"

# ---- boot sectors that print on COM1, then loop -----------------------------
# xor ax,ax; mov ds,ax; mov si,msg; mov dx,0x3f8; lodsb; test al,al; jz +3;
# out dx,al; jmp -8; jmp $; msg
mkmbr() {
  python3 - "$1" "$2" <<'EOF'
import sys
code = bytes.fromhex("31c08ed8be147cbaf803ac84c07403eeebf8ebfe")
msg = sys.argv[2].encode().decode("unicode_escape").encode("latin-1") + b"\0"
d = bytearray(1 << 20)
d[0:len(code)] = code
d[len(code):len(code) + len(msg)] = msg
assert len(code) + len(msg) <= 440
d[510:512] = b"\x55\xaa"
open(sys.argv[1], "wb").write(d)
EOF
}
mkmbr "$TMPD/login.img" 'Debian GNU/Linux 12 testvm ttyS0\r\n\r\ntestvm login: '
mkmbr "$TMPD/systemd.img" '\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mmulti-user.target\x1b[0m - Multi-User System.\r\n'
mkmbr "$TMPD/panic.img" 'Kernel panic - not syncing: VFS: Unable to mount root fs\r\n'
mkmbr "$TMPD/ready.img" 'app READY-42\r\n'
mkmbr "$TMPD/pid1.img" '[   38.748931] systemd[1]: Caught <ABRT> from our own process.\r\n'
truncate -s 1M "$TMPD/loop.img"
printf '\353\376' | dd of="$TMPD/loop.img" conv=notrunc status=none
printf '\125\252' | dd of="$TMPD/loop.img" bs=1 seek=510 conv=notrunc status=none

# QEMU missing: exit 2, naming the package
rc=0; timeout 30 env PATH=/nonexistent "$SCIMG" boot-test "$TMPD/login.img" > "$TMPD/noq.out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "qemu-system-x86" "$TMPD/noq.out" || { cat "$TMPD/noq.out"; fail "no QEMU: exit $rc"; }

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed (fail-fast and argument tests passed)"

# two buses at once, from a qcow2 (QEMU reads it directly, with an overlay)
"$SCIMG" convert -O qcow2 "$TMPD/login.img" "$TMPD/login.qcow2" || fail "convert to qcow2"
sum=$(sha "$TMPD/login.qcow2")
rc=0; timeout 120 "$SCIMG" boot-test --output=json --bus ide,virtio-blk --timeout 60 "$TMPD/login.qcow2" \
  > "$TMPD/login.json" 2> "$TMPD/login.err" || rc=$?
[ $rc = 0 ] || { cat "$TMPD/login.err" "$TMPD/login.json"; fail "login prompt: exit $rc"; }
jcheck "$TMPD/login.json" 'all(x["result"] == "ok" and x["reason"].startswith("login prompt") and 0 < x["seconds"] < 60 for x in r["boots"])' "login: both ok"
jcheck "$TMPD/login.json" 'b["ide/bios"]["console"][-1] == "testvm login: " and r["format"] == "qcow2"' "login: console tail"
[ "$(sha "$TMPD/login.qcow2")" = "$sum" ] || fail "boot-test changed its input"
echo "login prompt: $(jval "$TMPD/login.json" '[x["seconds"] for x in r["boots"]]') s"

# systemd with colours, through a VMDK (converted to a temporary qcow2)
"$SCIMG" convert -O vmdk "$TMPD/systemd.img" "$TMPD/systemd.vmdk" || fail "convert to vmdk"
rc=0; timeout 120 "$SCIMG" boot-test --output=json --bus nvme --timeout 60 "$TMPD/systemd.vmdk" \
  > "$TMPD/systemd.json" 2> "$TMPD/systemd.err" || rc=$?
[ $rc = 0 ] || { cat "$TMPD/systemd.err" "$TMPD/systemd.json"; fail "systemd target: exit $rc"; }
jcheck "$TMPD/systemd.json" 'b["nvme/bios"]["reason"].startswith("systemd reached the multi-user target")' "systemd: reason"
jcheck "$TMPD/systemd.json" '"\x1b" not in b["nvme/bios"]["console"][-1] and b["nvme/bios"]["console"][-1].startswith("  OK  ] Reached target multi-user.target")' "systemd: escapes stripped"

# a Supercloud image: its disk0.qcow2, through the library
"$SCIMG" convert -O sci -o guest=skip "$TMPD/login.img" "$TMPD/login.sci" || fail "convert to sci"
rc=0; timeout 120 "$SCIMG" boot-test --output=json --bus ide --timeout 60 "$TMPD/login.sci" \
  > "$TMPD/sci.json" 2> "$TMPD/sci.err" || rc=$?
[ $rc = 0 ] || { cat "$TMPD/sci.err" "$TMPD/sci.json"; fail "sci: exit $rc"; }
jcheck "$TMPD/sci.json" 'r["format"] == "sci" and b["ide/bios"]["reason"].startswith("login prompt")' "sci: booted"

# a kernel panic fails early; --expect wins over it; a line of the user's own
rc=0; timeout 120 "$SCIMG" boot-test --output=json --bus ide --timeout 60 "$TMPD/panic.img" \
  > "$TMPD/panic.json" 2> "$TMPD/panic.err" || rc=$?
[ $rc = 1 ] || { cat "$TMPD/panic.err"; fail "panic: exit $rc, expected 1"; }
jcheck "$TMPD/panic.json" 'b["ide/bios"]["result"] == "fail" and b["ide/bios"]["reason"].startswith("kernel panic") and b["ide/bios"]["seconds"] < 60' "panic: reason"
# systemd's PID 1 crashing (its crash handler freezes) fails early too
rc=0; timeout 120 "$SCIMG" boot-test --output=json --bus ide --timeout 60 "$TMPD/pid1.img" \
  > "$TMPD/pid1.json" 2> "$TMPD/pid1.err" || rc=$?
[ $rc = 1 ] || { cat "$TMPD/pid1.err"; fail "pid1: exit $rc, expected 1"; }
jcheck "$TMPD/pid1.json" 'b["ide/bios"]["result"] == "fail" and b["ide/bios"]["reason"].startswith("systemd (PID 1) crashed") and b["ide/bios"]["seconds"] < 60' "pid1: reason"
rc=0; timeout 120 "$SCIMG" boot-test --bus ide --timeout 60 --expect 'Kernel panic' "$TMPD/panic.img" \
  > "$TMPD/panic2.out" 2>&1 || rc=$?
[ $rc = 0 ] && grep -q "ok .*matched --expect 'Kernel panic'" "$TMPD/panic2.out" || { cat "$TMPD/panic2.out"; fail "--expect over a failure pattern: exit $rc"; }
rc=0; timeout 120 "$SCIMG" boot-test --bus virtio-scsi --timeout 60 --expect 'READY-[0-9]+$' "$TMPD/ready.img" \
  > "$TMPD/ready.out" 2>&1 || rc=$?
[ $rc = 0 ] && grep -q "virtio-scsi bios ok" "$TMPD/ready.out" || { cat "$TMPD/ready.out"; fail "--expect: exit $rc"; }

# a boot sector that never prints times out; the other firmware fails at once
rc=0; timeout 60 "$SCIMG" boot-test --output=json --bus ide,sata --firmware bios,uefi --timeout 5 "$TMPD/loop.img" \
  > "$TMPD/loop.json" 2> "$TMPD/loop.err" || rc=$?
[ $rc = 1 ] || { cat "$TMPD/loop.err"; fail "loop: exit $rc, expected 1"; }
jcheck "$TMPD/loop.json" 'all(b[k]["result"] == "timeout" and 5 <= b[k]["seconds"] < 15 and "no console output in 5 s" in b[k]["reason"] for k in ("ide/bios", "sata/bios"))' "loop: timeouts"
jcheck "$TMPD/loop.json" 'b["ide/uefi"]["result"] == "fail" and b["ide/uefi"]["accel"] is None' "loop: uefi fails at once"

# UEFI: an EFI system partition without a file system; OVMF says it cannot
# load the disk's boot option (needs ovmf and sfdisk)
if [ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] && command -v sfdisk >/dev/null 2>&1; then
  truncate -s 64M "$TMPD/gpt.img"
  printf 'label: gpt\nstart=2048, size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n' | sfdisk -q "$TMPD/gpt.img" ||
    fail "sfdisk"
  rc=0; timeout 400 "$SCIMG" boot-test --output=json --firmware uefi --timeout 300 "$TMPD/gpt.img" \
    > "$TMPD/gpt.json" 2> "$TMPD/gpt.err" || rc=$?
  [ $rc = 1 ] || { cat "$TMPD/gpt.err" "$TMPD/gpt.json"; fail "uefi: exit $rc, expected 1"; }
  jcheck "$TMPD/gpt.json" 'b["virtio-blk/uefi"]["reason"].startswith("the UEFI firmware could not load the boot loader") and b["virtio-blk/uefi"]["accel"] in ("tcg", "kvm")' "uefi: reason"
  echo "uefi without a boot loader: failed in $(jval "$TMPD/gpt.json" 'b["virtio-blk/uefi"]["seconds"]') s"
else
  echo "no OVMF or sfdisk: UEFI boot not tried"
fi

# scimg check --boot: boot results as findings of the gate
rc=0; timeout 120 "$SCIMG" check --container-only --boot=ide,bios,uefi --output=json "$TMPD/login.img" \
  > "$TMPD/check.json" 2> "$TMPD/check.err" || rc=$?
[ $rc = 1 ] || { cat "$TMPD/check.err" "$TMPD/check.json"; fail "check --boot: exit $rc, expected 1 (uefi cannot boot it)"; }
python3 - "$TMPD/check.json" <<'EOF2' || { cat "$TMPD/check.json"; fail "check --boot report"; }
import json, sys
r = json.load(open(sys.argv[1]))
assert r["compliant"] is False
assert {"name": "boot", "result": "fail"} in r["checks"]
f = [x for x in r["findings"] if x["id"] == "boot-failed"]
assert len(f) == 1 and f[0]["severity"] == "error" and f[0]["message"].startswith("hvm-uefi-ide: fail: not bootable with UEFI"), f
assert [b["result"] for b in r["boot-test"]["boots"]] == ["ok", "fail"]
EOF2
rc=0; timeout 120 "$SCIMG" check --container-only --boot "$TMPD/login.img" > "$TMPD/check.out" 2>&1 || rc=$?
[ $rc = 0 ] && grep -q "check boot *pass" "$TMPD/check.out" || { cat "$TMPD/check.out"; fail "check --boot: exit $rc, expected 0"; }
bad "unknown 'foo'" --bus foo "$TMPD/zero.img"
rc=0; "$SCIMG" check --boot=foo "$TMPD/zero.img" > "$TMPD/bad.out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "boot: unknown 'foo'" "$TMPD/bad.out" || { cat "$TMPD/bad.out"; fail "check --boot=foo: exit $rc"; }

# SIGINT: every QEMU stopped at once, no overlay or console file left
[ -z "$(ls -A "$T")" ] || { ls -la "$T"; fail "temporary files left behind"; }
timeout 120 "$SCIMG" boot-test --bus ide,virtio-blk --timeout 100 "$TMPD/loop.img" > "$TMPD/int.out" 2>&1 &
P=$!
n=0
for _ in $(seq 100); do
  n=$(pgrep -f -- "$T/scimg-boot" | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 0.1
done
[ "$n" -ge 2 ] || { kill $P; fail "the two QEMU did not start"; }
sleep 0.5
t0=$(date +%s%N)
kill -INT $P
rc=0; wait $P || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 2 ] || { cat "$TMPD/int.out"; fail "SIGINT: exit $rc, expected 2"; }
grep -q "interrupted" "$TMPD/int.out" || { cat "$TMPD/int.out"; fail "SIGINT: no message"; }
[ $ms -lt 1500 ] || fail "SIGINT took $ms ms"
sleep 0.2
[ -z "$(pgrep -f -- "$T/scimg-boot")" ] || { pgrep -af -- "$T/scimg-boot"; fail "QEMU left running after SIGINT"; }
[ -z "$(ls -A "$T")" ] || { ls -laR "$T"; fail "overlay or console files left after SIGINT"; }
echo "SIGINT: stopped in $ms ms"
echo ok
