#!/bin/sh
# Writing VHD (fixed, dynamic) and VHDX (dynamic, fixed): raw -> image ->
# raw is bit-exact; qemu-img check/compare/info and libvhdi's vhdiinfo
# accept the images; fixed VHDs are rounded up to a whole MiB unless
# force_size=on; images qemu-img writes are read back; a differencing VHDX
# and a dirty log built by tests/fixtures/vhd-tool.py read right.
. "$(dirname "$0")/functions.sh"
requires python3
TOOL=$top_srcdir/tests/fixtures/vhd-tool.py
have_qemu=0
[ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ] && have_qemu=1
have_vhdi=0
command -v vhdiinfo > /dev/null 2>&1 && have_vhdi=1

# 33 MiB + 12800 bytes: not a whole MiB, a multiple of 512
make_mixed_raw "$TMPD/in.raw" 33
truncate -s +12800 "$TMPD/in.raw"
insize=$(stat -c %s "$TMPD/in.raw")

json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$1" "$2"; }

# check_image IMG FMT(vhd|vhdx) QEMUFMT EXPECTED_VIRTUAL_SIZE
check_image() {
  img=$1 fmt=$2 qfmt=$3 vsize=$4
  "$SCIMG" info --output=json "$img" > "$TMPD/j" || fail "info $img"
  [ "$(json_get "$TMPD/j" format)" = "$qfmt" ] || fail "$img not probed as $qfmt"
  [ "$(json_get "$TMPD/j" virtual-size)" = "$vsize" ] || fail "$img virtual size $(json_get "$TMPD/j" virtual-size), expected $vsize"
  rm -f "$TMPD/back.raw"
  "$SCIMG" convert -O raw "$img" "$TMPD/back.raw" || fail "convert $img back"
  [ "$(stat -c %s "$TMPD/back.raw")" = "$vsize" ] || fail "$img back size"
  cmp -n "$insize" "$TMPD/in.raw" "$TMPD/back.raw" || fail "$img content differs"
  if [ "$vsize" -gt "$insize" ]; then
    [ "$(tail -c +$((insize + 1)) "$TMPD/back.raw" | tr -d '\000' | wc -c)" -eq 0 ] ||
      fail "$img: padding is not zeros"
  fi
  if [ $have_qemu = 1 ]; then
    "$QEMU_IMG" info -f "$qfmt" --output=json "$img" > "$TMPD/q.json" || fail "qemu-img info $img"
    [ "$(json_get "$TMPD/q.json" virtual-size)" = "$vsize" ] || fail "qemu-img sees $(json_get "$TMPD/q.json" virtual-size) bytes in $img, expected $vsize"
    "$QEMU_IMG" compare -f raw -F "$qfmt" "$TMPD/in.raw" "$img" > /dev/null || fail "qemu-img compare $img"
    if [ "$qfmt" = vhdx ]; then
      "$QEMU_IMG" check -f vhdx "$img" > "$TMPD/chk" 2>&1 || fail "qemu-img check $img: $(cat "$TMPD/chk")"
    fi
  fi
  if [ $have_vhdi = 1 ]; then
    vhdiinfo "$img" > "$TMPD/vi" 2>&1 || fail "vhdiinfo $img: $(cat "$TMPD/vi")"
    grep -q "Media size.*($vsize bytes)" "$TMPD/vi" || fail "vhdiinfo size for $img: $(cat "$TMPD/vi")"
  fi
}

mib=1048576
rounded=$(( (insize + mib - 1) / mib * mib ))

# VHD dynamic (the default, like qemu-img's vpc): exact size, sparse
"$SCIMG" convert -O vhd "$TMPD/in.raw" "$TMPD/d.vhd" || fail "convert vhd"
check_image "$TMPD/d.vhd" vhd vpc "$insize"
"$SCIMG" info --output=json "$TMPD/d.vhd" > "$TMPD/j"
[ "$(json_get "$TMPD/j" scimg.subformat)" = dynamic ] || fail "default subformat"
[ "$(json_get "$TMPD/j" scimg.creator-application)" = qem2 ] || fail "creator"
[ "$(json_get "$TMPD/j" scimg.size-rule)" = current-size ] || fail "size rule"
[ "$(du -k "$TMPD/d.vhd" | cut -f1)" -le 2600 ] || fail "dynamic VHD not sparse"
# CHS geometry by the spec's algorithm: 34615808 bytes = 67609 sectors
# -> 17 sectors/track, 4 heads (h = ceil(3977/1024)), 994 cylinders
[ "$(json_get "$TMPD/j" scimg.geometry)" = 994/4/17 ] || fail "geometry $(json_get "$TMPD/j" scimg.geometry)"

# VHD fixed: rounded up to a whole MiB (Azure), or exact with force_size=on
"$SCIMG" convert -O vpc -o subformat=fixed "$TMPD/in.raw" "$TMPD/f.vhd" || fail "convert fixed"
check_image "$TMPD/f.vhd" vhd vpc "$rounded"
[ "$(stat -c %s "$TMPD/f.vhd")" = $((rounded + 512)) ] || fail "fixed VHD file size"
"$SCIMG" convert -O vhd -o subformat=fixed,force_size=on "$TMPD/in.raw" "$TMPD/fx.vhd" || fail "convert fixed force_size"
check_image "$TMPD/fx.vhd" vhd vpc "$insize"
# a 127 GiB+ geometry is capped at 65535/16/255 (sparse, nothing written)
truncate -s 200G "$TMPD/big.raw"
"$SCIMG" convert -O vhd "$TMPD/big.raw" "$TMPD/big.vhd" || fail "convert big"
"$SCIMG" info --output=json "$TMPD/big.vhd" > "$TMPD/j"
[ "$(json_get "$TMPD/j" virtual-size)" = 214748364800 ] || fail "big size"
[ "$(json_get "$TMPD/j" scimg.geometry)" = 65535/16/255 ] || fail "big geometry"
truncate -s 2041G "$TMPD/huge.raw"
"$SCIMG" convert -O vhd "$TMPD/huge.raw" "$TMPD/huge.vhd" 2> "$TMPD/err" && fail "2041 GiB VHD accepted"
grep -q 2040 "$TMPD/err" || fail "2041 GiB message: $(cat "$TMPD/err")"
"$SCIMG" convert -O vhd -o subformat=sparse "$TMPD/in.raw" "$TMPD/bad.vhd" 2>/dev/null && fail "bad subformat accepted"

# VHDX: default (32 MiB blocks), 1 MiB blocks, fixed
for o in "" block_size=1M subformat=fixed,block_size=8M; do
  rm -f "$TMPD/o.vhdx"
  "$SCIMG" convert -O vhdx ${o:+-o "$o"} "$TMPD/in.raw" "$TMPD/o.vhdx" || fail "convert vhdx $o"
  check_image "$TMPD/o.vhdx" vhdx vhdx "$insize"
done
"$SCIMG" convert -O vhdx -o block_size=3M "$TMPD/in.raw" "$TMPD/bad.vhdx" 2>/dev/null && fail "block_size=3M accepted"
"$SCIMG" convert -O vhdx "$TMPD/in.raw" "$TMPD/o.vhdx" || fail "convert vhdx"
"$SCIMG" info --output=json "$TMPD/o.vhdx" > "$TMPD/j"
[ "$(json_get "$TMPD/j" scimg.block-size)" = 33554432 ] || fail "default block size"
[ "$(json_get "$TMPD/j" scimg.logical-sector-size)" = 512 ] || fail "logical sector"
# chains: vhdx -> vhd -> vhdx keep the content
"$SCIMG" convert -O vhd "$TMPD/o.vhdx" "$TMPD/c.vhd" || fail "vhdx -> vhd"
"$SCIMG" convert -O vhdx "$TMPD/c.vhd" "$TMPD/c.vhdx" || fail "vhd -> vhdx"
check_image "$TMPD/c.vhdx" vhdx vhdx "$insize"

# images qemu-img writes read back bit-exact
if [ $have_qemu = 1 ]; then
  for q in "vpc subformat=dynamic" "vpc subformat=fixed" "vpc subformat=dynamic,force_size=on" \
           "vhdx subformat=dynamic" "vhdx subformat=fixed,block_size=1M" "vhdx block_size=64M,log_size=4M"; do
    set -- $q
    rm -f "$TMPD/q.img" "$TMPD/qb.raw"
    "$QEMU_IMG" convert -f raw -O "$1" -o "$2" "$TMPD/in.raw" "$TMPD/q.img" || fail "qemu-img convert $q"
    fmt=$1; [ "$fmt" = vpc ] && fmt=vhd
    "$SCIMG" convert -f "$fmt" -O raw "$TMPD/q.img" "$TMPD/qb.raw" || fail "scimg read qemu-img's $q"
    "$QEMU_IMG" convert -f "$1" -O raw "$TMPD/q.img" "$TMPD/qq.raw"
    cmp "$TMPD/qb.raw" "$TMPD/qq.raw" || fail "content of qemu-img's $q"
  done
fi

# a differencing VHDX (.avhdx) on top of a VHDX written here: full,
# partial (sector bitmap), not present, zero, unmapped, undefined blocks
mkdir "$TMPD/diff"
head -c 12582912 /dev/urandom > "$TMPD/p.raw"
"$SCIMG" convert -O vhdx -o block_size=1M "$TMPD/p.raw" "$TMPD/diff/parent.vhdx" || fail "parent vhdx"
want=$(python3 "$TOOL" vhdxdiff "$TMPD/diff/parent.vhdx" "$TMPD/diff/child.avhdx" "$TMPD/p.raw") || fail "vhdxdiff"
rm -f "$TMPD/out.raw"
"$SCIMG" convert -O raw "$TMPD/diff/child.avhdx" "$TMPD/out.raw" || fail "read child"
[ "$(sha "$TMPD/out.raw")" = "$want" ] || fail "differencing VHDX content"
"$SCIMG" info --output=json "$TMPD/diff/child.avhdx" > "$TMPD/j"
[ "$(json_get "$TMPD/j" scimg.subformat)" = differencing ] || fail "child subformat"
[ "$(json_get "$TMPD/j" scimg.blocks.partially-present)" = 1 ] || fail "child blocks"
"$SCIMG" convert --no-backing -O raw "$TMPD/diff/child.avhdx" "$TMPD/nb.raw" 2> "$TMPD/err" && fail "no-backing child opened"
grep -q "parent.vhdx.*not allowed" "$TMPD/err" || fail "no-backing message: $(cat "$TMPD/err")"
"$SCIMG" info --no-backing "$TMPD/diff/child.avhdx" > "$TMPD/out" || fail "no-backing info"
grep -q "parent.vhdx.*not allowed" "$TMPD/out" || fail "no-backing info: $(cat "$TMPD/out")"
# a different parent (other data write GUID) is refused, naming the linkage
"$SCIMG" convert -O vhdx -o block_size=1M "$TMPD/p.raw" "$TMPD/other.vhdx" || fail "other"
cp "$TMPD/other.vhdx" "$TMPD/diff/parent.vhdx"
"$SCIMG" info "$TMPD/diff/child.avhdx" 2> "$TMPD/err" && fail "wrong parent accepted"
grep -q "parent_linkage" "$TMPD/err" || fail "wrong parent message: $(cat "$TMPD/err")"
grep -q "does not match" "$TMPD/err" || fail "wrong parent message: $(cat "$TMPD/err")"
rm "$TMPD/diff/parent.vhdx"
"$SCIMG" convert -O raw "$TMPD/diff/child.avhdx" "$TMPD/mp.raw" 2> "$TMPD/err" && fail "missing parent accepted"
grep -q "parent image '.\\\\parent.vhdx' not found" "$TMPD/err" || fail "missing parent message: $(cat "$TMPD/err")"

# a dirty log whose entry wraps around the end of the log and points
# block 0 at a new block past the old end of the file
want=$(python3 "$TOOL" vhdxlog "$TMPD/o.vhdx" "$TMPD/dirty.vhdx") || fail "vhdxlog"
"$SCIMG" info --output=json "$TMPD/dirty.vhdx" > "$TMPD/j" || fail "info dirty"
[ "$(json_get "$TMPD/j" scimg.log.replayed-entries)" = 1 ] || fail "dirty replayed"
rm -f "$TMPD/out.raw"
"$SCIMG" convert -O raw "$TMPD/dirty.vhdx" "$TMPD/out.raw" || fail "read dirty"
[ "$(head -c 33554432 "$TMPD/out.raw" | sha256sum | cut -d' ' -f1)" = "$want" ] || fail "dirty log block 0"
cmp -i 33554432 "$TMPD/in.raw" "$TMPD/out.raw" || fail "dirty log: rest of the disk"
if [ $have_qemu = 1 ]; then
  cp "$TMPD/dirty.vhdx" "$TMPD/dq.vhdx"
  "$QEMU_IMG" check -r all "$TMPD/dq.vhdx" > /dev/null 2>&1
  "$QEMU_IMG" compare -f raw -F vhdx "$TMPD/out.raw" "$TMPD/dq.vhdx" > /dev/null || fail "differs from qemu-img's replay"
fi
echo ok
