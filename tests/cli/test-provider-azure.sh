#!/bin/sh
# Provider profile "azure" (plugins/azure): a fixed VHD whose virtual size is
# a whole MiB and at most 1023 GiB, as Azure's "Create and upload a generic
# Linux VHD" demands; qemu-img and vhdiinfo read it with the source's
# content; scimg check --provider azure names what other images lack.
. "$(dirname "$0")/functions.sh"
requires python3
requires_qemu_img
"$SCIMG" plugins | grep -q '^ *azure  *-> vhd' || fail "azure profile not loaded"

cd "$TMPD" || fail cd
make_mixed_raw src.raw 9
truncate -s 9437000 src.raw     # not a whole MiB (nor a whole sector): 9 MiB
"$SCIMG" convert --provider azure src.raw out.vhd || fail "convert --provider azure"
ls -A | grep -q scimg && fail "temporary file left behind"
# a whole MiB: 9437000 -> 9 MiB, and the 512-byte footer
[ "$(stat -c %s out.vhd)" -eq $((9 * 1048576 + 512)) ] || fail "file size $(stat -c %s out.vhd)"
python3 - out.vhd <<'PY' || fail "VHD footer"
import struct, sys
d = open(sys.argv[1], "rb").read()
f = d[-512:]
assert f[:8] == b"conectix", f[:8]
orig, cur = struct.unpack(">QQ", f[40:56])
dtype = struct.unpack(">I", f[60:64])[0]
assert dtype == 2, "disk type %d, expected 2 (fixed)" % dtype
assert cur == 9 * 1048576 and cur % 1048576 == 0, cur
# checksum: one's complement of the byte sum without the checksum field
s = sum(f[:64]) + sum(f[68:])
assert struct.unpack(">I", f[64:68])[0] == (~s) & 0xffffffff, "footer checksum"
PY
"$QEMU_IMG" info -f vpc --output=json out.vhd > qi.json || fail "qemu-img info"
python3 -c "
import json,sys; d=json.load(open('qi.json'))
assert d['virtual-size'] == 9*1048576, d" || fail "qemu-img virtual size: $(cat qi.json)"
"$QEMU_IMG" compare -f raw -F vpc src.raw out.vhd >/dev/null || fail "qemu-img compare (the padding must read as zeros)"
"$SCIMG" compare src.raw out.vhd >/dev/null 2>&1
cmp -n 9437000 src.raw out.vhd || fail "guest data differs"
if command -v vhdiinfo >/dev/null 2>&1; then
  vhdiinfo out.vhd > vi.txt || fail "vhdiinfo"
  grep -q 'Disk type.*: Fixed' vi.txt || fail "vhdiinfo disk type: $(cat vi.txt)"
  grep -q 'Media size.*(9437184 bytes)' vi.txt || fail "vhdiinfo size: $(cat vi.txt)"
fi

# the profile as the library shows it
"$SCIMG" plugins --output=json > pl.json || fail "plugins json"
python3 - pl.json <<'PY' || fail "azure profile in scimg plugins"
import json, sys
d = json.load(open(sys.argv[1]))
ps = [p for pl in d["plugins"] for p in pl.get("profiles", []) if p["name"] == "azure"]
assert len(ps) == 1, ps
PY

# check --provider: compliant; json findings for a dynamic VHD and a VMDK
"$SCIMG" check --container-only --provider azure out.vhd > ck.txt; rc=$?
[ $rc -eq 0 ] || fail "check --provider azure of our VHD: exit $rc: $(cat ck.txt)"
"$SCIMG" convert -O vhd -o subformat=dynamic src.raw dyn.vhd || fail "dynamic vhd"
"$SCIMG" check --container-only --provider azure --output=json dyn.vhd > dyn.json; rc=$?
[ $rc -eq 1 ] || fail "dynamic VHD: exit $rc"
python3 - dyn.json <<'PY' || fail "dynamic VHD findings: $(cat dyn.json)"
import json, sys
r = json.load(open(sys.argv[1]))
ids = {f["id"] for f in r["findings"] if f["severity"] == "error"}
assert "provider-vhd-subformat" in ids, ids
assert "provider-format" not in ids, ids
assert r["provider"]["name"] == "azure" and r["provider"]["format"] == "vhd", r["provider"]
assert r["compliant"] is False
assert {"name": "provider", "result": "fail"} in r["checks"], r["checks"]
PY
"$SCIMG" convert -O vmdk src.raw x.vmdk || fail "vmdk"
"$SCIMG" check --container-only --provider azure --output=json x.vmdk > x.json; [ $? -eq 1 ] || fail "vmdk exit"
grep -q '"provider-format"' x.json || fail "vmdk findings: $(cat x.json)"

# refusals: another -O, more than 1023 GiB (nothing written)
"$SCIMG" convert --provider azure -O vmdk src.raw no.vmdk 2>err && fail "-O vmdk accepted"
grep -q "provider profile 'azure' writes format 'vhd'" err || fail "-O message: $(cat err)"
truncate -s 1024G big.raw
"$SCIMG" convert --provider azure big.raw big.vhd 2>err && fail "1 TiB accepted"
grep -q "larger than provider profile 'azure' allows" err || fail "max size message: $(cat err)"
[ ! -e big.vhd ] && ! ls -A | grep -q scimg || fail "output left after refusal"
# 1023 GiB exactly is accepted (sparse source: only the footer is written)
truncate -s 1023G edge.raw
"$SCIMG" convert --provider azure edge.raw edge.vhd || fail "1023 GiB refused"
[ "$(stat -c %s edge.vhd)" -eq $((1023 * 1073741824 + 512)) ] || fail "1023 GiB size"
echo ok
