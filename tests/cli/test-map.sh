#!/bin/sh
# map: the JSON and human output equal qemu-img map's on qcow2 images with
# data, zero and unallocated runs and a backing chain, and on raw files.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
requires qemu-io
Q=$QEMU_IMG
T="timeout 120"

cd "$TMPD" || fail "cd"
$T "$Q" create -q -f qcow2 base.qcow2 4M || fail "base"
$T qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1M 128k' -c 'write -P 3 2M 64k' base.qcow2 >/dev/null || fail "write base"
$T "$SCIMG" create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 || fail "mid"
$T qemu-io -c 'write -P 4 64k 64k' -c 'write -z 1M 64k' -c 'write -P 5 3M 64k' mid.qcow2 >/dev/null || fail "write mid"
$T "$SCIMG" create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 || fail "top"
$T qemu-io -c 'write -P 6 2M 32k' -c 'write -z 3M 64k' top.qcow2 >/dev/null || fail "write top"
# an overlay larger than its backing file
$T "$Q" create -q -f qcow2 -b base.qcow2 -F qcow2 big.qcow2 8M || fail "big"
# a scimg-converted qcow2 and a sparse raw file
make_mixed_raw mixed.raw 8
$T "$SCIMG" convert -f raw -O qcow2 mixed.raw conv.qcow2 || fail "convert"

for img in base.qcow2 mid.qcow2 top.qcow2 big.qcow2 conv.qcow2; do
  $T "$SCIMG" map --output=json "$img" > s.json || fail "scimg map $img"
  $T "$Q" map --output=json "$img" > q.json || fail "qemu-img map $img"
  cmp -s s.json q.json || { diff s.json q.json; fail "map --output=json $img differs from qemu-img"; }
  $T "$SCIMG" map "$img" > s.txt || fail "scimg map human $img"
  $T "$Q" map "$img" > q.txt || fail "qemu-img map human $img"
  cmp -s s.txt q.txt || { diff s.txt q.txt; fail "human map of $img differs"; }
done
# the chain really has three depths
$T "$SCIMG" map --output=json top.qcow2 | grep -q '"depth": 2, "present": true' || fail "no depth 2 run"
# compressed clusters: data without an offset in JSON; human output refused
$T "$SCIMG" convert -c -f raw -O qcow2 mixed.raw comp.qcow2 || fail "convert -c"
$T "$SCIMG" map --output=json comp.qcow2 > s.json || fail "map compressed"
$T "$Q" map --output=json comp.qcow2 > q.json || fail "qemu-img map compressed"
cmp -s s.json q.json || { diff s.json q.json; fail "compressed map differs"; }
"$SCIMG" map comp.qcow2 >/dev/null 2>&1; [ $? -eq 2 ] || fail "human map of compressed clusters must fail"
$T "$SCIMG" map --output=json -f raw mixed.raw > s.json || fail "map raw"
$T "$Q" map --output=json -f raw mixed.raw > q.json || fail "qemu-img map raw"
cmp -s s.json q.json || { diff s.json q.json; fail "raw map differs"; }
# other formats answer from block status: same runs, no offsets
$T "$SCIMG" convert -f raw -O vhdx mixed.raw m.vhdx || fail "convert vhdx"
$T "$SCIMG" map --output=json m.vhdx > s.json || fail "map vhdx"
grep -q '"data": true' s.json || fail "vhdx map has no data run"
"$SCIMG" map --output=json --no-backing top.qcow2 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--no-backing must refuse the chain"
"$SCIMG" map --output=xml base.qcow2 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --output"
echo ok
