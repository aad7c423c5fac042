#!/bin/sh
# The vdi plugin: the real-world VDI samples read with the content qemu-img
# sees (images.tsv), the VirtualBox snapshot found its parent by UUID (and is
# refused, naming the parent's UUID, when the parent is absent or not
# allowed), differencing chains built by tests/fixtures/make-vdi.py read as
# expected, raw -> vdi -> raw is bit-exact, and qemu-img accepts our VDIs.
. "$(dirname "$0")/functions.sh"
requires python3

"$SCIMG" --help | grep -q ' vdi(rw)' || fail "vdi plugin not loaded (SCIMG_PLUGIN_PATH=${SCIMG_PLUGIN_PATH:-})"

# 0. Every plugin has a man page; every -o key of vdi is documented.
for d in "$top_srcdir"/plugins/*/; do
  n=$(basename "$d")
  [ -f "$d/scimg-$n.7" ] || fail "plugin $n has no man page plugins/$n/scimg-$n.7"
done
"$SCIMG" convert -O vdi -o help x y > "$TMPD/keys" || fail "-o help for vdi"
for k in $(sed -n 's/^  //p' "$TMPD/keys"); do
  grep -q "^\.BR $k " "$top_srcdir/plugins/vdi/scimg-vdi.7" || fail "vdi option $k not in scimg-vdi.7"
  grep -q "$k" "$top_srcdir/docs/scimg-convert.1" || fail "vdi option $k not in scimg-convert.1"
done

# 1. Differencing chains with known content.
python3 "$top_srcdir/tests/fixtures/make-vdi.py" chain "$TMPD/chain" || fail "make-vdi.py"
c="$TMPD/chain"
for n in base snap1 snap2 fixed; do
  "$SCIMG" compare "$c/$n.vdi" "$c/expected-$n.raw" >/dev/null || fail "$n.vdi content"
  "$SCIMG" convert -O raw "$c/$n.vdi" "$TMPD/$n.raw" || fail "$n.vdi -> raw"
  cmp "$TMPD/$n.raw" "$c/expected-$n.raw" || fail "$n.vdi -> raw differs"
done
"$SCIMG" info --output=json "$c/snap2.vdi" > "$TMPD/snap2.json" || fail "info snap2"
python3 - "$TMPD/snap2.json" "$c/uuids" <<'PY' || fail "snap2 info: $(cat "$TMPD/snap2.json")"
import json, sys
d = json.load(open(sys.argv[1]))
u = dict(l.split() for l in open(sys.argv[2]))
s = d["scimg"]
assert d["format"] == "vdi" and d["virtual-size"] == 66560, d
assert s["type"] == "differencing" and s["uuid"] == u["snap2"] and s["parent-uuid"] == u["snap1"], s
assert s["parent-filename"] == "snap1.vdi" and s["block-size"] == 4096 and s["blocks-allocated"] == 2, s
PY
"$SCIMG" info --output=json "$c/base.vdi" | grep -q '"type": "dynamic"' || fail "base type"
"$SCIMG" info --output=json "$c/fixed.vdi" | grep -q '"type": "fixed"' || fail "fixed type"
# a chain converts to one flat VDI
"$SCIMG" convert -O vdi "$c/snap2.vdi" "$TMPD/flat.vdi" || fail "snap2 -> vdi"
"$SCIMG" compare "$TMPD/flat.vdi" "$c/expected-snap2.raw" >/dev/null || fail "flattened chain content"
# refusals: no parent, parent not allowed, parent changed since, loop
mkdir "$TMPD/alone" && cp "$c/snap2.vdi" "$TMPD/alone/"
"$SCIMG" info "$TMPD/alone/snap2.vdi" 2>"$TMPD/err" && fail "snapshot without parent opened"
uuid1=$(awk '$1=="snap1"{print $2}' "$c/uuids")
grep -q "its parent, the VDI with UUID $uuid1 (uuidLinkage at offset 424), is missing" "$TMPD/err" || fail "missing parent message: $(cat "$TMPD/err")"
"$SCIMG" info --no-backing "$c/snap1.vdi" 2>"$TMPD/err" && fail "--no-backing opened a parent"
grep -q "opening referenced files is not allowed" "$TMPD/err" || fail "--no-backing message: $(cat "$TMPD/err")"
mkdir "$TMPD/stale" && cp "$c/base.vdi" "$c/snap1.vdi" "$TMPD/stale/"
printf '\001' | dd of="$TMPD/stale/base.vdi" bs=1 seek=$((0x198)) conv=notrunc status=none   # base's uuidModify
"$SCIMG" info "$TMPD/stale/snap1.vdi" 2>"$TMPD/err" && fail "stale parent accepted"
grep -q "was modified after this differencing image was made: uuidParentModify at offset 440" "$TMPD/err" || fail "stale parent message: $(cat "$TMPD/err")"
mkdir "$TMPD/loop" && cp "$c/snap1.vdi" "$TMPD/loop/"
dd if="$TMPD/loop/snap1.vdi" of="$TMPD/loop/snap1.vdi" bs=1 skip=$((0x188)) seek=$((0x1a8)) count=16 conv=notrunc status=none
"$SCIMG" info "$TMPD/loop/snap1.vdi" 2>"$TMPD/err" && fail "self-parent accepted"
grep -q "loop" "$TMPD/err" || fail "loop message: $(cat "$TMPD/err")"

# 2. Round trip raw -> vdi -> raw, dynamic and fixed; sizes off the 1 MiB grid.
make_mixed_raw "$TMPD/in.raw" 24
truncate -s +3584 "$TMPD/in.raw"
for o in "" "-o static=on"; do
  # shellcheck disable=SC2086
  "$SCIMG" convert -f raw -O vdi $o "$TMPD/in.raw" "$TMPD/out.vdi" || fail "raw -> vdi $o"
  "$SCIMG" convert -O raw "$TMPD/out.vdi" "$TMPD/back.raw" || fail "vdi -> raw $o"
  cmp "$TMPD/in.raw" "$TMPD/back.raw" || fail "raw -> vdi $o -> raw differs"
  "$SCIMG" info --output=json "$TMPD/out.vdi" > "$TMPD/o.json" || fail "info out.vdi"
  python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); s=d["scimg"]
assert s["header-text"]=="<<< Oracle VM VirtualBox Disk Image >>>" and s["version"]=="1.1" and s["header-size"]==400, s
assert s["type"]==("fixed" if sys.argv[2] else "dynamic"), s
assert s["type"]=="fixed" or s["blocks-allocated"] < s["blocks"], s' "$TMPD/o.json" "$o" || fail "out.vdi info $o"
  if [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ]; then
    "$QEMU_IMG" check "$TMPD/out.vdi" >"$TMPD/qc" 2>&1 || fail "qemu-img check $o: $(cat "$TMPD/qc")"
    "$QEMU_IMG" compare -f raw -F vdi "$TMPD/in.raw" "$TMPD/out.vdi" >/dev/null || fail "qemu-img compare $o"
  fi
done
# dynamic output stays small (only blocks with data are stored)
[ "$(du -k "$TMPD/out.vdi" | cut -f1)" -lt 8192 ] || fail "fixed VDI not sparse"
"$SCIMG" convert -f raw -O vdi "$TMPD/in.raw" "$TMPD/dyn.vdi" || fail "raw -> dynamic vdi"
[ "$(stat -c %s "$TMPD/dyn.vdi")" -le $((3 * 1048576 + 2 * 1048576)) ] || fail "dynamic VDI stores unwritten blocks"
"$SCIMG" convert -f raw -O vdi -o static=maybe "$TMPD/in.raw" "$TMPD/x.vdi" 2>"$TMPD/err" && fail "bad static value accepted"
grep -q "option static is 'maybe'" "$TMPD/err" || fail "static message"
# an odd size is rounded up to 512 (the tail reads as zeros)
head -c 1000 /dev/urandom > "$TMPD/odd.raw"
"$SCIMG" convert -f raw -O vdi "$TMPD/odd.raw" "$TMPD/odd.vdi" || fail "odd size"
[ "$("$SCIMG" info --output=json "$TMPD/odd.vdi" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" = 1024 ] || fail "odd size not rounded to 1024"
"$SCIMG" compare "$TMPD/odd.raw" "$TMPD/odd.vdi" >/dev/null 2>&1 || fail "odd size content"

# 3. qemu-img's VDIs read by scimg.
if [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ]; then
  for o in "" "-o static=on"; do
    # shellcheck disable=SC2086
    "$QEMU_IMG" convert -f raw -O vdi $o "$TMPD/in.raw" "$TMPD/q.vdi" || fail "qemu-img convert $o"
    "$SCIMG" compare "$TMPD/q.vdi" "$TMPD/in.raw" >/dev/null || fail "qemu-img VDI $o content"
  done
fi

# 4. The shared real-world samples.
requires_external
e="$EXT_UNPACKED/bwlehrpool"
want=$(awk -F'\t' '$1=="bwlehrpool/image-default.vdi"{print $6}' "$SHARED_DIR/fixtures/external/images.tsv")
[ -n "$want" ] || fail "no expected hash for image-default.vdi"
"$SCIMG" convert -O raw "$e/image-default.vdi" "$TMPD/d.raw" || fail "image-default.vdi"
[ "$(sha "$TMPD/d.raw")" = "$want" ] || fail "image-default.vdi content hash"
"$SCIMG" info "$e/image-default.vdi" | grep -q 'header-text: <<< QEMU VM Virtual Disk Image >>>' || fail "qemu header text"
rm -f "$TMPD/d.raw"
# The VirtualBox snapshot: its parent (by uuidLinkage) is image-default.vdi,
# which sits beside it in the samples, so it reads as its parent does.
"$SCIMG" info --output=json "$e/image-default_snapshot.vdi" > "$TMPD/s.json" || fail "snapshot with its parent beside it"
grep -q '"parent-filename": "image-default.vdi"' "$TMPD/s.json" || fail "snapshot parent not found by UUID"
"$SCIMG" convert -O raw "$e/image-default_snapshot.vdi" "$TMPD/s.raw" || fail "snapshot -> raw"
[ "$(sha "$TMPD/s.raw")" = "$want" ] || fail "snapshot content hash"
rm -f "$TMPD/s.raw"
# ... and is refused, naming the parent's UUID, without it or with --no-backing.
mkdir "$TMPD/snap" && cp "$e/image-default_snapshot.vdi" "$TMPD/snap/"
"$SCIMG" info "$TMPD/snap/image-default_snapshot.vdi" 2>"$TMPD/err"; rc=$?
[ $rc -eq 2 ] || fail "lone snapshot: exit $rc"
grep -q "parent, the VDI with UUID 45ec18d9-39c5-4079-8de1-e36437901627 (uuidLinkage at offset 424), is missing" "$TMPD/err" || fail "lone snapshot message: $(cat "$TMPD/err")"
"$SCIMG" info --no-backing "$e/image-default_snapshot.vdi" 2>"$TMPD/err"; rc=$?
[ $rc -eq 2 ] && grep -q "UUID 45ec18d9-39c5-4079-8de1-e36437901627" "$TMPD/err" || fail "snapshot --no-backing: $rc $(cat "$TMPD/err")"
echo ok
