#!/bin/sh
# rebase without -u (safe mode), against qemu-img: the image reads the same
# before and after (qemu-img compare), is clean (qemu-img check), names the
# new backing file, and holds as many clusters as qemu-img rebase gives it;
# -b "" makes it standalone; small clusters and 1-bit refcounts make it add
# L2 tables and refcount blocks; an interruption (a full file system, a
# kill) leaves it reading as before; snapshots, loops, a missing -F and a
# FIFO are refused with the image unchanged.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
Q=$QEMU_IMG
T="timeout 300"
cd "$TMPD" || fail "cd"

# old backing: random data in the first 2 MiB and at 4-6 MiB;
# new backing: the same with changes, and data where the old has holes
make_mixed_raw old.raw 8
dd if=/dev/urandom of=old.raw bs=1M count=2 conv=notrunc status=none
dd if=/dev/urandom of=old.raw bs=1M count=2 seek=4 conv=notrunc status=none
cp old.raw new.raw
dd if=/dev/urandom of=new.raw bs=64K count=3 seek=5 conv=notrunc status=none
dd if=/dev/zero of=new.raw bs=64K count=2 seek=70 conv=notrunc status=none
dd if=/dev/urandom of=new.raw bs=64K count=2 seek=100 conv=notrunc status=none
$T "$Q" convert -f raw -O qcow2 old.raw old.qcow2 || fail "old"
$T "$Q" convert -f raw -O qcow2 new.raw new.qcow2 || fail "new"

# TOP: an overlay of old.qcow2 with its own data in two clusters (made by
# convert -B, tested in test-convert-backing.sh), reading as top.raw
mk_top() {
  rm -f "$1" top.raw
  cp old.raw top.raw
  dd if=/dev/urandom of=top.raw bs=64K count=1 seek=48 conv=notrunc status=none
  dd if=/dev/urandom of=top.raw bs=64K count=1 seek=96 conv=notrunc status=none
  # shellcheck disable=SC2086
  $T "$SCIMG" convert -q -f raw -O qcow2 $2 -B old.qcow2 -F qcow2 top.raw "$1" || fail "top $1"
}

for o in "" "-o compat=0.10" "-o cluster_size=512,refcount_bits=1" "-o cluster_size=4096,refcount_bits=64"; do
  mk_top top.qcow2 "$o"
  cp top.qcow2 ref.qcow2
  $T "$SCIMG" rebase -q -b new.qcow2 -F qcow2 top.qcow2 || fail "rebase ($o)"
  $T "$Q" compare -F raw top.qcow2 top.raw >/dev/null || fail "content changed ($o)"
  $T "$Q" check top.qcow2 >/dev/null || fail "qemu-img check ($o): $($Q check top.qcow2)"
  $T "$Q" info --output=json top.qcow2 > info
  grep -q '"backing-filename": "new.qcow2"' info || fail "backing name ($o)"
  grep -q '"backing-filename-format": "qcow2"' info || fail "backing format ($o)"
  # as many allocated clusters as qemu-img rebase
  $T "$Q" rebase -b new.qcow2 -F qcow2 ref.qcow2 || fail "qemu-img rebase ($o)"
  a=$($T "$Q" check --output=json top.qcow2 | sed -n 's/.*"allocated-clusters": \([0-9]*\).*/\1/p')
  b=$($T "$Q" check --output=json ref.qcow2 | sed -n 's/.*"allocated-clusters": \([0-9]*\).*/\1/p')
  [ -n "$a" ] && [ "$a" -le "$b" ] || fail "allocated clusters ($o): scimg $a, qemu-img $b"
  # standalone
  $T "$SCIMG" rebase -q -b "" top.qcow2 || fail "rebase -b '' ($o)"
  $T "$Q" info --output=json top.qcow2 | grep -q backing && fail "still a backing file ($o)"
  $T "$Q" compare -F raw top.qcow2 top.raw >/dev/null || fail "standalone content ($o)"
  $T "$Q" check top.qcow2 >/dev/null || fail "standalone check ($o)"
done

# a new backing file in another directory, named relative to the image
# (d/top.qcow2 names old.qcow2 relative to d/)
mkdir d && cp new.qcow2 d/n.qcow2 && cp old.qcow2 d/old.qcow2 && mk_top d/top.qcow2 ""
$T "$SCIMG" rebase -q -b n.qcow2 -F qcow2 d/top.qcow2 || fail "relative"
$T "$Q" info --output=json d/top.qcow2 | grep -q '"backing-filename": "n.qcow2"' || fail "relative name"
$T "$Q" compare -F raw d/top.qcow2 top.raw >/dev/null || fail "relative content"

# refusals leave the image unchanged
mk_top top.qcow2 ""
cp top.qcow2 keep.qcow2
"$SCIMG" rebase -b new.qcow2 top.qcow2 2>err; [ $? -eq 2 ] || fail "no -F"
grep -q 'backing format must be specified' err || fail "message: $(cat err)"
"$SCIMG" rebase -b top.qcow2 -F qcow2 top.qcow2 2>/dev/null; [ $? -eq 2 ] || fail "loop on itself"
$T "$Q" create -q -f qcow2 -b top.qcow2 -F qcow2 above.qcow2 || fail "above"
"$SCIMG" rebase -b above.qcow2 -F qcow2 top.qcow2 2>err; [ $? -eq 2 ] || fail "loop through a chain"
mkfifo fifo
$T "$SCIMG" rebase -b fifo -F raw top.qcow2 2>/dev/null; [ $? -eq 2 ] || fail "FIFO"
"$SCIMG" rebase -b new.raw -F qcow2 top.qcow2 2>/dev/null; [ $? -eq 2 ] || fail "wrong -F"
cmp -s top.qcow2 keep.qcow2 || fail "a refused rebase changed the image"
$T "$Q" snapshot -c s1 top.qcow2 || fail "snapshot"
cp top.qcow2 keep.qcow2
"$SCIMG" rebase -b new.qcow2 -F qcow2 top.qcow2 2>err; [ $? -eq 2 ] || fail "snapshots"
grep -q 'snapshots' err || fail "message: $(cat err)"
cmp -s top.qcow2 keep.qcow2 || fail "refused rebase (snapshots) changed the image"

# interrupted: killed at several points, the image reads as before and
# has no errors (leaked clusters are allowed: exit 0 or 3)
head -c 32M /dev/urandom > big.raw
$T "$Q" convert -f raw -O qcow2 -o cluster_size=4096 big.raw bigold.qcow2 || fail "bigold"
$T "$Q" create -q -f qcow2 -o cluster_size=4096 -b bigold.qcow2 -F qcow2 bigtop.qcow2 || fail "bigtop"
for d in 0.05 0.2 0.5 1; do
  cp bigtop.qcow2 k.qcow2
  "$SCIMG" rebase -b "" k.qcow2 2>/dev/null &
  pid=$!
  sleep $d
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  $T "$Q" compare -F raw k.qcow2 big.raw >/dev/null || fail "killed after ${d}s: content changed"
  $T "$Q" check k.qcow2 >/dev/null 2>&1; rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "killed after ${d}s: qemu-img check exit $rc"
done
# a file system that fills up mid-way (root only)
if [ "$(id -u)" = 0 ] && mkdir mnt && mount -t tmpfs -o size=48m tmpfs mnt 2>/dev/null; then
  umount_mnt() { umount "$TMPD/mnt" 2>/dev/null; }
  cleanup_fns="umount_mnt $cleanup_fns"
  cp bigold.qcow2 bigtop.qcow2 mnt/
  "$SCIMG" rebase -b "" mnt/bigtop.qcow2 2>err; [ $? -eq 2 ] || fail "ENOSPC: rebase succeeded"
  grep -q 'No space left' err || fail "ENOSPC message: $(cat err)"
  $T "$Q" info --output=json mnt/bigtop.qcow2 | grep -q '"backing-filename": "bigold.qcow2"' ||
    fail "ENOSPC: backing name changed"
  $T "$Q" compare -F raw mnt/bigtop.qcow2 big.raw >/dev/null || fail "ENOSPC: content changed"
  $T "$Q" check mnt/bigtop.qcow2 >/dev/null 2>&1; rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "ENOSPC: qemu-img check exit $rc"
  umount_mnt
fi
"$SCIMG" rebase --help | grep -q 'Safe mode' || fail "help"
echo ok
