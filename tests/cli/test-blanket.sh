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
[ $rc = 2 ] && grep -q "pygrub, pvgrub2, direct, sci, xen" "$TMPD/c.err" || { cat "$TMPD/c.err"; fail "check --boot: Xen loaders not listed"; }
for o in "--xen=all" "--blanket=F"; do
  "$SCIMG" boot-test --help | grep -q -- "${o%%=*}" || fail "boot-test --help lacks ${o%%=*}"
done

# --xen=sci on an image that is not an SCI package: that boot fails at
# once with the reason, no blanket or QEMU needed (exit 1: a boot failed)
rc=0; SCIMG_BLANKET_CACHE=$TMPD/cache timeout 60 "$SCIMG" boot-test --xen=sci --output=json \
  "$TMPD/g.img" > "$TMPD/s.json" 2> "$TMPD/s.err" || rc=$?
[ $rc = 1 ] || { cat "$TMPD/s.err" "$TMPD/s.json"; fail "--xen=sci on a raw image: exit $rc, expected 1"; }
python3 - "$TMPD/s.json" <<'PY' || fail "--xen=sci on a raw image: report"
import json, sys
b = json.load(open(sys.argv[1]))["boots"]
assert len(b) == 1 and b[0]["method"] == "xen-pv-sci" and b[0]["result"] == "fail", b
assert "Supercloud image package" in b[0]["reason"] and b[0]["accel"] is None, b
PY

# the service's reader of an attached SCI package (the python inside
# sci_read, run here on packages made to order): what it prints is
# eval'ed by dom0's shell, so only SCI_KEY=[A-Za-z0-9._-]* lines; the
# xl.cfg keys that would boot something else are refused
sed -n "/<<'PY' 2>\/dev\/null\$/,/^PY\$/p" "$top_srcdir/lib/boot/blanket-dom0.sh" | sed '1d;$d' > "$TMPD/sci_read.py"
[ "$(wc -l < "$TMPD/sci_read.py")" -gt 40 ] || fail "sci_read's python not found in blanket-dom0.sh"
python3 - "$TMPD" <<'PY' || fail "the blanket's SCI package reader"
import io, os, re, subprocess, sys, tarfile
d = sys.argv[1]
def pkg(name, cfg, disk=b"\x00" * 4096, first="supercloud.xml", dname="disk0.raw", extra=None):
    p = os.path.join(d, name)
    with tarfile.open(p, "w", format=tarfile.USTAR_FORMAT) as t:
        for n, data in ((first, b"<x/>"), (dname, disk), ("xl.cfg", cfg.encode())):
            i = tarfile.TarInfo(n); i.size = len(data); i.mode = 0o644
            t.addfile(i, io.BytesIO(data))
        if extra:
            t.addfile(extra)
    return p
def run(p):
    out = subprocess.run([sys.executable, os.path.join(d, "sci_read.py"), p],
                         capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        assert re.fullmatch(r"SCI_[A-Z]+=[A-Za-z0-9._-]*", line), (p, line)
    return dict(l[4:].split("=", 1) for l in out.splitlines())
good = 'name = "web-1"\ntype = "pv"\nbootloader = "pygrub"\nmemory = 1024\nvcpus = 2\n' \
       'disk = [ "format=raw, vdev=xvda, access=rw, target=disk0.raw" ]\nvif = [ "bridge=xenbr0" ]\n'
r = run(pkg("good.sci", good))
assert r.get("LOADER") == "pygrub" and r["MEM"] == "1024" and r["VCPUS"] == "2" and r["FMT"] == "raw", r
assert r["MEMBER"] == "disk0.raw" and r["SIZE"] == "4096" and int(r["OFF"]) % 512 == 0, r
with open(os.path.join(d, "good.sci"), "rb") as f:      # the offset is the member's bytes
    f.seek(int(r["OFF"])); assert f.read(4096) == b"\x00" * 4096
r = run(pkg("pv2.sci", good.replace('bootloader = "pygrub"',
        'kernel = "/usr/lib/grub-xen/grub-x86_64-xen.bin"').replace("raw", "qcow2"), dname="disk0.qcow2"))
assert r.get("LOADER") == "pvgrub2" and r["FMT"] == "qcow2", r
r = run(pkg("name.sci", good.replace('"web-1"', '"$(reboot);`id` x"')))
assert r.get("LOADER") == "pygrub" and "$" not in r["NAME"], r
for bad, why in ((good.replace('bootloader = "pygrub"', 'kernel = "/boot/vmlinuz"'), "kernel"),
                 (good.replace('bootloader = "pygrub"', 'bootloader = "/bin/sh"'), "bootloader"),
                 (good + 'ramdisk = "/etc/shadow"\n', "ramdisk"),
                 (good + 'extra = "init=/bin/sh"\n', "extra"),
                 (good.replace('type = "pv"', 'type = "hvm"'), "type"),
                 (good.replace("memory = 1024", "memory = 99999999999"), "memory"),
                 (good.replace("target=disk0.raw", "target=/dev/xvda"), "disk"),
                 (good.replace('bootloader = "pygrub"\n', ""), "loader")):
    r = run(pkg("bad.sci", bad))
    assert "ERR" in r and why in r["ERR"] and "LOADER" not in r, (why, r)
link = tarfile.TarInfo("extra"); link.type = tarfile.SYMTYPE; link.linkname = "/etc/passwd"
assert "ERR" in run(pkg("link.sci", good, extra=link))
assert run(pkg("other.tar", good, first="README")) == {}           # a tar, not an SCI
with open(os.path.join(d, "mbr.img"), "wb") as f:                   # a guest disk
    f.write(b"\xeb\x63" + b"\x00" * 508 + b"\x55\xaa" + b"\x00" * 4096)
assert run(os.path.join(d, "mbr.img")) == {}
PY

# the dom0 service compiled into the library is the one in the tree
cmp -s <(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$top_srcdir/lib/boot/blanket-dom0.sh") \
  <(sed -e '1d' -e '$d' "$top_builddir/lib/boot/blanket-dom0.h") || fail "blanket-dom0.h is stale"
sh -n "$top_srcdir/lib/boot/blanket-dom0.sh" || fail "blanket-dom0.sh: syntax"
exit 0
