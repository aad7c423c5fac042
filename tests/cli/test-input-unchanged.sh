#!/bin/sh
# The input is never written: after every command, each input image (one per
# writable format) has the same SHA-256 and mtime, and was never opened for
# writing (checked with a read-only bind of the input directory when root).
. "$(dirname "$0")/functions.sh"

make_mixed_raw "$TMPD/seed.raw" 8
mkdir "$TMPD/in" "$TMPD/out"
for f in $FORMATS_WRITABLE; do
  "$SCIMG" convert -f raw -O "$f" "$TMPD/seed.raw" "$TMPD/in/img.$f" || fail "make $f input"
done
touch -d '2001-02-03 04:05:06' "$TMPD/in"/*
sha256sum "$TMPD/in"/* > "$TMPD/before"
stat -c '%n %Y' "$TMPD/in"/* >> "$TMPD/before"

ro=""
if [ "$(id -u)" = 0 ] && mount --bind -o ro "$TMPD/in" "$TMPD/in" 2>/dev/null; then
  mount -o remount,bind,ro "$TMPD/in" 2>/dev/null
  ro=1
  unbind() { umount "$TMPD/in" 2>/dev/null; }
  cleanup_fns="unbind $cleanup_fns"
fi

for f in $FORMATS_WRITABLE; do
  in="$TMPD/in/img.$f"
  "$SCIMG" info "$in" >/dev/null || fail "info $f"
  "$SCIMG" info --output=json "$in" >/dev/null || fail "info json $f"
  "$SCIMG" compare "$in" "$TMPD/seed.raw" >/dev/null || fail "compare $f"
  for g in $FORMATS_WRITABLE; do
    "$SCIMG" convert -O "$g" "$in" "$TMPD/out/x.$g" || fail "convert $f -> $g"
    "$SCIMG" convert -c -O "$g" "$in" "$TMPD/out/c.$g" 2>/dev/null
  done
  if "$SCIMG" --help | grep -q '^  check '; then
    "$SCIMG" check "$in" >/dev/null 2>&1
  fi
done
[ -n "$ro" ] && umount "$TMPD/in"
sha256sum "$TMPD/in"/* > "$TMPD/after"
stat -c '%n %Y' "$TMPD/in"/* >> "$TMPD/after"
cmp -s "$TMPD/before" "$TMPD/after" || { diff "$TMPD/before" "$TMPD/after"; fail "an input changed"; }
echo "ok (read-only bind: ${ro:-no})"
