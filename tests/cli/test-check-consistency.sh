#!/bin/sh
# scimg check finds container inconsistencies: qcow2 refcounts counted as
# qemu-img check does (a zeroed refcount block, a leaked cluster, two L2
# entries on one cluster, an L2 entry on the L1 table), VHD BAT entries
# that overlap each other or the metadata.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
requires jq python3
cd "$TMPD" || fail "cd"

make_mixed_raw data.raw 2
dd if=/dev/urandom of=data.raw bs=64k count=6 conv=notrunc status=none
"$QEMU_IMG" convert -q -f raw -O qcow2 data.raw good.qcow2 || fail "qemu-img convert"

# qcow2 surgery: python3 q2.py OP IMG
cat > q2.py <<'PY'
import struct, sys
op, path = sys.argv[1], sys.argv[2]
f = open(path, "r+b")
h = f.read(104)
cb = struct.unpack(">I", h[20:24])[0]; cs = 1 << cb
l1off = struct.unpack(">Q", h[40:48])[0]
rtoff = struct.unpack(">Q", h[48:56])[0]
f.seek(rtoff); rb = struct.unpack(">Q", f.read(8))[0]
f.seek(l1off); l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
def l2e(i):
    f.seek(l2 + 8 * i); return struct.unpack(">Q", f.read(8))[0]
def setl2e(i, v):
    f.seek(l2 + 8 * i); f.write(struct.pack(">Q", v))
if op == "zero-refblock":
    f.seek(rb); f.write(b"\0" * cs)
elif op == "leak":
    f.seek(0, 2); end = f.tell(); n = (end + cs - 1) // cs
    f.truncate(n * cs + cs)             # one more cluster, refcount 1, unused
    f.seek(rb + 2 * n); f.write(struct.pack(">H", 1))
elif op == "l2-dup":
    a, b = l2e(0), l2e(1)
    assert a and b
    setl2e(1, a)
elif op == "l2-on-l1":
    setl2e(2, (1 << 63) | (l1off & ~(cs - 1)))
PY

# IMG: scimg check and qemu-img check agree on corruptions and leaks
n=0
agree() { # IMG COMPLIANT(true|false) FINDING-ID...
  img=$1 want=$2; shift 2
  timeout 60 "$QEMU_IMG" check --output=json "$img" > q.json 2>/dev/null
  timeout 120 "$SCIMG" check --container-only --output=json "$img" > s.json; rc=$?
  jq -e . s.json >/dev/null || fail "$img: check JSON invalid"
  for k in corruptions leaks check-errors image-end-offset total-clusters allocated-clusters filename format; do
    qv=$(jq -c --arg k "$k" '.[$k]' q.json) sv=$(jq -c --arg k "$k" '.[$k]' s.json)
    [ "$qv" = "$sv" ] || fail "$img: $k: qemu-img $qv, scimg $sv"
  done
  [ "$(jq .compliant s.json)" = "$want" ] || fail "$img: compliant is $(jq .compliant s.json), expected $want"
  if [ "$want" = true ]; then [ $rc -eq 0 ] || fail "$img: exit $rc"; else [ $rc -eq 1 ] || fail "$img: exit $rc"; fi
  for id in "$@"; do
    jq -e --arg id "$id" '.findings | map(.id) | index($id)' s.json >/dev/null ||
      fail "$img: no finding $id: $(jq -c .findings s.json)"
  done
  n=$((n + 1))
}

agree good.qcow2 true
[ "$(jq '.findings | length' s.json)" = 0 ] || fail "good image has findings"
# a snapshot shares clusters: still consistent
cp good.qcow2 snap.qcow2 && "$QEMU_IMG" snapshot -c s1 snap.qcow2 || fail "snapshot"
agree snap.qcow2 true

cp good.qcow2 zr.qcow2 && python3 q2.py zero-refblock zr.qcow2 || fail "zero refblock"
agree zr.qcow2 false qcow2-refcount-zero
[ "$(jq .corruptions s.json)" -gt 0 ] || fail "zeroed refcount block: no corruption counted"

cp good.qcow2 leak.qcow2 && python3 q2.py leak leak.qcow2 || fail "leak"
agree leak.qcow2 true qcow2-leak
[ "$(jq .leaks s.json)" = 1 ] || fail "leak count $(jq .leaks s.json)"

cp good.qcow2 dup.qcow2 && python3 q2.py l2-dup dup.qcow2 || fail "l2 dup"
agree dup.qcow2 false qcow2-refcount-low qcow2-leak
[ "$(jq .corruptions s.json)" = 1 ] || fail "dup: corruptions $(jq .corruptions s.json)"

cp good.qcow2 ovl.qcow2 && python3 q2.py l2-on-l1 ovl.qcow2 || fail "l2 on l1"
agree ovl.qcow2 false qcow2-overlap
jq -r '.findings[] | select(.id == "qcow2-overlap") | .message' s.json | grep -q "L1 table" ||
  fail "overlap message does not name the L1 table: $(jq -c .findings s.json)"
[ $n -eq 6 ] || fail "ran $n comparisons"

# VHD: two BAT entries on one block, a BAT entry on the BAT
truncate -s 4M vdata.raw
dd if=/dev/urandom of=vdata.raw bs=64k count=2 conv=notrunc status=none
dd if=/dev/urandom of=vdata.raw bs=64k count=2 seek=48 conv=notrunc status=none
"$QEMU_IMG" convert -q -f raw -O vpc vdata.raw good.vhd || fail "qemu-img vpc"
cat > vhd.py <<'PY'
import struct, sys
op, path = sys.argv[1], sys.argv[2]
f = open(path, "r+b")
f.seek(-512, 2); foot = f.read(512)
dyn = struct.unpack(">Q", foot[16:24])[0]
f.seek(dyn); h = f.read(1024)
table = struct.unpack(">Q", h[16:24])[0]
f.seek(table); e = struct.unpack(">II", f.read(8))
assert e[0] != 0xffffffff and e[1] != 0xffffffff, e
f.seek(table + 4)
f.write(struct.pack(">I", e[0] if op == "dup" else table // 512))
PY
timeout 60 "$SCIMG" check --container-only --output=json good.vhd > s.json || fail "good vhd: $(cat s.json)"
[ "$(jq -r .format s.json)" = vpc ] || fail "vhd check format $(jq -r .format s.json)"
jq -e '.checks | map(select(.name == "bat" and .result == "pass")) | length == 1' s.json >/dev/null || fail "bat step: $(jq -c .checks s.json)"
for op in dup onbat; do
  cp good.vhd $op.vhd && python3 vhd.py $op $op.vhd || fail "vhd $op"
  timeout 60 "$SCIMG" check --container-only --output=json $op.vhd > s.json; rc=$?
  [ $rc -eq 1 ] || fail "$op.vhd: exit $rc"
  jq -r '.findings[] | select(.id == "vhd-bat-overlap") | .message' s.json > msg
  [ -s msg ] || fail "$op.vhd: no vhd-bat-overlap: $(jq -c .findings s.json)"
  case $op in
    dup) grep -q "block of BAT entry 1.*overlaps the block of BAT entry 0\|block of BAT entry 0.*overlaps the block of BAT entry 1" msg || fail "dup message: $(cat msg)" ;;
    onbat) grep -q "BAT" msg || fail "onbat message: $(cat msg)" ;;
  esac
done

# VMDK: a grain table the redundant directory points to differs
"$QEMU_IMG" convert -q -f raw -O vmdk data.raw good.vmdk || fail "qemu-img vmdk"
timeout 60 "$SCIMG" check --container-only --output=json good.vmdk > s.json || fail "good vmdk: $(jq -c .findings s.json)"
jq -e '.checks | map(select(.name == "grain-directory" and .result == "pass")) | length == 1' s.json >/dev/null ||
  fail "grain-directory step: $(jq -c .checks s.json)"
cp good.vmdk rgd.vmdk
python3 - rgd.vmdk <<'PY' || fail "vmdk surgery"
import struct, sys
f = open(sys.argv[1], "r+b"); h = f.read(512)
rgd = struct.unpack("<Q", h[48:56])[0]
f.seek(rgd * 512); rgt = struct.unpack("<I", f.read(4))[0]
f.seek(rgt * 512); e = struct.unpack("<I", f.read(4))[0]
assert e, "the first grain is not allocated"
f.seek(rgt * 512); f.write(struct.pack("<I", e + 1000))
PY
"$SCIMG" convert -O raw rgd.vmdk rgd.raw && "$SCIMG" compare rgd.raw good.vmdk >/dev/null || fail "the primary directory must still read"
timeout 60 "$SCIMG" check --container-only --output=json rgd.vmdk > s.json; rc=$?
[ $rc -eq 1 ] || fail "rgd.vmdk: exit $rc"
jq -r '.findings[] | select(.id == "vmdk-redundant-gd") | .message' s.json | grep -q "1 of 1 grain directory entry" ||
  fail "rgd.vmdk: $(jq -c .findings s.json)"

# human output names the findings
"$SCIMG" check --container-only zr.qcow2 > out.txt; [ $? -eq 1 ] || fail "human exit"
grep -q "error: qcow2-refcount-zero: 'zr.qcow2': .* refcount of 0" out.txt || fail "human: $(cat out.txt)"
exit 0
