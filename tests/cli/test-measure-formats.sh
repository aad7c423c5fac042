#!/bin/sh
# measure -O vmdk, vhd (vpc), vhdx: the required size is at least the size
# of what scimg convert writes from the same input (exactly it where the
# input holds no zero data blocks, except for the upper bounds of
# streamOptimized and monolithicFlat), fully-allocated is the size of a
# fully written disk, --size is what scimg create makes, JSON has
# qemu-img measure's shape, raw and qcow2 still equal qemu-img measure,
# and every option value is checked.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
Q=$QEMU_IMG
T="timeout 120"
cd "$TMPD" || fail "cd"

# sparse.raw: random data in a few places, holes elsewhere, a size that is
# no multiple of any block (so every counted block holds non-zero data)
truncate -s 70000000 sparse.raw
dd if=/dev/urandom of=sparse.raw bs=1M count=3 seek=10 conv=notrunc status=none
dd if=/dev/urandom of=sparse.raw bs=4k count=1 seek=12000 conv=notrunc status=none
dd if=/dev/urandom of=sparse.raw bs=1 count=1000 seek=69998000 conv=notrunc status=none
# full.raw: random everywhere
head -c 9000000 /dev/urandom > full.raw
# mixed.raw: text, zeros written as data, holes
make_mixed_raw mixed.raw 16

json() { # KEY FILE
  sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$2"
}
# size of what convert writes (the descriptor and its flat extent together)
out_size() {
  s=$(stat -c %s "$1")
  [ -e "$2" ] && s=$((s + $(stat -c %s "$2")))
  echo "$s"
}

specs="vmdk: vmdk:subformat=streamOptimized vmdk:subformat=monolithicFlat vhd: vpc:subformat=fixed
vhd:subformat=fixed,force_size=on vhdx: vhdx:subformat=fixed vhdx:block_size=1M"
for spec in $specs; do
  f=${spec%%:*} o=${spec#*:}
  exact=1
  case "$o" in *streamOptimized*|*monolithicFlat*) exact=0 ;; esac
  for in in sparse.raw full.raw mixed.raw; do
    $T "$SCIMG" measure --output=json -f raw -O "$f" ${o:+-o "$o"} "$in" > m.json ||
      fail "measure $spec $in"
    python3 -c 'import json,sys; d=json.load(open("m.json")); sys.exit(sorted(d) != ["fully-allocated", "required"])' ||
      fail "JSON shape $spec: $(cat m.json)"
    req=$(json required m.json) full=$(json fully-allocated m.json)
    rm -f out.img out-flat.img
    $T "$SCIMG" convert -q -f raw -O "$f" ${o:+-o "$o"} "$in" out.img || fail "convert $spec $in"
    act=$(out_size out.img out-flat.img)
    [ "$act" -le "$req" ] || fail "$spec $in: output $act > required $req"
    [ "$req" -le "$full" ] || fail "$spec $in: required $req > fully-allocated $full"
    if [ $exact = 1 ] && [ "$in" != mixed.raw ]; then
      [ "$act" -eq "$req" ] || fail "$spec $in: output $act != required $req"
    fi
    if [ "$in" = full.raw ] && [ $exact = 1 ]; then
      [ "$act" -eq "$full" ] || fail "$spec $in: output $act != fully-allocated $full"
    fi
    echo "$spec $in: required $req fully-allocated $full output $act"
  done
  # an empty disk: what scimg create makes
  $T "$SCIMG" measure --output=json -O "$f" ${o:+-o "$o"} --size 50M > m.json || fail "measure --size $spec"
  rm -f new.img new-flat.img
  $T "$SCIMG" create -q -f "$f" ${o:+-o "$o"} new.img 50M || fail "create $spec"
  act=$(out_size new.img new-flat.img) req=$(json required m.json)
  [ "$act" -le "$req" ] || fail "$spec --size: created $act > required $req"
  [ $exact = 0 ] || [ "$act" -eq "$req" ] || fail "$spec --size: created $act != required $req"
  # human output
  $T "$SCIMG" measure -O "$f" ${o:+-o "$o"} --size 50M | grep -q '^required size: [0-9]*$' ||
    fail "human output $spec"
done

# qemu-img measures only raw and qcow2 (and says so for these formats);
# there scimg prints what it prints
for f in vmdk vpc vhdx; do
  "$Q" measure -O $f --size 1G >/dev/null 2>&1 && echo "note: qemu-img measures $f now"
done
# (a raw input whose size is no multiple of 512 differs on purpose: QEMU
# rounds the input up to a sector, scimg keeps its size, and measures the
# raw file scimg writes)
truncate -s 64M aligned.raw
dd if=sparse.raw of=aligned.raw bs=1M count=14 conv=notrunc status=none
for in in aligned.raw mixed.raw; do
  for f in raw qcow2; do
    s=$($T "$SCIMG" measure --output=json -f raw -O $f $in) || fail "scimg $f"
    q=$($T "$Q" measure --output=json -f raw -O $f $in) || fail "qemu-img $f"
    [ "$s" = "$q" ] || fail "$f $in: scimg '$s' qemu-img '$q'"
  done
done
s=$($T "$SCIMG" measure --output=json -f raw -O qcow2 sparse.raw) || fail "scimg qcow2"
q=$($T "$Q" measure --output=json -f raw -O qcow2 sparse.raw) || fail "qemu-img qcow2"
[ "$s" = "$q" ] || fail "qcow2 sparse.raw: scimg '$s' qemu-img '$q'"

# every option value is checked as the writer checks it
for bad in "vmdk subformat=twoGbMaxExtentSparse" "vmdk adapter_type=scsi" "vmdk hwversion=100" \
    "vmdk toolsversion=-1" "vhd subformat=differencing" "vhd force_size=maybe" \
    "vhdx block_size=3M" "vhdx block_size=512M" "vhdx subformat=thin" "vhdx cluster_size=64k"; do
  "$SCIMG" measure -O ${bad% *} -o ${bad#* } --size 1G 2>err; [ $? -eq 2 ] || fail "accepted: $bad"
  [ -s err ] || fail "no message: $bad"
done
"$SCIMG" measure -O vhd --size 3T 2>/dev/null; [ $? -eq 2 ] || fail "VHD over 2040 GiB"
"$SCIMG" measure -O vmdk --size 0 2>/dev/null; [ $? -eq 2 ] || fail "empty VMDK"
"$SCIMG" measure -O vmdk --size 65T 2>/dev/null; [ $? -eq 2 ] || fail "sparse VMDK over 64 TiB"
"$SCIMG" measure -O vmdk -o subformat=monolithicFlat --size 65T >/dev/null || fail "flat VMDK over 64 TiB"
"$SCIMG" measure -O ova --size 1G 2>/dev/null; [ $? -eq 2 ] || fail "ova is not measured"
echo ok
