#!/bin/bash
# scimg boot-test --xen=direct without a Xen boot: the option and its
# names; an image with no kernel to boot directly fails that boot at once,
# with the reason and without QEMU; on the cached Debian fixture (when there,
# with a blanket that cannot boot, so no Xen runs) the kernel, initramfs and
# command line handed to the blanket are the grub.cfg default entry's, with
# console=hvc0 in place of the image's console= arguments.  No test boots
# it for real yet: measured by hand, the domU reaches its root filesystem
# and systemd but times out (docs/sci-format.md, last section).
. "$(dirname "$0")/functions.sh"
requires python3 timeout

T=$TMPD/tmp
mkdir -p "$T"
export TMPDIR=$T

jcheck() {
  python3 - "$1" "$2" <<'EOF' || { cat "$1"; fail "$3"; }
import json, sys
r = json.load(open(sys.argv[1]))
b = [x for x in r["boots"] if x["method"] == "xen-pv-direct"]
assert eval(sys.argv[2])
EOF
}

# ---- names --------------------------------------------------------------
truncate -s 64M "$TMPD/blank.img"
truncate -s 1M "$TMPD/fakebl.img"
"$SCIMG" boot-test --help | grep -q "direct (opt-in, not in CI's tests" || fail "--help does not list direct (and say how far it is proven)"
rc=0; "$SCIMG" boot-test --xen grub4dos "$TMPD/blank.img" 2> "$TMPD/l.err" || rc=$?
[ $rc = 2 ] && grep -q "expected pygrub, pvgrub2, direct, sci, xen, all" "$TMPD/l.err" ||
  { cat "$TMPD/l.err"; fail "--xen: direct not among the loaders"; }
rc=0; "$SCIMG" check --boot=virtio-blk,lilo "$TMPD/blank.img" 2> "$TMPD/c.err" > /dev/null || rc=$?
[ $rc = 2 ] && grep -q "pygrub, pvgrub2, direct, sci, xen" "$TMPD/c.err" ||
  { cat "$TMPD/c.err"; fail "check --boot: direct not listed"; }
# a blanket that is not there: could not test (before any appliance)
rc=0; "$SCIMG" boot-test --xen=direct --blanket "$TMPD/nonexistent.img" "$TMPD/blank.img" \
  > /dev/null 2> "$TMPD/n.err" || rc=$?
[ $rc = 2 ] || { cat "$TMPD/n.err"; fail "--xen=direct, missing blanket: exit $rc"; }

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
  skip "qemu-system-x86_64 not installed (option tests passed)"

# ---- no kernel: fails at once, with the reason, QEMU never runs --------
# (once per blanket firmware: two boots, both failed before QEMU)
s=$(date +%s)
rc=0; timeout 600 "$SCIMG" boot-test --xen=direct --blanket-firmware=bios,uefi \
  --blanket "$TMPD/fakebl.img" --output=json \
  "$TMPD/blank.img" > "$TMPD/blank.json" 2> "$TMPD/blank.err" || rc=$?
if [ $rc = 2 ] && grep -q "libguestfs" "$TMPD/blank.err"; then
  cat "$TMPD/blank.err"; skip "no working libguestfs appliance (option tests passed)"
fi
[ $rc = 1 ] || { cat "$TMPD/blank.err" "$TMPD/blank.json"; fail "no kernel: exit $rc, expected 1"; }
jcheck "$TMPD/blank.json" 'len(r["boots"]) == 2 and len(b) == 2 and r["failed"] == 2 and r["accel"] == "none"' \
  "no kernel: one failed xen-pv-direct boot per blanket firmware"
jcheck "$TMPD/blank.json" 'sorted(x["blanket-firmware"] for x in b) == ["bios", "uefi"]' \
  "no kernel: the blanket firmware of each boot"
jcheck "$TMPD/blank.json" 'b[0]["result"] == "fail" and b[0]["accel"] is None and b[0]["seconds"] == 0' \
  "no kernel: failed at once, without QEMU"
jcheck "$TMPD/blank.json" '"no kernel to boot directly: no operating system found" in b[0]["reason"]' \
  "no kernel: reason"
jcheck "$TMPD/blank.json" 'b[0]["platform"] == "xen" and b[0]["bus"] == "xen-pv" and b[0]["firmware"] == "direct"' \
  "no kernel: names"
echo "no kernel: failed at once in $(( $(date +%s) - s ))s (libguestfs inspection)"
[ -z "$(ls -A "$T" | grep -v "^\.guestfs-")" ] || { ls -la "$T"; fail "temporary files left behind"; }

# ---- the Debian fixture (only a cached one: building it needs root) -----
# (the cache key as build-guest.sh makes it: without its layouts section)
key=$(sed '/^# >>> layouts/,/^# <<< layouts/d' "$top_srcdir/tests/fixtures/build-guest.sh" |
  sha256sum | cut -c1-12)
guest="${SCIMG_GUEST_CACHE:-/var/tmp/scimg-guest-cache}/guest-vmware-$key.img"
[ -r "$guest" ] || { echo "ok (fixture part skipped: no cached vmware guest)"; exit 0; }
before=$(sha256sum < "$guest")
# a "blanket" whose boot sector prints SeaBIOS's failure on COM1 and loops
# (as test-boot-test's; SeaBIOS itself prints nothing on the serial port)
python3 - "$TMPD/nobl.img" <<'EOF'
import sys
code = bytes.fromhex("31c08ed8be147cbaf803ac84c07403eeebf8ebfe")
msg = b"No bootable device.\r\n\0"
d = bytearray(1 << 20)
d[0:len(code)] = code
d[len(code):len(code) + len(msg)] = msg
d[510:512] = b"\x55\xaa"
open(sys.argv[1], "wb").write(d)
EOF
rc=0; timeout 900 "$SCIMG" boot-test --xen=direct --blanket "$TMPD/nobl.img" --timeout 60 \
  --output=json "$guest" > "$TMPD/g.json" 2> "$TMPD/g.err" || rc=$?
cat "$TMPD/g.err"
# the fake blanket has nothing to boot: the boot itself fails, quickly
[ $rc = 1 ] || { cat "$TMPD/g.json"; fail "fixture: exit $rc, expected 1 (the blanket cannot boot)"; }
jcheck "$TMPD/g.json" 'b[0]["accel"] == "tcg" and b[0]["reason"].startswith("the blanket did not boot")' \
  "fixture: QEMU ran the (fake) blanket"
n=$(grep -c -- "--xen=direct: kernel " "$TMPD/g.err")
[ "$n" = 1 ] || fail "fixture: no line naming the direct boot's files"
l=$(grep -- "--xen=direct: kernel " "$TMPD/g.err")
case "$l" in *"kernel /boot/vmlinuz-"*"-cloud-amd64 (lz4), initramfs /boot/initrd.img-"*) ;;
  *) fail "fixture: not the default entry's LZ4 kernel and initrd: $l" ;; esac
args=${l#*command line: }
case " $args " in *" root=/dev/sda1 "*" norandmaps "*) ;; *) fail "fixture: the entry's arguments are not kept: $args" ;; esac
case "$args" in *" console=hvc0") ;; *) fail "fixture: no console=hvc0 at the end: $args" ;; esac
case "$args" in *console=tty*) fail "fixture: the image's console= was kept: $args" ;; esac
[ "$(sha256sum < "$guest")" = "$before" ] || fail "fixture: boot-test changed its input"
[ -z "$(ls -A "$T" | grep -v "^\.guestfs-")" ] || { ls -la "$T"; fail "temporary files left behind"; }
exit 0
