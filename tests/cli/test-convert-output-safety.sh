#!/bin/sh
# The output path never destroys what the user owns: a DST that is the
# input or a file the input reads from (through hard and symbolic links,
# backing files, data files, extents, companion files) is refused before
# anything is written; device nodes, FIFOs and directories are refused up
# front; a block device is written in place; a killed conversion leaves
# nothing; -n writes into an existing target.  Every input stays
# byte-identical.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
requires timeout sha256sum
cd "$TMPD" || fail "cd"

make_mixed_raw base.raw 4
"$QEMU_IMG" convert -q -f raw -O qcow2 base.raw base.qcow2 || fail "qemu-img base"
# overlay with a relative backing name
"$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2 || fail "qemu-img overlay"
"$QEMU_IMG" info overlay.qcow2 | grep -q "^backing file: base.qcow2$" || fail "overlay backing name is not relative"
"$QEMU_IMG" convert -q -f raw -O vmdk -o subformat=monolithicFlat base.raw flat.vmdk ||
  fail "qemu-img monolithicFlat"
[ -f flat-flat.vmdk ] || fail "no flat extent flat-flat.vmdk"
have_df=0
if "$QEMU_IMG" create -q -f qcow2 -o data_file=df.data df.qcow2 4M 2>/dev/null; then
  have_df=1
  "$QEMU_IMG" convert -q -n -f raw -O qcow2 base.raw df.qcow2 || fail "fill df.qcow2"
fi

inputs="base.raw base.qcow2 overlay.qcow2 flat.vmdk flat-flat.vmdk"
[ $have_df -eq 1 ] && inputs="$inputs df.qcow2 df.data"
for f in $inputs; do sha "$f" > "$f.sha"; done
check_inputs() { # WHAT
  for f in $inputs; do
    [ "$(sha "$f")" = "$(cat "$f.sha")" ] || fail "$1: input $f changed"
    [ -f "$f" ] && [ ! -L "$f" ] || fail "$1: input $f is no longer a regular file"
  done
}
# refused SRC DST PATTERN [convert options]: exit 2, message matches
refused() {
  s=$1 d=$2 pat=$3; shift 3
  timeout 60 "$SCIMG" convert "$@" "$s" "$d" 2>err; rc=$?
  [ $rc -eq 2 ] || fail "convert $* $s $d: exit $rc, expected a refusal (2): $(cat err)"
  grep -q -- "$pat" err || fail "convert $* $s $d: message lacks '$pat': $(cat err)"
  check_inputs "convert $* $s $d"
  ls -A | grep -q 'scimg-' && fail "convert $* $s $d left a temporary file: $(ls -A)"
  return 0
}
msg="is the input or a file the input reads from"

# DST == SRC, through a hard link, through a symbolic link
refused base.qcow2 base.qcow2 "$msg" -O raw
refused base.qcow2 base.qcow2 "'base.qcow2' $msg ('base.qcow2'); refusing to overwrite it" -O qcow2
ln base.qcow2 hard.qcow2
refused base.qcow2 hard.qcow2 "'hard.qcow2' $msg" -O raw
ln -s base.qcow2 sym.qcow2
refused base.qcow2 sym.qcow2 "$msg" -O raw
[ -L sym.qcow2 ] || fail "the symbolic link was replaced"
rm -f hard.qcow2
# DST == the overlay's backing file (and via a symlink to it)
refused overlay.qcow2 base.qcow2 "'base.qcow2' $msg ('overlay.qcow2')" -O raw
refused overlay.qcow2 sym.qcow2 "$msg" -O qcow2
# DST == a qcow2 external data file
if [ $have_df -eq 1 ]; then
  refused df.qcow2 df.data "'df.data' $msg ('df.qcow2')" -O raw
else
  echo "note: qemu-img cannot make data_file images; case skipped"
fi
# DST == a monolithicFlat VMDK's flat extent
refused flat.vmdk flat-flat.vmdk "'flat-flat.vmdk' $msg ('flat.vmdk')" -O raw
# ... and a companion file of the output: writing monolithicFlat out.vmdk
# from a copy of flat.vmdk would replace flat-flat.vmdk
cp flat.vmdk copy.vmdk
refused copy.vmdk flat.vmdk "'flat-flat.vmdk' $msg ('copy.vmdk')" -O vmdk -o subformat=monolithicFlat
rm -f copy.vmdk
# convert -O sci and inject-drivers -O check before any work
refused overlay.qcow2 base.qcow2 "$msg" -O sci -o guest=skip
timeout 60 "$SCIMG" inject-drivers -O qcow2 overlay.qcow2 base.qcow2 2>err; rc=$?
[ $rc -ne 0 ] || fail "inject-drivers -O over the backing file succeeded"
grep -q "$msg" err || fail "inject-drivers: message: $(cat err)"
check_inputs "inject-drivers"

# a FIFO target: refused without opening it (no hang), still a FIFO
mkfifo fifo
refused base.raw fifo "'fifo' is a FIFO; refusing" -f raw -O raw
[ -p fifo ] || fail "the FIFO was replaced"

# a directory DST is refused at once, before a slow conversion starts
truncate -s 8G huge.raw
mkdir outdir
start=$(date +%s)
refused huge.raw outdir "'outdir' is a directory, and format 'raw' writes one file" -f raw -O raw -S 0
refused huge.raw outdir/ "directory" -f raw -O qcow2 -S 0
[ $(( $(date +%s) - start )) -le 10 ] || fail "directory DST was not refused at once"
[ -z "$(ls -A outdir)" ] || fail "files left in outdir: $(ls -A outdir)"

# SIGKILL mid-way leaves nothing, not even a hidden file
mkdir killdir
"$SCIMG" convert -S 0 -f raw -O raw huge.raw killdir/out.raw 2>err &
pid=$!
wait_for_temp "$TMPD/killdir" $pid
sleep 0.3
kill -KILL $pid
wait $pid; rc=$?
[ $rc -eq 137 ] || fail "SIGKILL: convert exited $rc (finished before the signal?)"
[ -z "$(ls -A killdir)" ] || fail "SIGKILL left files behind: $(ls -A killdir)"

# where the file system has no O_TMPFILE (the fault library fails it), a
# hidden named temporary file is used: removed on SIGTERM, renamed on success
lib="$top_builddir/tests/fault/.libs/libeio.so"
if [ -z "${SCIMG_SANITIZERS:-}" ] && [ -f "$lib" ]; then
  SCIMG_FAULT_NO_TMPFILE=1 LD_PRELOAD="$lib" \
    "$SCIMG" convert -S 0 -f raw -O raw huge.raw killdir/out.raw 2>err &
  pid=$!
  wait_for_temp "$TMPD/killdir" $pid
  ls -A killdir | grep -q '^\.out\.raw\.scimg-' || fail "no named temporary file without O_TMPFILE: $(ls -A killdir)"
  kill -TERM $pid
  wait $pid; rc=$?
  [ $rc -ne 0 ] || fail "SIGTERM: convert finished before the signal"
  [ -z "$(ls -A killdir)" ] || fail "SIGTERM without O_TMPFILE left files behind: $(ls -A killdir)"
  SCIMG_FAULT_NO_TMPFILE=1 LD_PRELOAD="$lib" \
    timeout 60 "$SCIMG" convert -O raw overlay.qcow2 killdir/out.raw || fail "convert without O_TMPFILE"
  cmp -s killdir/out.raw base.raw || fail "without O_TMPFILE: content differs"
  [ "$(ls -A killdir)" = out.raw ] || fail "without O_TMPFILE: left $(ls -A killdir)"
  rm -f killdir/out.raw
else
  echo "note: no fault library (or sanitizer build): named-temporary fallback not tested"
fi
rm -f huge.raw

# -n into an existing raw file: written in place (same inode), tail kept
head -c 6291456 /dev/urandom > target.raw
tail -c 2097152 target.raw | sha256sum > tail.sha
ino=$(stat -c %i target.raw)
timeout 60 "$SCIMG" convert -n -O raw overlay.qcow2 target.raw || fail "-n into a raw file"
[ "$(stat -c %i target.raw)" = "$ino" ] || fail "-n replaced the target instead of writing in place"
[ "$(stat -c %s target.raw)" = 6291456 ] || fail "-n changed the target's size"
head -c 4194304 target.raw | cmp -s - base.raw || fail "-n: content differs"
tail -c 2097152 target.raw | sha256sum | cmp -s - tail.sha || fail "-n: the tail past the virtual size changed"
# --target-is-zero: zero ranges are skipped (a non-zero target shows it)
head -c 4194304 /dev/urandom > nz.raw
timeout 60 "$SCIMG" convert -n --target-is-zero -O raw overlay.qcow2 nz.raw || fail "--target-is-zero"
cmp -s nz.raw base.raw && fail "--target-is-zero wrote zeros anyway"
truncate -s 4M zero.raw
timeout 60 "$SCIMG" convert -n --target-is-zero -O raw overlay.qcow2 zero.raw || fail "--target-is-zero on zeros"
cmp -s zero.raw base.raw || fail "--target-is-zero: content differs"
refused overlay.qcow2 zero.raw "needs -n" -O raw --target-is-zero
# -n refusals: missing target, too small, a format not updated in place
refused overlay.qcow2 missing.raw "'missing.raw' does not exist" -n -O raw
[ -e missing.raw ] && fail "-n created the target"
head -c 1048576 /dev/urandom > small.raw
refused overlay.qcow2 small.raw "holds only 1048576" -n -O raw
refused overlay.qcow2 target.raw "cannot be updated in place" -n -O qcow2
refused overlay.qcow2 base.qcow2 "$msg" -n -O raw

check_inputs "end of unprivileged cases"

# ---- device nodes: need root (mknod, losetup) ------------------------
if ! mknod chr c 1 3 2>/dev/null; then
  skip "mknod not permitted: device cases not run (the others passed)"
fi
refused base.raw chr "'chr' is a character device; refusing" -f raw -O raw
[ -c chr ] || fail "the character device was replaced"
refused base.raw chr "character device" -f raw -O raw -n

requires losetup
truncate -s 8M loop.img
loopdev=$(losetup -f --show loop.img 2>/dev/null) || skip "losetup failed: block device cases not run"
detach() { losetup -d "$loopdev" 2>/dev/null; }
cleanup_fns="$cleanup_fns detach"
[ -b "$loopdev" ] || fail "no block device $loopdev"
# garbage first: the device must read back exactly the image, zeros included
dd if=/dev/urandom of="$loopdev" bs=1M count=8 status=none conv=fsync || fail "fill $loopdev"
timeout 60 "$SCIMG" convert -O raw overlay.qcow2 "$loopdev" || fail "convert to $loopdev"
[ -b "$loopdev" ] || fail "$loopdev is no longer a block device"
head -c 4194304 "$loopdev" | cmp -s - base.raw || fail "$loopdev: content differs"
"$SCIMG" compare -f raw "$loopdev" base.raw >/dev/null 2>&1 && fail "compare saw no difference past the virtual size"
# qcow2 onto the device, read back through scimg and qemu-img
timeout 60 "$SCIMG" convert -O qcow2 base.raw "$loopdev" || fail "qcow2 to $loopdev"
"$SCIMG" compare -f qcow2 "$loopdev" base.raw >/dev/null || fail "$loopdev: qcow2 content differs"
"$QEMU_IMG" compare -f qcow2 -F raw "$loopdev" base.raw >/dev/null || fail "qemu-img reads the qcow2 on $loopdev differently"
# -n into the device; too small; a format that cannot live on a device
timeout 60 "$SCIMG" convert -n -O raw overlay.qcow2 "$loopdev" || fail "-n to $loopdev"
head -c 4194304 "$loopdev" | cmp -s - base.raw || fail "-n $loopdev: content differs"
truncate -s 16M big.raw
refused big.raw "$loopdev" "holds only 8388608" -f raw -O raw
refused base.raw "$loopdev" "cannot be written to one" -f raw -O vmdk
[ -b "$loopdev" ] || fail "$loopdev is no longer a block device"
# the loop device's backing file is the input
refused loop.img "$loopdev" "loop device over" -f raw -O raw
check_inputs "end"
echo ok
