#!/bin/sh
# Provider profile "gce" and the gce-tar format: a gzip'd GNU (oldgnu) tar
# holding exactly one sparse member "disk.raw" whose size is a whole GiB, as
# GCE image import demands; GNU tar and Python's tarfile extract it with the
# source's content and the holes are not stored; scimg reads it back.
. "$(dirname "$0")/functions.sh"
requires python3 tar gzip
requires_qemu_img
"$SCIMG" plugins | grep -q '^ *gce  *-> gce-tar' || fail "gce profile not loaded"
cd "$TMPD" || fail cd
make_mixed_raw src.raw 20
# many data islands: more than the 4 map entries of the header
python3 - src.raw <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    for i in range(60):
        f.seek(8 * 1048576 + i * 131072)
        f.write(os.urandom(3000))
PY
"$SCIMG" convert --provider gce src.raw image.tar.gz || fail "convert --provider gce"
ls -A | grep -q scimg && fail "temporary file left behind"
gzip -t image.tar.gz || fail "gzip -t"
tar tvzf image.tar.gz > list.txt || fail "tar tvzf"
[ "$(wc -l < list.txt)" -eq 1 ] || fail "members: $(cat list.txt)"
awk '{print $3, $6}' list.txt | grep -qx '1073741824 disk.raw' || fail "listing: $(cat list.txt)"
python3 - image.tar.gz <<'PY' || fail "GNU sparse header"
import gzip, sys, tarfile
h = gzip.open(sys.argv[1]).read(512)
assert h[:9] == b"disk.raw\0", h[:9]
assert h[156:157] == b"S", "typeflag %r, expected S (old GNU sparse)" % h[156:157]
assert h[257:265] == b"ustar  \0", h[257:265]
with tarfile.open(sys.argv[1], "r:gz") as t:
    m = t.getmembers()
    assert [x.name for x in m] == ["disk.raw"], m
    assert m[0].issparse() and m[0].size == 1 << 30, m[0]
PY
# holes are not stored: the compressed file is tiny next to 1 GiB
[ "$(stat -c %s image.tar.gz)" -lt 2000000 ] || fail "compressed size $(stat -c %s image.tar.gz)"
mkdir x && tar -xSzf image.tar.gz -C x || fail "GNU tar extract"
[ "$(stat -c %s x/disk.raw)" -eq 1073741824 ] || fail "extracted size"
cmp -n $((20 * 1048576)) src.raw x/disk.raw || fail "extracted content"
"$QEMU_IMG" compare -f raw -F raw src.raw x/disk.raw >/dev/null || fail "qemu-img compare (padding must be zeros)"
[ "$(du -k x/disk.raw | cut -f1)" -lt 102400 ] || fail "extracted file is not sparse"
python3 -c "
import tarfile; t = tarfile.open('image.tar.gz'); t.extractall('py')" || fail "python extract"
cmp x/disk.raw py/disk.raw || fail "python's extraction differs"
# scimg reads it back
"$SCIMG" info --output=json image.tar.gz > info.json || fail "info"
grep -q '"format": "gce-tar"' info.json && grep -q '"sparse": true' info.json || fail "info: $(cat info.json)"
"$SCIMG" compare x/disk.raw image.tar.gz >/dev/null || fail "scimg compare"
"$SCIMG" convert -O raw image.tar.gz back.raw && cmp back.raw x/disk.raw || fail "gce-tar -> raw"
"$SCIMG" check --container-only --provider gce image.tar.gz >/dev/null || fail "check --provider gce"
"$SCIMG" check --container-only --provider gce --output=json src.raw > c.json; [ $? -eq 1 ] || fail "raw exit"
grep -q '"provider-size-alignment"' c.json && grep -q '"provider-format"' c.json || fail "raw findings: $(cat c.json)"
# a tar.gz made by GNU tar the way Google documents is read too
cp x/disk.raw disk.raw
tar --format=oldgnu -Sczf gnu.tar.gz disk.raw || fail "GNU tar"
"$SCIMG" compare disk.raw gnu.tar.gz >/dev/null || fail "reading GNU tar's tar.gz"
# a member not named disk.raw is refused
mv disk.raw other.raw && tar --format=oldgnu -Sczf other.tar.gz other.raw
"$SCIMG" info -f gce-tar other.tar.gz 2>err && fail "other.raw accepted"
grep -q "first tar member is 'other.raw', expected 'disk.raw'" err || fail "name message: $(cat err)"
echo ok
