#!/bin/sh
# Every VMDK sample of the shared fixtures reads with the guest content the
# fixtures list (images.tsv), also after a round trip through
# streamOptimized; descriptors whose extents are absent fail naming the
# missing file; fuzzed files are refused naming the bad field.
. "$(dirname "$0")/functions.sh"
requires_external
tsv="$SHARED_DIR/fixtures/external/images.tsv"
awk -F'\t' 'NR > 1 && $1 ~ /\.vmdk$/ { print $1 "\t" $4 "\t" $6 "\t" $3 }' "$tsv" > "$TMPD/list"
[ -s "$TMPD/list" ] || fail "no VMDK rows in $tsv"

nread=0 nrefused=0
while IFS="$(printf '\t')" read -r file vsize csha sub; do
  img="$EXT_UNPACKED/$file"
  [ -f "$img" ] || fail "$file: not unpacked"
  rm -f "$TMPD/out.raw" "$TMPD/rt.vmdk"
  case "$file" in
    */image_t2.vmdk|*/image_t3.vmdk|*/image_t4.vmdk)
      want=$(sed -n 's/^RW [0-9]* [A-Z]* "\([^"]*\)".*/\1/p' "$img")
      [ -n "$want" ] || fail "$file: no extent line"
      "$SCIMG" convert -O raw "$img" "$TMPD/out.raw" 2>"$TMPD/err"; rc=$?
      [ $rc -eq 2 ] || fail "$file: exit $rc, expected 2"
      grep -q "extent file '$want'" "$TMPD/err" || fail "$file: error does not name '$want': $(cat "$TMPD/err")"
      grep -q "No such file" "$TMPD/err" || fail "$file: error does not say it is missing: $(cat "$TMPD/err")"
      [ ! -e "$TMPD/out.raw" ] || fail "$file: output left behind"
      nrefused=$((nrefused + 1))
      continue ;;
    */afl9*.vmdk)
      "$SCIMG" info "$img" 2>"$TMPD/err" >/dev/null; rc=$?
      [ $rc -eq 2 ] || fail "$file: exit $rc, expected 2"
      grep -q "capacity at offset 12 is" "$TMPD/err" || fail "$file: error does not name the field: $(cat "$TMPD/err")"
      nrefused=$((nrefused + 1))
      continue ;;
  esac
  "$SCIMG" info --output=json "$img" > "$TMPD/info.json" || fail "$file: info"
  python3 - "$TMPD/info.json" "$vsize" "$sub" <<'PY' || fail "$file: info content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "vmdk", d["format"]
assert d["virtual-size"] == int(sys.argv[2]), (d["virtual-size"], sys.argv[2])
assert d["format-specific"]["type"] == "vmdk", d["format-specific"]
spec = d["format-specific"]["data"]
want = sys.argv[3].split(";")[0]
assert spec["create-type"] == want, (spec["create-type"], want)
assert spec["extents"], "no extents"
assert len(d["scimg"]["extents"]) == len(spec["extents"]), d["scimg"]
PY
  "$SCIMG" convert -O raw "$img" "$TMPD/out.raw" 2>"$TMPD/err" || fail "$file: convert: $(cat "$TMPD/err")"
  if [ "$csha" = "-" ]; then
    # too big for a listed digest: qemu-img is the reference
    if [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ]; then
      "$QEMU_IMG" compare -f vmdk -F raw "$img" "$TMPD/out.raw" >/dev/null || fail "$file: differs from qemu-img's reading"
    fi
  else
    got=$(sha "$TMPD/out.raw")
    [ "$got" = "$csha" ] || fail "$file: content sha256 $got, expected $csha"
  fi
  # and through our own streamOptimized writer
  "$SCIMG" convert -c -O vmdk -o subformat=streamOptimized "$img" "$TMPD/rt.vmdk" || fail "$file: to streamOptimized"
  "$SCIMG" compare "$TMPD/out.raw" "$TMPD/rt.vmdk" >/dev/null || fail "$file: streamOptimized copy differs"
  nread=$((nread + 1))
done < "$TMPD/list"
[ $nread -ge 12 ] || fail "only $nread images read"
[ $nrefused -eq 5 ] || fail "$nrefused refused, expected 5"

# descriptor-only samples: parsed (unit test), here they fail naming the extent
d="$SHARED_DIR/fixtures/external/descriptors"
# (info shows the descriptor and lists the extent it could not open)
"$SCIMG" convert -O raw "$d/DAWOS-Disk.vmdk" "$TMPD/dawos.raw" 2>"$TMPD/err"; rc=$?
[ $rc -eq 2 ] && grep -q "'../bin/disk.img'" "$TMPD/err" && grep -q "leaves" "$TMPD/err" ||
  fail "DAWOS-Disk.vmdk: exit $rc: $(cat "$TMPD/err")"
"$SCIMG" info "$d/DAWOS-Disk.vmdk" > "$TMPD/out" 2>&1 && grep -q "unopened-files" "$TMPD/out" &&
  grep -q "'../bin/disk.img'.*leaves" "$TMPD/out" || fail "DAWOS-Disk.vmdk info: $(cat "$TMPD/out")"
"$SCIMG" convert -f vmdk -O raw "$d/libvmdk-descriptor_file.1.txt" "$TMPD/t1.raw" 2>"$TMPD/err"; rc=$?
[ $rc -eq 2 ] && grep -q "extent file 'test1.vmdk'" "$TMPD/err" ||
  fail "libvmdk-descriptor_file.1.txt: exit $rc: $(cat "$TMPD/err")"
echo "read $nread images bit-exact, refused $nrefused as expected"
