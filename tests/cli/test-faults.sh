#!/bin/sh
# Faults: a full output filesystem and a read error in the middle of the
# input are reported cleanly (file, offset, reason) and leave nothing behind.
. "$(dirname "$0")/functions.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small filesystem"

make_mixed_raw "$TMPD/in.raw" 16
head -c 12M /dev/urandom | dd of="$TMPD/in.raw" conv=notrunc status=none

# 1. output filesystem fills up
mnt="$TMPD/small"; mkdir "$mnt"
mount -t tmpfs -o size=4m tmpfs "$mnt" 2>/dev/null || skip "cannot mount tmpfs"
umount_small() { umount "$mnt" 2>/dev/null; }
cleanup_fns="umount_small $cleanup_fns"
"$SCIMG" convert -f raw -O raw "$TMPD/in.raw" "$mnt/out.raw" 2>"$TMPD/err"; rc=$?
[ $rc -eq 2 ] || fail "ENOSPC: exit $rc"
grep -q "No space left on device" "$TMPD/err" || fail "ENOSPC: message: $(cat "$TMPD/err")"
grep -q "offset" "$TMPD/err" || fail "ENOSPC: no offset in: $(cat "$TMPD/err")"
[ -z "$(ls -A "$mnt")" ] || fail "ENOSPC left files behind: $(ls -A "$mnt")"
# every format that can be written (the registry: a new one is tested too)
writable=$(formats write) || exit 1
for f in $writable; do
  timeout 300 "$SCIMG" convert -f raw -O "$f" $(fmt_wopts "$f") "$TMPD/in.raw" "$mnt/out.$f" 2>"$TMPD/err"; rc=$?
  [ $rc -eq 2 ] || fail "ENOSPC $f: exit $rc: $(cat "$TMPD/err")"
  grep -q "No space left on device" "$TMPD/err" || fail "ENOSPC $f: message: $(cat "$TMPD/err")"
  [ -z "$(ls -A "$mnt")" ] || fail "ENOSPC $f left files behind: $(ls -A "$mnt")"
done
echo "ENOSPC: $(echo $writable)"

# 2. read error mid-way: pread fails with EIO from 4 MiB on (LD_PRELOAD)
[ -z "${SCIMG_SANITIZERS:-}" ] || { echo "sanitizer build: read-error part skipped (preload)"; exit 0; }
lib="$top_builddir/tests/fault/.libs/libeio.so"
[ -f "$lib" ] || fail "fault library not built"
real=$(readlink -f "$TMPD/in.raw")
SCIMG_FAULT_PATH="$real" SCIMG_FAULT_OFFSET=4194304 LD_PRELOAD="$lib" \
  "$SCIMG" convert -f raw -O raw "$TMPD/in.raw" "$TMPD/out-eio.raw" 2>"$TMPD/err"; rc=$?
[ $rc -eq 2 ] || fail "read error: exit $rc"
grep -q "read error at offset 4194304: Input/output error" "$TMPD/err" || fail "read error message: $(cat "$TMPD/err")"
[ ! -e "$TMPD/out-eio.raw" ] || fail "read error left output"
ls -A "$TMPD" | grep -q '\.scimg-' && fail "temporary file left: $(ls -A "$TMPD")"
echo ok
