#!/bin/bash
# scimg blanket and boot-test --xen without building a blanket (that needs
# Debian's archive and minutes: tests/boot builds and boots it): argument
# errors, an empty cache, a blanket QEMU must not read (a qcow2 naming a
# backing file, a VMDK), the lists check --boot and inject-drivers
# --verify take, and that the dom0 service is in the library.
. "$(dirname "$0")/functions.sh"
requires python3 timeout

# usage errors: exit 2, one message each
for args in "" "frobnicate" "create" "create -O vmdk x" "create -o nosuch=1 x" "create -o size=12Q x" \
            "path extra" "create -o packages=a\$b x" "create -o suite=../x x"; do
  rc=0; timeout 30 "$SCIMG" blanket $args > "$TMPD/u.out" 2> "$TMPD/u.err" || rc=$?
  [ $rc = 2 ] || { cat "$TMPD/u.err"; fail "blanket $args: exit $rc, expected 2"; }
  [ "$(wc -l < "$TMPD/u.err")" -ge 1 ] || fail "blanket $args: no message"
done
grep -q "not a comma-separated list" "$TMPD/u.err" || true
"$SCIMG" blanket --help | grep -q "blanket create" || fail "blanket --help"
"$SCIMG" --help | grep -q "^  blanket" || fail "scimg --help does not list blanket"

# an empty cache: path --no-build says there is none, boot-test --xen
# cannot test (exit 2) and says what to do; nothing is created at OUT
mkdir -p "$TMPD/cache"
rc=0; "$SCIMG" blanket path --no-build --cache "$TMPD/cache" > "$TMPD/p.out" 2> "$TMPD/p.err" || rc=$?
[ $rc = 2 ] || fail "path --no-build on an empty cache: exit $rc"
grep -q "scimg blanket create" "$TMPD/p.err" || { cat "$TMPD/p.err"; fail "path --no-build: no hint"; }
[ ! -s "$TMPD/p.out" ] || fail "path --no-build printed a path"
python3 -c "
import sys
d = bytearray(1 << 20); d[0:4] = b'\xeb\x63\x90\x00'; d[510:512] = b'\x55\xaa'
open(sys.argv[1], 'wb').write(d)" "$TMPD/g.img"
rc=0; SCIMG_BLANKET_CACHE=$TMPD/cache timeout 60 "$SCIMG" boot-test --xen pygrub "$TMPD/g.img" \
  > "$TMPD/x.out" 2> "$TMPD/x.err" || rc=$?
[ $rc = 2 ] || { cat "$TMPD/x.out" "$TMPD/x.err"; fail "boot-test --xen without a blanket: exit $rc, expected 2"; }
grep -q "Xen boots need the blanket" "$TMPD/x.err" || { cat "$TMPD/x.err"; fail "--xen: no reason"; }
grep -q "scimg blanket create" "$TMPD/x.err" || { cat "$TMPD/x.err"; fail "--xen: no hint"; }

# a blanket QEMU would follow names in, or cannot read: refused before
# QEMU starts, naming the reason
"$SCIMG" create -f qcow2 "$TMPD/base.qcow2" 64M >/dev/null || fail "create base"
"$SCIMG" create -f qcow2 -b base.qcow2 -F qcow2 "$TMPD/ovl.qcow2" >/dev/null || fail "create overlay"
"$SCIMG" convert -O vmdk "$TMPD/g.img" "$TMPD/bl.vmdk" || fail "convert vmdk"
for bl in "$TMPD/ovl.qcow2" "$TMPD/bl.vmdk"; do
  rc=0; timeout 60 "$SCIMG" boot-test --xen pvgrub2 --blanket "$bl" "$TMPD/g.img" \
    > "$TMPD/b.out" 2> "$TMPD/b.err" || rc=$?
  [ $rc = 2 ] || { cat "$TMPD/b.err"; fail "--blanket $(basename "$bl"): exit $rc"; }
  grep -q "must be raw or a qcow2 that names no other file" "$TMPD/b.err" ||
    { cat "$TMPD/b.err"; fail "--blanket $(basename "$bl"): no reason"; }
done
rc=0; "$SCIMG" boot-test --blanket "$TMPD/nonexistent.qcow2" --xen all "$TMPD/g.img" > /dev/null 2> "$TMPD/n.err" || rc=$?
[ $rc = 2 ] || fail "missing blanket: exit $rc"

# the loader lists
rc=0; "$SCIMG" boot-test --xen grub4dos "$TMPD/g.img" 2> "$TMPD/l.err" || rc=$?
[ $rc = 2 ] && grep -q "unknown 'grub4dos'" "$TMPD/l.err" || { cat "$TMPD/l.err"; fail "--xen: bad loader"; }
rc=0; "$SCIMG" check --boot=virtio-blk,pvgrub2,lilo "$TMPD/g.img" 2> "$TMPD/c.err" > /dev/null || rc=$?
[ $rc = 2 ] && grep -q "pygrub, pvgrub2, direct, xen" "$TMPD/c.err" || { cat "$TMPD/c.err"; fail "check --boot: Xen loaders not listed"; }
for o in "--xen=all" "--blanket=F"; do
  "$SCIMG" boot-test --help | grep -q -- "${o%%=*}" || fail "boot-test --help lacks ${o%%=*}"
done

# the dom0 service compiled into the library is the one in the tree
cmp -s <(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$top_srcdir/lib/boot/blanket-dom0.sh") \
  <(sed -e '1d' -e '$d' "$top_builddir/lib/boot/blanket-dom0.h") || fail "blanket-dom0.h is stale"
sh -n "$top_srcdir/lib/boot/blanket-dom0.sh" || fail "blanket-dom0.sh: syntax"
exit 0
