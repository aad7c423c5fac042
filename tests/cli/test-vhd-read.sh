#!/bin/sh
# VHD and VHDX read from the shared real-world fixtures: guest content
# SHA-256 as images.tsv lists it (or the right one where qemu-img is wrong),
# broken images refused naming the bad field, the 127 GiB disks' size rules,
# the differencing VHD with and without its parent, the dirty VHDX log.
. "$(dirname "$0")/functions.sh"
requires_external
requires python3
E=$EXT_UNPACKED
TSV=$SHARED_DIR/fixtures/external/images.tsv
TOOL=$top_srcdir/tests/fixtures/vhd-tool.py

expected() { awk -F'\t' -v f="$1" '$1 == f { print $6 }' "$TSV"; }

# guest content of IMG (format FMT) as a sha256, through a sparse raw copy
content_sha() {
  rm -f "$TMPD/out.raw"
  "$SCIMG" convert -f "$2" -O raw "$1" "$TMPD/out.raw" || fail "convert $1"
  sha "$TMPD/out.raw"
}

# 1. images that qemu-img reads right: same content hash, probed as FMT
for f in dfvfs/ext2-old.vhd dfvfs/ext2.vhd dfvfs/image-old.vhd sleuthkit/image.vhd \
         qemu/d2v-zerofilled.vhd qemu/iotest-dynamic-1G.vhdx qemu/test-disk2vhd.vhdx; do
  case $f in *.vhdx) fmt=vhdx qfmt=vhdx ;; *) fmt=vhd qfmt=vpc ;; esac  # qemu-img says vpc
  want=$(expected "$f")
  [ -n "$want" ] && [ "$want" != - ] || fail "no expected hash for $f in images.tsv"
  "$SCIMG" info "$E/$f" > "$TMPD/info" || fail "info $f"
  grep -q "^file format: $qfmt\$" "$TMPD/info" || fail "$f not probed as $qfmt"
  got=$(content_sha "$E/$f" "$fmt")
  [ "$got" = "$want" ] || fail "$f: content $got, expected $want"
done
# Disk2vhd's creator "d2v" and the largest geometry: current size is the size
"$SCIMG" info --output=json "$E/qemu/d2v-zerofilled.vhd" > "$TMPD/j" || fail "info d2v"
python3 - "$TMPD/j" <<'EOF' || fail "d2v info"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["scimg"]
assert d["virtual-size"] == 263454720 and s["size-rule"] == "current-size", d
assert s["subformat"] == "dynamic" and s["creator-application"] == "d2v\\x00", s
EOF

# 2. the Windows-made fixed VHD: a VHD (not raw), 3145728 bytes, the data
#    before the footer (qemu-img probes it as raw and includes the footer)
f=$E/imhex/vhd.hexpat.vhd
"$SCIMG" info --output=json "$f" > "$TMPD/j" || fail "info imhex"
python3 - "$TMPD/j" <<'EOF' || fail "imhex info"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "vpc" and "format-note" not in d, d
assert d["virtual-size"] == 3145728, d
s = d["scimg"]
assert s["subformat"] == "fixed" and s["creator-application"] == "win ", s
EOF
want=$(head -c 3145728 "$f" | sha256sum | cut -d' ' -f1)
[ "$(content_sha "$f" vhd)" = "$want" ] || fail "imhex content"
# the same disk with an old 511-byte footer
python3 "$TOOL" footer511 "$f" "$TMPD/old511.vhd" || fail "footer511"
[ "$(content_sha "$TMPD/old511.vhd" vhd)" = "$want" ] || fail "511-byte footer content"
"$SCIMG" info "$TMPD/old511.vhd" | grep -q 'footer: 511 bytes' || fail "511 footer info"

# 3. the 127 GiB disks: Virtual PC sizes by CHS, Hyper-V by current size
"$SCIMG" info --output=json "$E/qemu/virtualpc-dynamic.vhd" > "$TMPD/vpc.json" || fail "info vpc"
"$SCIMG" info --output=json "$E/qemu/hyperv2012r2-dynamic.vhd" > "$TMPD/hv.json" || fail "info hyperv"
python3 - "$TMPD/vpc.json" "$TMPD/hv.json" <<'EOF' || fail "127 GiB size rules"
import json, sys
v = json.load(open(sys.argv[1])); h = json.load(open(sys.argv[2]))
vs, hs = v["scimg"], h["scimg"]
assert v["virtual-size"] == 136363130880 == vs["chs-size"], v
assert vs["size-rule"] == "chs-geometry" and vs["current-size"] == 136365211648, vs
assert h["virtual-size"] == 136365211648 == hs["current-size"], h
assert hs["size-rule"] == "current-size" and hs["chs-size"] == 136363130880, hs
assert vs["geometry"] == hs["geometry"] == "65278/16/255"
assert vs["allocated-blocks"] == hs["allocated-blocks"] == 0
EOF

# 4. broken images: refused (exit 2), the message names the bad field
refused() { # FILE PATTERN...
  f=$1; shift
  "$SCIMG" info "$f" > /dev/null 2> "$TMPD/err"; rc=$?
  [ $rc -eq 2 ] || fail "$f: exit $rc, expected 2"
  for p in "$@"; do
    grep -q -- "$p" "$TMPD/err" || fail "$f: message lacks '$p': $(cat "$TMPD/err")"
  done
}
refused "$E/dfvfs/image.vhd" "footer checksum at offset 2099776" "expected 0xffffef25"
refused "$E/dfvfs/image-differential.vhd" "footer checksum" "parent is 'image.vhd'"
refused "$E/qemu/afl5.img" "VHD data offset"
# a missing or refused parent: reading fails naming it; info shows the
# child's own header and lists the parent it could not open
"$SCIMG" convert -O raw "$E/dfvfs/fat-differential.vhd" "$TMPD/fd.raw" 2> "$TMPD/err"; rc=$?
[ $rc -eq 2 ] || fail "missing parent: exit $rc, expected 2"
grep -q "parent image 'C:.Projects.dfvfs.test_data.fat-parent.vhd' not found" "$TMPD/err" || fail "missing parent message: $(cat "$TMPD/err")"
grep -q "fat-parent.vhd'" "$TMPD/err" || fail "missing parent message: $(cat "$TMPD/err")"
"$SCIMG" info "$E/dfvfs/fat-differential.vhd" > "$TMPD/out" || fail "info without the parent"
grep -q "unopened-files" "$TMPD/out" && grep -q "fat-parent.vhd.*not found" "$TMPD/out" || fail "info does not list the missing parent: $(cat "$TMPD/out")"
"$SCIMG" info --no-backing "$E/dfvfs/fat-differential.vhd" > "$TMPD/out" || fail "no-backing info"
grep -q "fat-parent.vhd.*not allowed" "$TMPD/out" || fail "no-backing info: $(cat "$TMPD/out")"
"$SCIMG" convert --no-backing -O raw "$E/dfvfs/fat-differential.vhd" "$TMPD/fd.raw" 2> "$TMPD/err"; [ $? -eq 2 ] || fail "no-backing exit"
grep -q "fat-parent.vhd.*not allowed" "$TMPD/err" || fail "no-backing message: $(cat "$TMPD/err")"

# 5. fat-differential.vhd with a parent made here: the parent's unique id
#    must match; sectors come from the child where its bitmap says so
mkdir "$TMPD/fd"
cp "$E/dfvfs/fat-differential.vhd" "$TMPD/fd/"
head -c 4194304 /dev/urandom > "$TMPD/fp.raw"
"$SCIMG" convert -f raw -O vhd "$TMPD/fp.raw" "$TMPD/fd/fat-parent.vhd" || fail "make parent"
refused "$TMPD/fd/fat-differential.vhd" "unique id" "parent unique id at offset 552"
python3 "$TOOL" setuid "$TMPD/fd/fat-parent.vhd" 5fa21a55f394aa4d99581951a67d5540 || fail "setuid"
want=$(python3 "$TOOL" diffexpect "$TMPD/fd/fat-differential.vhd" "$TMPD/fp.raw")
[ "$(content_sha "$TMPD/fd/fat-differential.vhd" vhd)" = "$want" ] || fail "differencing content"
"$SCIMG" info "$TMPD/fd/fat-differential.vhd" | grep -q 'parent-found-by: W2ru parent locator' || fail "parent via W2ru"

# 6. the dirty-log VHDX: qemu-img refuses it read-only; scimg replays the
#    log in memory (block 17 is only in the log's BAT update)
f=$E/qemu/iotest-dirtylog-10G-4M.vhdx
cp "$f" "$TMPD/dirty-before.vhdx"
"$SCIMG" info --output=json "$f" > "$TMPD/j" || fail "info dirtylog"
python3 - "$TMPD/j" <<'EOF' || fail "dirtylog info"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["scimg"]
assert d["virtual-size"] == 10737418240, d
assert s["log"]["dirty"] and s["log"]["replayed-entries"] == 1 and s["log"]["head-sequence"] == 7, s
assert s["blocks"]["fully-present"] == 18, s
EOF
rm -f "$TMPD/dl.raw"
"$SCIMG" convert -O raw "$f" "$TMPD/dl.raw" || fail "convert dirtylog"
cmp -s "$f" "$TMPD/dirty-before.vhdx" || fail "the input changed"
[ "$(head -c 33554432 "$TMPD/dl.raw" | sha256sum | cut -d' ' -f1)" = \
  24d543886a4841290d1713403345fd308ed5b89fbaf0c89ffe10f71efe0b7d02 ] || fail "dirtylog first 32 MiB"
[ "$(dd if="$TMPD/dl.raw" bs=1M skip=17 count=1 status=none | tr -d '\245' | wc -c)" -eq 0 ] ||
  fail "dirtylog block 17 (from the log) is not the 0xa5 pattern"
if [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ]; then
  # the reference: qemu-img replays the log on a writable copy
  cp "$f" "$TMPD/dq.vhdx"
  "$QEMU_IMG" check -r all "$TMPD/dq.vhdx" > /dev/null 2>&1
  "$QEMU_IMG" convert -f vhdx -O raw "$TMPD/dq.vhdx" "$TMPD/dq.raw" || fail "qemu-img convert replayed"
  "$SCIMG" compare -f raw -F raw "$TMPD/dq.raw" "$TMPD/dl.raw" > /dev/null || fail "differs from qemu-img's replay"
fi
echo ok
