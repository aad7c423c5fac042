#!/bin/sh
# Provider profiles of plugins/ec2: "ec2" writes the streamOptimized VMDK VM
# Import takes (qemu-img, vmdkinfo and scimg read it with the source's
# content), "ec2-raw" a raw image, "ec2-ami" refuses roots over 10 GiB;
# scimg check --provider ec2 names a VMDK that is not streamOptimized.
. "$(dirname "$0")/functions.sh"
requires python3
requires_qemu_img
"$SCIMG" plugins | grep -q '^ *ec2  *-> vmdk' || fail "ec2 profile not loaded"
cd "$TMPD" || fail cd
make_mixed_raw src.raw 12
"$SCIMG" convert --provider ec2 src.raw out.vmdk || fail "convert --provider ec2"
"$QEMU_IMG" info -f vmdk --output=json out.vmdk > qi.json || fail "qemu-img info"
python3 - qi.json <<'PY' || fail "qemu-img info: $(cat qi.json)"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["format-specific"]["data"]
assert s["create-type"] == "streamOptimized", s
assert s["extents"][0]["compressed"] is True, s
assert d["virtual-size"] == 12 * 1048576, d
PY
"$QEMU_IMG" compare -f raw -F vmdk src.raw out.vmdk >/dev/null || fail "qemu-img compare"
if command -v vmdkinfo >/dev/null 2>&1; then
  vmdkinfo out.vmdk > vi.txt || fail "vmdkinfo"
  grep -q 'Disk type:.*Stream optimized' vi.txt || fail "vmdkinfo: $(cat vi.txt)"
fi
"$SCIMG" check --container-only --provider ec2 out.vmdk >/dev/null || fail "check --provider ec2"

"$SCIMG" convert --provider ec2-raw src.raw out.raw || fail "ec2-raw"
cmp src.raw out.raw || fail "ec2-raw content"
"$SCIMG" check --container-only --provider ec2-raw -f raw out.raw >/dev/null || fail "check ec2-raw"

"$SCIMG" convert -O vmdk -o subformat=monolithicSparse src.raw sparse.vmdk || fail "sparse vmdk"
"$SCIMG" check --container-only --provider ec2 --output=json sparse.vmdk > sp.json; [ $? -eq 1 ] || fail "sparse vmdk exit"
grep -q '"provider-vmdk-subformat"' sp.json || fail "sparse vmdk findings: $(cat sp.json)"

truncate -s 11G big.raw
"$SCIMG" convert --provider ec2-ami big.raw bundle 2>err && fail "11 GiB AMI root accepted"
grep -q "larger than provider profile 'ec2-ami' allows" err || fail "ec2-ami message: $(cat err)"
[ ! -e bundle ] || fail "bundle left behind"
echo ok
