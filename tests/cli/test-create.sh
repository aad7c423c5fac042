#!/bin/sh
# create: every writable format; qcow2 overlays (-b/-F, -o backing_file=),
# compat=0.10; checked with qemu-img check/info/compare.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
Q=$QEMU_IMG
T="timeout 120"

# empty images in each format scimg writes that qemu-img reads
for spec in raw:raw qcow2:qcow2 vmdk:vmdk vhd:vpc vhdx:vhdx; do
  f=${spec%%:*} q=${spec#*:}
  $T "$SCIMG" create -q -f "$f" "$TMPD/e.$f" 64M || fail "create -f $f"
  $T "$Q" info -f "$q" --output=json "$TMPD/e.$f" > "$TMPD/info" || fail "qemu-img info $f"
  grep -q '"virtual-size": 67108864' "$TMPD/info" || fail "$f size: $(cat "$TMPD/info")"
  truncate -s 64M "$TMPD/zero.raw"
  $T "$Q" compare -f "$q" -F raw "$TMPD/e.$f" "$TMPD/zero.raw" >/dev/null || fail "$f does not read as zeros"
  rm -f "$TMPD/zero.raw"
done
$T "$Q" check "$TMPD/e.qcow2" >/dev/null || fail "qemu-img check of an empty qcow2"
[ "$($T "$SCIMG" create -q -f raw "$TMPD/s.raw" 1G && stat -c %s "$TMPD/s.raw")" = 1073741824 ] || fail "1G suffix"

# overlay with a relative backing name: stored as given, reads as the base
mkdir -p "$TMPD/d"
make_mixed_raw "$TMPD/d/base.raw" 8
$T "$SCIMG" convert -f raw -O qcow2 "$TMPD/d/base.raw" "$TMPD/d/base.qcow2" || fail "convert base"
$T "$SCIMG" create -f qcow2 -b base.qcow2 -F qcow2 "$TMPD/d/top.qcow2" > "$TMPD/out" || fail "create -b"
grep -q "^Formatting '$TMPD/d/top.qcow2', fmt=qcow2 size=8388608" "$TMPD/out" || fail "formatting line: $(cat "$TMPD/out")"
$T "$Q" info --output=json "$TMPD/d/top.qcow2" > "$TMPD/info" || fail "info top"
grep -q '"backing-filename": "base.qcow2"' "$TMPD/info" || fail "backing name not stored as given"
grep -q '"backing-filename-format": "qcow2"' "$TMPD/info" || fail "backing format"
grep -q '"virtual-size": 8388608' "$TMPD/info" || fail "size defaults to the backing file's"
$T "$Q" check "$TMPD/d/top.qcow2" >/dev/null || fail "check top"
$T "$Q" compare "$TMPD/d/top.qcow2" "$TMPD/d/base.raw" >/dev/null || fail "overlay content (qemu)"
$T "$SCIMG" compare "$TMPD/d/top.qcow2" "$TMPD/d/base.raw" >/dev/null || fail "overlay content (scimg)"

# the same through -o, compat=0.10 and an explicit larger size
$T "$SCIMG" create -q -f qcow2 -o compat=0.10,backing_file=base.qcow2,backing_fmt=qcow2 \
  "$TMPD/d/v2.qcow2" 16M || fail "create -o backing_file compat=0.10"
$T "$Q" info --output=json "$TMPD/d/v2.qcow2" > "$TMPD/info"
grep -q '"compat": "0.10"' "$TMPD/info" || fail "compat 0.10: $(cat "$TMPD/info")"
grep -q '"virtual-size": 16777216' "$TMPD/info" || fail "explicit size with -b"
$T "$Q" check "$TMPD/d/v2.qcow2" >/dev/null || fail "check v2"
$T "$Q" compare "$TMPD/d/v2.qcow2" "$TMPD/d/base.raw" >/dev/null || fail "v2 overlay content"

# compat=0.10 output of a conversion is a valid version 2 image with the data
$T "$SCIMG" convert -f raw -O qcow2 -o compat=0.10 "$TMPD/d/base.raw" "$TMPD/v2c.qcow2" || fail "convert compat=0.10"
$T "$Q" check "$TMPD/v2c.qcow2" >/dev/null || fail "check converted v2"
$T "$Q" compare "$TMPD/v2c.qcow2" "$TMPD/d/base.raw" >/dev/null || fail "converted v2 content"
od -A n -t x1 -j 4 -N 4 "$TMPD/v2c.qcow2" | grep -q '00 00 00 02' || fail "version field is not 2"
"$SCIMG" convert -f raw -O qcow2 -o compat=0.10,lazy_refcounts=on "$TMPD/d/base.raw" "$TMPD/x.qcow2" 2>/dev/null && fail "lazy refcounts with v2"

# preallocation: every cluster mapped; falloc and full take the space;
# checked by qemu-img check and compared with scimg's raw output
$T "$SCIMG" convert -f raw -O raw "$TMPD/d/base.raw" "$TMPD/ref.raw" || fail "raw reference"
for p in metadata falloc full; do
  $T "$SCIMG" create -q -f qcow2 -o preallocation=$p "$TMPD/p-$p.qcow2" 32M || fail "create preallocation=$p"
  $T "$Q" check "$TMPD/p-$p.qcow2" > "$TMPD/chk" || fail "check preallocation=$p"
  grep -q '512/512 = 100.00% allocated' "$TMPD/chk" || fail "preallocation=$p: $(cat "$TMPD/chk")"
  $T "$SCIMG" convert -f raw -O qcow2 -o preallocation=$p "$TMPD/d/base.raw" "$TMPD/pc-$p.qcow2" || fail "convert preallocation=$p"
  $T "$Q" check "$TMPD/pc-$p.qcow2" > "$TMPD/chk" || fail "check converted preallocation=$p"
  grep -q '128/128 = 100.00% allocated' "$TMPD/chk" || fail "converted preallocation=$p: $(cat "$TMPD/chk")"
  $T "$Q" compare "$TMPD/pc-$p.qcow2" "$TMPD/ref.raw" >/dev/null || fail "preallocation=$p content"
done
[ "$(du -k "$TMPD/p-metadata.qcow2" | cut -f1)" -lt 4096 ] || fail "metadata preallocation allocated the data"
[ "$(du -k "$TMPD/p-full.qcow2" | cut -f1)" -ge 32768 ] || fail "full preallocation did not write the data"
"$SCIMG" create -q -f qcow2 -o preallocation=bogus "$TMPD/pb.qcow2" 1M 2>/dev/null; [ $? -eq 2 ] || fail "bad preallocation"
"$SCIMG" create -q -f qcow2 -o preallocation=full -b base.qcow2 "$TMPD/d/pb.qcow2" 2>/dev/null; [ $? -eq 2 ] || fail "preallocation with a backing file"

# refused: a backing file that does not open (unless -u), -b with raw,
# backing_file in convert, missing size with -u
"$SCIMG" create -q -f qcow2 -b nosuch.qcow2 "$TMPD/d/bad.qcow2" 2>/dev/null; [ $? -eq 2 ] || fail "missing backing must fail"
[ ! -e "$TMPD/d/bad.qcow2" ] || fail "failed create left a file"
$T "$SCIMG" create -q -f qcow2 -u -b nosuch.qcow2 -F qcow2 "$TMPD/d/u.qcow2" 1M || fail "create -u"
$T "$Q" info --output=json -U "$TMPD/d/u.qcow2" 2>/dev/null | grep -q '"backing-filename": "nosuch.qcow2"' || \
  od -c "$TMPD/d/u.qcow2" | grep -q 'n   o   s   u' || fail "-u backing name"
"$SCIMG" create -q -f qcow2 -u -b nosuch.qcow2 "$TMPD/d/u2.qcow2" 2>/dev/null; [ $? -eq 2 ] || fail "-u without size"
"$SCIMG" create -q -f raw -b base.qcow2 "$TMPD/d/r.raw" 2>/dev/null; [ $? -eq 2 ] || fail "raw with -b"
"$SCIMG" convert -f raw -O qcow2 -o backing_file=base.qcow2 "$TMPD/d/base.raw" "$TMPD/d/cv.qcow2" 2>/dev/null && fail "convert with backing_file"
"$SCIMG" create -q -f qcow2 "$TMPD/nosize.qcow2" 2>/dev/null; [ $? -eq 2 ] || fail "no size"
"$SCIMG" create -q -f qcow2 "$TMPD/bad.qcow2" 12Q 2>/dev/null; [ $? -eq 2 ] || fail "bad size"

# -o help: every key with a description
"$SCIMG" create -f qcow2 -o help > "$TMPD/help" || fail "-o help"
for k in cluster_size compat preallocation backing_file backing_fmt; do
  grep -q "^  $k  *[a-z]" "$TMPD/help" || fail "-o help lacks $k"
done
grep -q 'compat .*(default: 1.1)' "$TMPD/help" || fail "-o help default"
echo ok
