#!/bin/sh
# The input is never written: after every command, each input image (one per
# writable format, from the registry) has the same SHA-256 and mtime, and was
# never opened for writing (checked with a read-only bind of the input
# directory when root).
. "$(dirname "$0")/functions.sh"

make_mixed_raw "$TMPD/seed.raw" 8
mkdir "$TMPD/in" "$TMPD/out"
writable=$(formats write) || exit 1
for f in $writable; do
  timeout 300 "$SCIMG" convert -f raw -O "$f" $(fmt_wopts "$f") "$TMPD/seed.raw" "$TMPD/in/img.$f" ||
    fail "make $f input"
done
# a bundle's output is a directory (ami): every file in it
snapshot() {
  find "$TMPD/in" -type f | sort | while read -r p; do sha256sum "$p"; stat -c '%n %Y' "$p"; done
}
find "$TMPD/in" -mindepth 1 -exec touch -d '2001-02-03 04:05:06' {} +
snapshot > "$TMPD/before"

ro=""
if [ "$(id -u)" = 0 ] && mount --bind -o ro "$TMPD/in" "$TMPD/in" 2>/dev/null; then
  mount -o remount,bind,ro "$TMPD/in" 2>/dev/null
  ro=1
  unbind() { umount "$TMPD/in" 2>/dev/null; }
  cleanup_fns="unbind $cleanup_fns"
fi

for f in $writable; do
  in=$(fmt_image "$TMPD/in/img.$f" "$f")
  ropts=$(fmt_ropts "$f")
  "$SCIMG" info $ropts "$in" >/dev/null || fail "info $f"
  "$SCIMG" info $ropts --output=json "$in" >/dev/null || fail "info json $f"
  if [ -z "$ropts" ]; then
    "$SCIMG" compare "$in" "$TMPD/seed.raw" >/dev/null || fail "compare $f"
  else
    # compare takes no reader options (the AMI key): checked through a
    # convert back to raw instead
    "$SCIMG" convert $ropts -O raw "$in" "$TMPD/out/back.raw" || fail "convert $f -> raw"
    "$SCIMG" compare "$TMPD/out/back.raw" "$TMPD/seed.raw" >/dev/null || fail "compare $f"
  fi
  for g in $writable; do
    timeout 300 "$SCIMG" convert $ropts -O "$g" $(fmt_wopts "$g") "$in" "$TMPD/out/x.$g" || fail "convert $f -> $g"
    timeout 300 "$SCIMG" convert $ropts -c -O "$g" $(fmt_wopts "$g") "$in" "$TMPD/out/c.$g" 2>/dev/null
    rm -rf "$TMPD/out/x.$g" "$TMPD/out/c.$g"
  done
  if "$SCIMG" --help | grep -q '^  check '; then
    "$SCIMG" check "$in" >/dev/null 2>&1
  fi
done
[ -n "$ro" ] && umount "$TMPD/in"
snapshot > "$TMPD/after"
cmp -s "$TMPD/before" "$TMPD/after" || { diff "$TMPD/before" "$TMPD/after"; fail "an input changed"; }
echo "ok (read-only bind: ${ro:-no})"
