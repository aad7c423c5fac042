#!/bin/sh
# scimg check finds qcow2 refcount inconsistencies and counts them as
# qemu-img check does: a zeroed refcount block, a leaked cluster, two L2
# entries on one cluster, an L2 entry on the L1 table.
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

# human output names the findings
"$SCIMG" check --container-only zr.qcow2 > out.txt; [ $? -eq 1 ] || fail "human exit"
grep -q "error: qcow2-refcount-zero: 'zr.qcow2': .* refcount of 0" out.txt || fail "human: $(cat out.txt)"
exit 0
