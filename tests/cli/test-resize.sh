#!/bin/sh
# resize: raw grow/shrink, qcow2 grow in place; qemu-img check clean, the
# new virtual size, the data unchanged; refusals leave the image unchanged.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
Q=$QEMU_IMG
T="timeout 120"
vsize() { $T "$Q" info --output=json "$@" | sed -n 's/^ *"virtual-size": \([0-9]*\),*/\1/p' | head -n 1; }

cd "$TMPD" || fail "cd"
make_mixed_raw a.raw 8
cp --sparse=always a.raw r.raw
$T "$SCIMG" resize -q -f raw r.raw +8M || fail "raw grow"
[ "$(stat -c %s r.raw)" = 16777216 ] || fail "raw size after grow"
$T "$Q" compare -f raw -F raw a.raw r.raw >/dev/null || fail "raw data after grow"
"$SCIMG" resize -q -f raw r.raw 4M 2>/dev/null; [ $? -eq 2 ] || fail "raw shrink without --shrink"
[ "$(stat -c %s r.raw)" = 16777216 ] || fail "refused shrink changed the file"
$T "$SCIMG" resize -q --shrink -f raw r.raw -- -12M || fail "raw shrink"
[ "$(stat -c %s r.raw)" = 4194304 ] || fail "raw size after shrink"
head -c 4194304 a.raw | cmp -s - r.raw || fail "raw data after shrink"

# qcow2 grow, by scimg's writer and by qemu-img's, with an unaligned size
$T "$SCIMG" convert -f raw -O qcow2 a.raw s.qcow2 || fail "convert"
$T "$Q" convert -f raw -O qcow2 a.raw q.qcow2 || fail "qemu-img convert"
$T "$Q" create -q -f qcow2 u.qcow2 1000448 || fail "unaligned"
for img in s.qcow2 q.qcow2 u.qcow2; do
  cp "$img" "$img.orig"
  $T "$SCIMG" resize "$img" +2G > out || fail "grow $img"
  grep -q '^Image resized.$' out || fail "message"
  $T "$Q" check "$img" >/dev/null || fail "qemu-img check after growing $img"
  exp=$(( $(vsize "$img.orig") + 2147483648 ))
  [ "$(vsize "$img")" = "$exp" ] || fail "$img virtual size $(vsize "$img"), expected $exp"
  $T "$Q" compare "$img.orig" "$img" >/dev/null || fail "$img data changed"
done
# past what the L1 table's clusters cover (4 TiB with 64k clusters, 1 GiB
# with 4k): the table moves to the end of the file
for c in 65536:5T 4096:20G; do
  $T "$SCIMG" convert -f raw -O qcow2 -o cluster_size=${c%%:*} a.raw m.qcow2 || fail "convert $c"
  $T "$SCIMG" resize -q m.qcow2 "${c#*:}" || fail "grow with L1 move $c"
  $T "$Q" check m.qcow2 >/dev/null || fail "qemu-img check after L1 move $c: $($Q check m.qcow2)"
  $T "$Q" compare a.raw m.qcow2 >/dev/null || fail "data after L1 move $c"
  [ "$(vsize m.qcow2)" -gt 4294967296 ] || fail "size after L1 move $c"
  rm -f m.qcow2
done
# no refcount block covers the new table's clusters (512-byte clusters):
# refused, image unchanged
$T "$SCIMG" create -q -f qcow2 -o cluster_size=512 tiny.qcow2 1M || fail "tiny"
cp tiny.qcow2 tiny.orig
"$SCIMG" resize tiny.qcow2 1G 2>err; [ $? -eq 2 ] || fail "refcount block allocation must be refused"
grep -q 'refcount' err || fail "refusal message: $(cat err)"
cmp -s tiny.qcow2 tiny.orig || fail "refused grow changed the image"
# shrinking qcow2 is refused, with and without --shrink
cp s.qcow2 before.qcow2
"$SCIMG" resize --shrink s.qcow2 4M 2>/dev/null; [ $? -eq 2 ] || fail "qcow2 shrink must be refused"
"$SCIMG" resize s.qcow2 4M 2>/dev/null; [ $? -eq 2 ] || fail "qcow2 shrink without --shrink"
cmp -s before.qcow2 s.qcow2 || fail "refused shrink changed the image"
"$SCIMG" resize s.qcow2 +1000 2>/dev/null; [ $? -eq 2 ] || fail "size not a multiple of 512"

# overlay: only IMAGE is written; a backing file larger than the image is
# refused (its data would show), a smaller one is fine
$T "$SCIMG" create -q -f qcow2 -b s.qcow2 -F qcow2 small-top.qcow2 1M || fail "overlay"
sum=$(sha s.qcow2)
"$SCIMG" resize small-top.qcow2 4M 2>/dev/null; [ $? -eq 2 ] || fail "larger backing file must be refused"
$T "$SCIMG" create -q -f qcow2 -b r.raw -F raw ov.qcow2 || fail "overlay of 4M raw"
$T "$SCIMG" resize ov.qcow2 64M >/dev/null || fail "grow overlay"
[ "$(vsize ov.qcow2)" = 67108864 ] || fail "overlay size"
$T "$Q" check ov.qcow2 >/dev/null || fail "check overlay"
$T "$Q" compare -f qcow2 -F raw ov.qcow2 r.raw >/dev/null || fail "overlay data"
[ "$(sha s.qcow2)" = "$sum" ] || fail "a backing file was written"
echo ok
