#!/bin/sh
# Supercloud image package, without a guest: convert -O sci of a tiny
# guest-less disk, info, convert back, check --container-only (layout,
# descriptor, digests, signature), tampering (flipped disk byte, edited
# descriptor, wrong signature) named by check, unsafe tar members refused.
. "$(dirname "$0")/functions.sh"
requires python3 openssl tar

cd "$TMPD" || fail "cd"
make_mixed_raw d.raw 8

# ---- build, read back -------------------------------------------------------
"$SCIMG" convert -O sci -o guest=skip,name=tiny d.raw p.sci || fail "convert -O sci"
if "$SCIMG" --help | grep -q ' qcow2(rw)'; then
  tar tf p.sci | grep -qx disk0.qcow2 || fail "the disk member is not disk0.qcow2"
  tar xOf p.sci disk0.qcow2 | head -c 8 | od -An -tx1 | grep -q '51 46 49 fb 00 00 00 03' ||
    fail "disk0.qcow2 is not qcow2 version 3"
  # a raw member is allowed too, and used in place
  "$SCIMG" convert -O sci -o guest=skip,disk-format=raw d.raw r.sci || fail "disk-format=raw"
  tar xOf r.sci disk0.raw | cmp -s - d.raw || fail "raw member is not the disk"
  "$SCIMG" check --container-only r.sci >/dev/null || fail "check of a raw-member SCI"
fi
[ -f p.sci ] || fail "no p.sci"
ls -a | grep -q 'scimg' && fail "temporary files left behind: $(ls -a)"
tar tf p.sci > members || fail "tar cannot list p.sci"
printf 'supercloud.xml\ndisk0.%s\nxl.cfg\n' "$(sed -n 2p members | sed 's/disk0\.//')" | cmp -s - members ||
  fail "member order: $(cat members)"
DISK=$(sed -n 2p members)
"$SCIMG" info p.sci > info.txt || fail "info p.sci"
grep -q 'file format: sci' info.txt || fail "info does not say sci"
grep -q 'name: tiny' info.txt || fail "info does not show the descriptor name"
"$SCIMG" info --output=json p.sci | grep -q '"content-sha256": "'"$(sha d.raw)"'"' ||
  fail "descriptor content-sha256 is not the disk's"
"$SCIMG" convert p.sci -O raw back.raw || fail "convert p.sci -O raw"
cmp -s d.raw back.raw || fail "convert IN.sci -O raw differs from the original"
"$SCIMG" compare d.raw p.sci >/dev/null || fail "compare d.raw p.sci"
if command -v xmllint >/dev/null 2>&1; then
  tar xOf p.sci supercloud.xml > s.xml
  xmllint --noout --nonet --schema "$top_srcdir/docs/sci-1.xsd" s.xml 2>/dev/null ||
    fail "xmllint: descriptor not valid against docs/sci-1.xsd"
fi
tar xOf p.sci "$DISK" | cmp -s - d.raw || [ "$DISK" != disk0.raw ] || fail "raw member is not the disk"

"$SCIMG" check --container-only p.sci > out.txt; rc=$?
[ $rc -eq 0 ] || { cat out.txt; fail "check of a fresh package: exit $rc"; }
"$SCIMG" check --container-only --output=json p.sci > out.json || fail "check json"
python3 - out.json <<'EOF' || fail "check json content"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["check-version"] == 1 and r["compliant"] is True and r["format"] == "sci", r
names = {c["name"]: c["result"] for c in r["checks"]}
assert names["layout"] == "pass" and names["digests"] == "pass" and names["guest"] == "skipped", names
assert r["descriptor"]["disks"][0]["virtual-size"] == 8 << 20
EOF

# without --container-only: a disk with no partition table or filesystem is
# found to hold no OS without starting an appliance; any format is checked
"$SCIMG" check p.sci > out.txt 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "^error: guest-no-os: " out.txt || { cat out.txt; fail "guest-less SCI: exit $rc"; }
"$SCIMG" check -f raw --output=json d.raw > out.json 2>&1; rc=$?
[ $rc -eq 1 ] || { cat out.json; fail "check d.raw: exit $rc"; }
python3 - out.json "$(sha d.raw)" <<'EOF' || fail "check json of a raw disk"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == "raw" and r["content-sha256"] == sys.argv[2], r
assert [c for c in r["checks"] if c["name"] == "container"][0]["result"] == "pass"
assert [f["id"] for f in r["findings"]] == ["guest-no-os"], r["findings"]
EOF
"$SCIMG" convert -O qcow2 d.raw bad.qcow2 || fail "make a qcow2"
# L1 table offset (header bytes 40..47) far past the end of the file
python3 -c "f = open('bad.qcow2', 'r+b'); f.seek(40); f.write((1 << 50).to_bytes(8, 'big'))"
"$SCIMG" check --container-only bad.qcow2 > out.txt 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "^error: container-invalid: " out.txt || { cat out.txt; fail "broken qcow2: exit $rc"; }
"$SCIMG" check nonexistent.img >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing file must exit 2"

# ---- signatures -------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 30 \
  -subj /CN=scimg-test-signer >/dev/null 2>&1 || fail "openssl req"
openssl req -x509 -newkey rsa:2048 -nodes -keyout k2.pem -out c2.pem -days 30 \
  -subj /CN=someone-else >/dev/null 2>&1 || fail "openssl req 2"
"$SCIMG" convert -O sci -o guest=skip,sign-key=k.pem,sign-cert=c.pem d.raw s.sci || fail "signed convert"
tar tf s.sci | tail -1 | grep -qx supercloud.sig || fail "no supercloud.sig last"
"$SCIMG" check --container-only --trust c.pem s.sci >/dev/null || fail "signed image not trusted"
tar xf s.sci supercloud.xml supercloud.sig
openssl cms -verify -binary -inform DER -in supercloud.sig -content supercloud.xml \
  -CAfile c.pem -purpose any >/dev/null 2>&1 || fail "openssl cms does not verify our signature"

expect_finding() { # FILE ID [check args...]
  f=$1 id=$2; shift 2
  "$SCIMG" check --container-only "$@" "$f" > out.txt 2>&1; rc=$?
  [ $rc -eq 1 ] || { cat out.txt; fail "$f: expected exit 1 (finding $id), got $rc"; }
  grep -q "^error: $id: " out.txt || { cat out.txt; fail "$f: finding $id not named"; }
}
expect_finding s.sci signature-untrusted --trust c2.pem
expect_finding p.sci signature-missing --trust c.pem
"$SCIMG" convert -O sci -o guest=skip,sign-key=k2.pem,sign-cert=c.pem d.raw x.sci 2>/dev/null &&
  fail "a key that does not match the certificate was accepted"

# member_edit FILE MEMBER PYTHON-EXPR-ON-bytearray-b: edit a member in place
member_edit() {
  python3 - "$@" <<'EOF' || fail "member_edit $*"
import sys, tarfile
path, name, expr = sys.argv[1:4]
with tarfile.open(path) as t:
    m = t.getmember(name)
    off, size = m.offset_data, m.size
with open(path, "r+b") as f:
    f.seek(off); b = bytearray(f.read(size))
    exec(expr)
    assert len(b) == size
    f.seek(off); f.write(b)
EOF
}

# flipped byte in the disk member (in the data the guest sees)
cp p.sci flip.sci
member_edit flip.sci "$DISK" 'i = bytes(b).index(b"scimg test pattern line") + 3; b[i] ^= 0x01' 
expect_finding flip.sci disk-member-digest
grep -q "^error: disk-content-digest: " out.txt || fail "flipped byte: content digest not named"

# edited descriptor (same length): a signed image says the signature broke
cp s.sci edit.sci
member_edit edit.sci supercloud.xml 'b[:] = bytes(b).replace(b"<name>s</name>", b"<name>t</name>")'
tar xOf edit.sci supercloud.xml | grep -q '<name>t</name>' || fail "descriptor edit did not happen"
expect_finding edit.sci signature-invalid --trust c.pem
expect_finding edit.sci signature-invalid
# edited descriptor that breaks the schema, and one that breaks XML
cp p.sci schema.sci
member_edit schema.sci supercloud.xml 'b[:] = bytes(b).replace(b"schema-version=\"1\"", b"schema-version=\"7\"")'
expect_finding schema.sci descriptor-schema
cp p.sci xml.sci
member_edit xml.sci supercloud.xml 'b[:] = bytes(b).replace(b"</name>", b"</nam >")'
expect_finding xml.sci descriptor-xml
# an edited digest in the descriptor
cp p.sci dig.sci
member_edit dig.sci supercloud.xml 'i = bytes(b).index(b"content-sha256=\"") + 16; b[i] = ord("0") if b[i] != ord("0") else ord("1")'
expect_finding dig.sci disk-content-digest
# xl.cfg edited
cp p.sci xl.sci
member_edit xl.sci xl.cfg 'b[:] = bytes(b).replace(b"memory = 1024", b"memory = 9999")'
expect_finding xl.sci file-digest
# descriptor with a DTD (entity) is refused, never expanded
cp p.sci dtd.sci
member_edit dtd.sci supercloud.xml 'n = len(b); s = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"/etc/passwd\">]><x>&e;</x>"; b[:] = s + b" " * (n - len(s))'
expect_finding dtd.sci descriptor-xml
"$SCIMG" info dtd.sci >/dev/null 2>&1; [ $? -eq 2 ] || fail "info of an SCI with a DTD must fail"

# ---- unsafe members are refused ----------------------------------------------
python3 - <<'EOF' || fail "crafting tars"
import io, tarfile
xml = open("s.xml", "rb").read() if False else b"<x/>"
def add(t, name, data=b"", **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items(): setattr(ti, k, v)
    ti.size = len(data) if ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    t.addfile(ti, io.BytesIO(data) if ti.size else None)
def make(path, *members):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        add(t, "supercloud.xml", xml)
        for m in members: m(t)
make("dotdot.sci", lambda t: add(t, "../evil", b"x" * 10))
make("dotdot2.sci", lambda t: add(t, "a/../../evil", b"x" * 10))
make("abs.sci", lambda t: add(t, "/etc/evil", b"x" * 10))
make("symlink.sci", lambda t: add(t, "disk0.qcow2", type=tarfile.SYMTYPE, linkname="/etc/passwd"))
make("hardlink.sci", lambda t: add(t, "disk0.qcow2", type=tarfile.LNKTYPE, linkname="supercloud.xml"))
make("device.sci", lambda t: add(t, "disk0.raw", type=tarfile.BLKTYPE, devmajor=8, devminor=0))
make("fifo.sci", lambda t: add(t, "disk0.raw", type=tarfile.FIFOTYPE))
make("dir.sci", lambda t: add(t, "disk0.raw", type=tarfile.DIRTYPE))
EOF
for f in dotdot dotdot2 abs symlink hardlink device fifo dir; do
  "$SCIMG" info "$f.sci" > out.txt 2>&1; rc=$?
  [ $rc -eq 2 ] || { cat out.txt; fail "$f.sci: info must refuse (exit 2), got $rc"; }
  grep -q "refusing tar member" out.txt || { cat out.txt; fail "$f.sci: no 'refusing' message"; }
  "$SCIMG" convert -f sci -O raw "$f.sci" o.raw >/dev/null 2>&1 && fail "$f.sci: convert accepted it"
  [ -e o.raw ] && fail "$f.sci: output left behind"
  expect_finding "$f.sci" sci-tar
done
[ -e evil ] || [ -e ../evil ] && fail "something was extracted"

# wrong order / extra member: layout finding
python3 - <<'EOF' || fail "crafting order tars"
import tarfile
with tarfile.open("p.sci") as src, tarfile.open("order.sci", "w", format=tarfile.USTAR_FORMAT) as dst:
    ms = src.getmembers()
    for m in [ms[0], ms[2], ms[1]]:
        dst.addfile(m, src.extractfile(m))
EOF
expect_finding order.sci sci-layout
"$SCIMG" info order.sci >/dev/null 2>&1 && fail "info accepted members out of order"

# ---- atomic output: a failing build leaves nothing ------------------------------
"$SCIMG" convert -O sci -o guest=skip,sign-key=nokey.pem,sign-cert=c.pem d.raw fail.sci 2>/dev/null &&
  fail "convert with a missing key succeeded"
[ -e fail.sci ] && fail "failed convert left fail.sci"
ls -a | grep -q '\.scimg' && fail "failed convert left temporary files: $(ls -a | grep scimg)"
# SIGTERM while packaging: nothing is left (if it finished first, the
# package must be complete)
yes "scimg sci sigterm line" | head -c 200M > big.raw
"$SCIMG" convert -O sci -o guest=skip big.raw term.sci 2>/dev/null & pid=$!
sleep 0.5; kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
if [ $rc -eq 0 ]; then
  "$SCIMG" check --container-only term.sci >/dev/null || fail "finished package after SIGTERM is broken"
else
  [ -e term.sci ] && fail "SIGTERM left term.sci"
  ls -a | grep -q '\.scimg' && fail "SIGTERM left temporary files: $(ls -a | grep scimg)"
fi
rm -f big.raw

# -o verify: a bad list or verify with guest=skip is refused at once,
# before any copy, and nothing is written
for o in "guest=fix,verify=lilo" "guest=fix,verify=+" "guest=skip,verify=nvme" "guest=fix,verify=" \
         "guest=fix,verify-expect=x" "guest=fix,verify=nvme,verify-expect=a(b"; do
  rc=0; "$SCIMG" convert -O sci -o "$o" d.raw v.sci 2> v.err || rc=$?
  [ $rc = 2 ] || { cat v.err; fail "-o $o: exit $rc, expected 2"; }
  grep -q "verify" v.err || { cat v.err; fail "-o $o: the message does not name verify"; }
  [ ! -e v.sci ] && ! ls -a | grep -q '^\.v\.sci' || fail "-o $o left files"
done
echo ok
