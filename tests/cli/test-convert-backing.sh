#!/bin/sh
# convert -B BACKING -F FMT (and -o backing_file=,backing_fmt=), against
# qemu-img: the output names the backing file as given, reads as the
# source (qemu-img compare), is clean (qemu-img check) and holds only the
# clusters that differ from the backing file (qemu-img map).  -F is
# required as with qemu-img 7.2; the output is never the backing file or a
# file of its chain; formats without backing files are refused.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
Q=$QEMU_IMG
T="timeout 120"
cd "$TMPD" || fail "cd"

# base: 8 MiB with data at 0-2M and 4-6M; source: base with one changed
# cluster, one zeroed cluster over base data, new data in a hole
make_mixed_raw base.raw 8
dd if=/dev/urandom of=base.raw bs=1M count=2 conv=notrunc status=none
dd if=/dev/urandom of=base.raw bs=1M count=2 seek=4 conv=notrunc status=none
$T "$SCIMG" convert -q -f raw -O qcow2 base.raw base.qcow2 || fail "base"
cp base.raw src.raw
dd if=/dev/urandom of=src.raw bs=64K count=1 seek=3 conv=notrunc status=none
dd if=/dev/zero of=src.raw bs=64K count=1 seek=70 conv=notrunc status=none
dd if=/dev/urandom of=src.raw bs=64K count=1 seek=40 conv=notrunc status=none

# allocated bytes of the top layer of IMG (qemu-img map, depth 0, data)
top_data() {
  $T "$Q" map --output=json "$1" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["depth"] == 0 and e["data"]))'
}

for opts in "" "-o compat=0.10" "-c" "-o cluster_size=4096"; do
  rm -f out.qcow2
  # shellcheck disable=SC2086
  $T "$SCIMG" convert -q -f raw -O qcow2 $opts -B base.qcow2 -F qcow2 src.raw out.qcow2 ||
    fail "convert -B ($opts)"
  $T "$Q" compare -f raw -F qcow2 src.raw out.qcow2 >/dev/null || fail "content ($opts)"
  $T "$Q" check out.qcow2 >/dev/null || fail "qemu-img check ($opts)"
  $T "$Q" info --output=json out.qcow2 > info
  grep -q '"backing-filename": "base.qcow2"' info || fail "backing name ($opts): $(cat info)"
  grep -q '"backing-filename-format": "qcow2"' info || fail "backing format ($opts)"
  # two data clusters differ (the zeroed one is a zero cluster, or one
  # cluster of zeros in version 2): at most three clusters of data
  d=$(top_data out.qcow2)
  cs=65536; [ "$opts" = "-o cluster_size=4096" ] && cs=4096
  [ "$d" -le $((3 * 65536)) ] || fail "output holds $d bytes of data ($opts)"
  [ "$d" -ge $((2 * cs)) ] || fail "output holds only $d bytes of data ($opts)"
  "$SCIMG" compare src.raw out.qcow2 >/dev/null || fail "scimg compare ($opts)"
done
# the zeroed cluster over backing data is a zero cluster (v3)
$T "$SCIMG" convert -q -f raw -O qcow2 -B base.qcow2 -F qcow2 src.raw z.qcow2 || fail "z"
$T "$Q" map --output=json z.qcow2 | grep '"start": 4587520' | grep -q '"depth": 0, "present": true, "zero": true' ||
  fail "zero cluster: $($Q map --output=json z.qcow2)"

# -o backing_file=,backing_fmt= is the same; -B and -o must agree
$T "$SCIMG" convert -q -f raw -O qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 src.raw o.qcow2 ||
  fail "-o backing_file"
$T "$Q" compare -f raw src.raw o.qcow2 >/dev/null || fail "-o content"
cmp -s o.qcow2 z.qcow2 || fail "-o and -B outputs differ"
"$SCIMG" convert -q -f raw -O qcow2 -B base.qcow2 -F qcow2 -o backing_file=other src.raw x.qcow2 2>err
[ $? -eq 2 ] || fail "disagreeing -B and -o"
grep -q disagree err || fail "message: $(cat err)"

# a relative name is relative to the output's directory, stored as given
mkdir sub && cp base.qcow2 sub/b.qcow2
$T "$SCIMG" convert -q -f raw -O qcow2 -B b.qcow2 -F qcow2 src.raw sub/r.qcow2 || fail "relative"
$T "$Q" info --output=json sub/r.qcow2 | grep -q '"backing-filename": "b.qcow2"' || fail "relative name"
$T "$Q" compare -f raw src.raw sub/r.qcow2 >/dev/null || fail "relative content"
"$SCIMG" convert -q -f raw -O qcow2 -B base.qcow2 -F qcow2 src.raw sub/x.qcow2 2>err
[ $? -eq 2 ] || fail "sub/base.qcow2 does not exist"
[ -e sub/x.qcow2 ] && fail "output left behind"

# a backing file of another format, with a different size: raw, 4 MiB
head -c 4M base.raw > short.raw
$T "$SCIMG" convert -q -f raw -O qcow2 -B short.raw -F raw src.raw s.qcow2 || fail "raw backing"
$T "$Q" compare -f raw src.raw s.qcow2 >/dev/null || fail "raw backing content"
$T "$Q" check s.qcow2 >/dev/null || fail "raw backing check"

# a source that is itself an overlay of the backing file
cp base.raw one.raw
dd if=/dev/urandom of=one.raw bs=64K count=1 seek=16 conv=notrunc status=none
$T "$Q" create -q -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2 || fail "overlay"
$T "$Q" convert -n -f raw -O qcow2 one.raw ov.qcow2 || fail "fill the overlay"
$T "$SCIMG" convert -q -O qcow2 -B base.qcow2 -F qcow2 ov.qcow2 ov2.qcow2 || fail "overlay source"
$T "$Q" compare ov.qcow2 ov2.qcow2 >/dev/null || fail "overlay content"
[ "$(top_data ov2.qcow2)" -eq 65536 ] || fail "overlay copy holds more than the changed cluster"

# -F is required (qemu-img 7.2: "Use of backing file requires explicit
# backing format"), and checked
"$SCIMG" convert -q -f raw -O qcow2 -B base.qcow2 src.raw x.qcow2 2>err
[ $? -eq 2 ] || fail "-B without -F"
grep -q 'explicit backing format' err || fail "message: $(cat err)"
"$SCIMG" convert -q -f raw -O qcow2 -B base.qcow2 -F nosuch src.raw x.qcow2 2>/dev/null
[ $? -eq 2 ] || fail "unknown -F"
"$SCIMG" convert -q -f raw -O qcow2 -F qcow2 src.raw x.qcow2 2>/dev/null
[ $? -eq 2 ] || fail "-F without -B"
"$SCIMG" convert -q -f raw -O qcow2 -B base.raw -F qcow2 src.raw x.qcow2 2>/dev/null
[ $? -eq 2 ] || fail "-F qcow2 on a raw file"
[ -e x.qcow2 ] && fail "output left behind"

# never the backing file or a file of its chain; never a FIFO
cp base.qcow2 keep.qcow2
"$SCIMG" convert -q -f raw -O qcow2 -B base.qcow2 -F qcow2 src.raw base.qcow2 2>err
[ $? -eq 2 ] || fail "output = backing file"
grep -q 'backing file' err || fail "message: $(cat err)"
"$SCIMG" convert -q -f raw -O qcow2 -B ov.qcow2 -F qcow2 src.raw base.qcow2 2>/dev/null
[ $? -eq 2 ] || fail "output = backing file of the backing file"
cmp -s base.qcow2 keep.qcow2 || fail "backing file changed"
mkfifo fifo
$T "$SCIMG" convert -q -f raw -O qcow2 -B fifo -F raw src.raw x.qcow2 2>/dev/null
[ $? -eq 2 ] || fail "FIFO backing file"

# not into an existing target (-n), not as a Supercloud image
cp z.qcow2 n.qcow2
"$SCIMG" convert -q -n -f raw -O qcow2 -B base.qcow2 -F qcow2 src.raw n.qcow2 2>/dev/null
[ $? -eq 2 ] || fail "-n -B"
cmp -s z.qcow2 n.qcow2 || fail "-n -B changed the target"
"$SCIMG" convert -q -f raw -O sci -B base.qcow2 -F qcow2 src.raw x.sci 2>/dev/null
[ $? -eq 2 ] || fail "-O sci -B"
[ -e x.sci ] && fail "sci output left behind"

# formats without backing files
for f in raw vmdk vpc vhdx; do
  "$SCIMG" convert -q -f raw -O $f -B base.qcow2 -F qcow2 src.raw x.$f 2>err
  [ $? -eq 2 ] || fail "-O $f -B"
  grep -q 'only qcow2' err || fail "message: $(cat err)"
done
"$SCIMG" convert --help | grep -q -- '--backing=BACKING' || fail "help"
echo ok
