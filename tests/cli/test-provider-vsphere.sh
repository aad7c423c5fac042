#!/bin/sh
# Provider profile "vsphere" and the ova format: the tar holds NAME.ovf
# first, NAME-disk1.vmdk (streamOptimized) and NAME.mf last, 512-aligned;
# the OVF is well-formed, has the element shape of an ovftool OVF
# (shared fixture mdx1/000001.ovf) and declares the VMDK's exact size and
# the disk's capacity; the manifest holds the SHA-256 of each file; qemu-img
# and vmdkinfo read the VMDK with the source's content; scimg reads the OVA
# in place; unsafe or inconsistent OVAs are refused.
. "$(dirname "$0")/functions.sh"
requires python3
requires_qemu_img
"$SCIMG" plugins | grep -q '^ *vsphere  *-> ova' || fail "vsphere profile not loaded"
cd "$TMPD" || fail cd
make_mixed_raw src.raw 12
"$SCIMG" convert --provider vsphere -o name=web01,cpus=2,memory=2048 src.raw web.ova || fail "convert --provider vsphere"
ls -A | grep -q scimg && fail "temporary file left behind"
tar tvf web.ova > list.txt || fail "tar tvf"
[ "$(awk '{print $6}' list.txt | tr '\n' ' ')" = "web.ovf web-disk1.vmdk web.mf " ] || fail "members: $(cat list.txt)"
mkdir x && tar xf web.ova -C x || fail "tar x"
command -v xmllint >/dev/null 2>&1 && { xmllint --noout x/web.ovf || fail "xmllint"; }
sample="${SHARED_DIR:-}/fixtures/external/mdx1/000001.ovf"
python3 - web.ova x "$sample" <<'PY' || fail "OVA layout / OVF / manifest"
import hashlib, os, sys, tarfile
import xml.etree.ElementTree as ET
ova, x, sample = sys.argv[1:4]
with tarfile.open(ova) as t:
    ms = t.getmembers()
    for m in ms:
        assert m.isreg() and m.offset_data % 512 == 0, (m.name, m.offset_data)
        assert m.name == os.path.basename(m.name)
    assert ms[0].name.endswith(".ovf") and ms[-1].name.endswith(".mf")
O = "{http://schemas.dmtf.org/ovf/envelope/1}"
R = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}"
V = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData}"
root = ET.parse(os.path.join(x, "web.ovf")).getroot()
assert root.tag == O + "Envelope"
f = root.find(O + "References/" + O + "File")
assert f.get(O + "href") == "web-disk1.vmdk"
assert int(f.get(O + "size")) == os.path.getsize(os.path.join(x, "web-disk1.vmdk"))
d = root.find(O + "DiskSection/" + O + "Disk")
assert d.get(O + "format").endswith("#streamOptimized"), d.attrib
assert d.get(O + "fileRef") == f.get(O + "id")
units = d.get(O + "capacityAllocationUnits")
mult = 1 if units == "byte" else 2 ** int(units.split("^")[1])
assert int(d.get(O + "capacity")) * mult == 12 * 1048576, d.attrib
vs = root.find(O + "VirtualSystem")
assert vs.find(O + "Name").text == "web01"
assert vs.find(".//" + V + "VirtualSystemType").text.startswith("vmx-")
items = vs.findall(O + "VirtualHardwareSection/" + O + "Item")
q = {i.find(R + "ResourceType").text: i for i in items}
assert q["3"].find(R + "VirtualQuantity").text == "2"
assert q["4"].find(R + "VirtualQuantity").text == "2048"
assert q["17"].find(R + "HostResource").text == "ovf:/disk/" + d.get(O + "diskId")
assert q["17"].find(R + "Parent").text == q["6"].find(R + "InstanceID").text
# rasd children in the schema's (alphabetical) order
for i in items:
    names = [c.tag for c in i]
    assert names == sorted(names), names
# every element path of ovftool's OVF (shared sample) exists in ours
def paths(e, p=""):
    s = set()
    for c in e:
        q2 = p + "/" + c.tag
        s.add(q2)
        s |= paths(c, q2)
    return s
if os.path.exists(sample):
    want = paths(ET.parse(sample).getroot())
    have = paths(root)
    assert want <= have, want - have
# the manifest: one SHA256(name)= line per other member, correct digests
lines = open(os.path.join(x, "web.mf")).read().splitlines()
assert len(lines) == 2, lines
for l in lines:
    name, dig = l[len("SHA256("):].split(")= ")
    h = hashlib.sha256(open(os.path.join(x, name), "rb").read()).hexdigest()
    assert h == dig, (name, h, dig)
PY
"$QEMU_IMG" info -f vmdk --output=json x/web-disk1.vmdk | grep -q '"create-type": "streamOptimized"' || fail "qemu-img create-type"
"$QEMU_IMG" compare -f raw -F vmdk src.raw x/web-disk1.vmdk >/dev/null || fail "qemu-img compare"
if command -v vmdkinfo >/dev/null 2>&1; then
  vmdkinfo x/web-disk1.vmdk > vi.txt || fail "vmdkinfo"
  grep -q 'Stream optimized' vi.txt && grep -q 'Filename:.*web-disk1.vmdk' vi.txt || fail "vmdkinfo: $(cat vi.txt)"
fi
# scimg reads the OVA in place
"$SCIMG" info --output=json web.ova | grep -q '"format": "ova"' || fail "info ova"
"$SCIMG" compare src.raw web.ova >/dev/null || fail "scimg compare ova"
"$SCIMG" convert -O raw web.ova back.raw && cmp src.raw back.raw || fail "ova -> raw"
"$SCIMG" check --container-only --provider vsphere web.ova >/dev/null || fail "check --provider vsphere"
# -c works too (streamOptimized grains compressed on the worker threads)
"$SCIMG" convert -c --provider vsphere src.raw c.ova && "$SCIMG" compare src.raw c.ova >/dev/null || fail "-c ova"
# option validation
"$SCIMG" convert --provider vsphere -o cpus=0 src.raw bad.ova 2>err && fail "cpus=0 accepted"
grep -q "ova option 'cpus'" err || fail "cpus message: $(cat err)"
[ ! -e bad.ova ] && ! ls -A | grep -q scimg || fail "output left after refusal"

# refused OVAs: '..' member, symlink, OVF size that disagrees, no OVF first
python3 - x <<'PY' || fail "building bad OVAs"
import io, os, sys, tarfile
x = sys.argv[1]
def ova(name, members):
    with tarfile.open(name, "w", format=tarfile.USTAR_FORMAT) as t:
        for n, data, kind in members:
            ti = tarfile.TarInfo(n)
            if kind == "sym":
                ti.type = tarfile.SYMTYPE; ti.linkname = "web-disk1.vmdk"
                t.addfile(ti)
            else:
                ti.size = len(data); t.addfile(ti, io.BytesIO(data))
ovf = open(os.path.join(x, "web.ovf"), "rb").read()
vmdk = open(os.path.join(x, "web-disk1.vmdk"), "rb").read()
ova("dotdot.ova", [("web.ovf", ovf, ""), ("../web-disk1.vmdk", vmdk, "")])
ova("link.ova", [("web.ovf", ovf, ""), ("web-disk1.vmdk", b"", "sym")])
ova("size.ova", [("web.ovf", ovf, ""), ("web-disk1.vmdk", vmdk + b"\0" * 512, "")])
ova("noovf.ova", [("web-disk1.vmdk", vmdk, ""), ("web.ovf", ovf, "")])
ova("nodisk.ova", [("web.ovf", ovf.replace(b"web-disk1.vmdk", b"other-disk.vmdk"), ""), ("web-disk1.vmdk", vmdk, "")])
PY
for b in dotdot link size noovf nodisk; do
  "$SCIMG" info -f ova $b.ova >/dev/null 2>err && fail "$b.ova accepted"
  grep -q "$b.ova" err || fail "$b.ova: message does not name the file: $(cat err)"
done
grep -q "not a member of the OVA" err || fail "nodisk message: $(cat err)"
"$SCIMG" info -f ova size.ova 2>&1 | grep -q "OVF says file 'web-disk1.vmdk' is" || fail "size message"
echo ok
