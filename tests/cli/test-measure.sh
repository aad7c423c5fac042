#!/bin/sh
# measure: the numbers of qemu-img measure for qcow2 and raw outputs, and
# required >= the size of the qcow2 scimg writes.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
requires qemu-io
Q=$QEMU_IMG
T="timeout 120"

cd "$TMPD" || fail "cd"
make_mixed_raw a.raw 16
$T "$SCIMG" convert -f raw -O qcow2 a.raw a.qcow2 || fail "convert"
$T "$Q" create -q -f qcow2 base.qcow2 8M || fail "base"
$T qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1M 200k' base.qcow2 >/dev/null || fail "write"
$T "$SCIMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || fail "top"
$T qemu-io -c 'write -P 3 4M 64k' -c 'write -z 1M 64k' top.qcow2 >/dev/null || fail "write top"

same() {
  s=$($T "$SCIMG" measure "$@" 2>&1) || fail "scimg measure $*: $s"
  q=$($T "$Q" measure "$@" 2>&1) || fail "qemu-img measure $*: $q"
  [ "$s" = "$q" ] || fail "measure $*: scimg '$s' qemu-img '$q'"
}
same --output=json -O qcow2 --size 10G
same -O qcow2 --size 1G
same --output=json -O qcow2 -o cluster_size=512,refcount_bits=1 --size 1G
same --output=json -O qcow2 -o cluster_size=2M,refcount_bits=64 --size 100T
same --output=json -O raw --size 1000
same --output=json -O qcow2 -f raw a.raw
same --output=json -O qcow2 -o cluster_size=4k -f raw a.raw
same --output=json -O qcow2 -o preallocation=full -f raw a.raw
same --output=json -O qcow2 -o preallocation=metadata -f raw a.raw
same --output=json -O qcow2 a.qcow2
same -O qcow2 a.qcow2
same --output=json -O qcow2 -o compat=0.10 a.qcow2
same --output=json -O qcow2 top.qcow2
same --output=json -O raw top.qcow2

# required is enough for scimg's own qcow2 output
for o in cluster_size=65536 cluster_size=4096 refcount_bits=1; do
  $T "$SCIMG" convert -f raw -O qcow2 -o "$o" a.raw out.qcow2 || fail "convert $o"
  req=$($T "$SCIMG" measure --output=json -O qcow2 -o "$o" -f raw a.raw | sed -n 's/.*"required": \([0-9]*\).*/\1/p')
  [ -n "$req" ] && [ "$(stat -c %s out.qcow2)" -le "$req" ] || fail "$o: output $(stat -c %s out.qcow2) > required $req"
  rm -f out.qcow2
done
"$SCIMG" measure -O ova --size 1G 2>/dev/null; [ $? -eq 2 ] || fail "unsupported format must fail"
"$SCIMG" measure -O qcow2 2>/dev/null; [ $? -eq 2 ] || fail "neither size nor source"
echo ok
