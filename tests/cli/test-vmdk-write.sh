#!/bin/sh
# raw -> VMDK (each subformat) -> raw is bit-exact; streamOptimized has
# VMware's stream layout; qemu-img check/compare and libvmdk's vmdkinfo
# accept the outputs; options land in the descriptor; monolithicFlat's two
# files appear together or not at all.
. "$(dirname "$0")/functions.sh"

have_qemu=0
[ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ] && have_qemu=1
have_vmdkinfo=0
command -v vmdkinfo >/dev/null 2>&1 && have_vmdkinfo=1

make_mixed_raw "$TMPD/in.raw" 80     # data in grain tables 0 and 2, none in 1
head -c 3333333 /dev/urandom > "$TMPD/odd.raw"   # not a whole sector

check_out() { # IMAGE RAW what
  "$SCIMG" convert -O raw "$1" "$TMPD/back.raw" 2>"$TMPD/err" || fail "$3: read back: $(cat "$TMPD/err")"
  size=$(stat -c %s "$2")
  want=$(( (size + 511) / 512 * 512 ))
  [ "$(stat -c %s "$TMPD/back.raw")" -eq "$want" ] || fail "$3: size $(stat -c %s "$TMPD/back.raw"), expected $want"
  cmp -n "$size" "$2" "$TMPD/back.raw" >/dev/null || fail "$3: content differs"
  [ "$(tail -c $((want - size)) "$TMPD/back.raw" | tr -d '\0' | wc -c)" -eq 0 ] || fail "$3: padding not zero"
  "$SCIMG" compare "$2" "$1" >/dev/null || fail "$3: scimg compare"
  if [ $have_qemu = 1 ]; then
    "$QEMU_IMG" check -f vmdk "$1" >"$TMPD/qc" 2>&1 || fail "$3: qemu-img check: $(cat "$TMPD/qc")"
    "$QEMU_IMG" compare -f raw -F vmdk "$TMPD/back.raw" "$1" >/dev/null 2>&1 || fail "$3: qemu-img compare"
  fi
  if [ $have_vmdkinfo = 1 ]; then
    vmdkinfo "$1" >"$TMPD/vi" 2>&1 || fail "$3: vmdkinfo: $(cat "$TMPD/vi")"
    grep -q "Media size:.*($want bytes)" "$TMPD/vi" || fail "$3: vmdkinfo media size: $(cat "$TMPD/vi")"
  fi
  rm -f "$TMPD/back.raw"
}

for src in in odd; do
  for sub in monolithicSparse streamOptimized monolithicFlat; do
    out="$TMPD/$src-$sub.vmdk"
    "$SCIMG" convert -f raw -O vmdk -o subformat=$sub "$TMPD/$src.raw" "$out" 2>"$TMPD/err" ||
      fail "$src $sub: $(cat "$TMPD/err")"
    check_out "$out" "$TMPD/$src.raw" "$src $sub"
  done
  for how in "-c" "-c -m 1" "-S 0" "-c -S 0"; do
    out="$TMPD/$src-so.vmdk"
    "$SCIMG" convert $how -f raw -O vmdk -o subformat=streamOptimized "$TMPD/$src.raw" "$out" ||
      fail "$src streamOptimized $how"
    check_out "$out" "$TMPD/$src.raw" "$src streamOptimized $how"
  done
done
"$SCIMG" convert -S 0 -f raw -O vmdk "$TMPD/in.raw" "$TMPD/s0.vmdk" || fail "monolithicSparse -S 0"
check_out "$TMPD/s0.vmdk" "$TMPD/in.raw" "monolithicSparse -S 0"

# only grains with data are stored
sz=$(stat -c %s "$TMPD/in-monolithicSparse.vmdk")
[ "$sz" -lt $((4 * 1048576)) ] || fail "monolithicSparse is $sz bytes for ~1 MiB of data"

# streamOptimized: VMware's layout, checked field by field
python3 - "$TMPD/in-streamOptimized.vmdk" "$TMPD/in.raw" <<'PY' || fail "stream layout"
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
raw = open(sys.argv[2], "rb").read()
h = struct.unpack_from("<4sIIQQQQIQQQ", d, 0)
magic, ver, flags, cap, gran, doff, dsz, gtes, rgd, gd, over = h
assert magic == b"KDMV" and ver == 3, h
assert flags == 0x30001, hex(flags)
assert gd == 0xffffffffffffffff and rgd == 0, h
assert gran == 128 and gtes == 512 and doff == 1 and over == 128, h
assert d[73:77] == b"\n \r\n" and struct.unpack_from("<H", d, 77)[0] == 1
assert cap * 512 == len(raw)
desc = d[512:512 + dsz * 512].split(b"\0")[0].decode()
for want in ['createType="streamOptimized"', 'encoding="UTF-8"', "parentCID=ffffffff",
             'RW %d SPARSE "in-streamOptimized.vmdk"' % cap,
             'ddb.adapterType = "lsilogic"', 'ddb.virtualHWVersion = "4"',
             'ddb.toolsVersion = "2147483647"', 'ddb.geometry.heads = "255"',
             'ddb.geometry.sectors = "63"']:
    assert want in desc, (want, desc)
cid = [l for l in desc.splitlines() if l.startswith("CID=")][0][4:]
assert cid not in ("ffffffff", "fffffffe") and len(cid) == 8
lcid = [l for l in desc.splitlines() if l.startswith("ddb.longContentID")][0]
assert lcid.endswith(cid + '"'), lcid
# walk the stream: grains in LBA order, GT markers, GD, footer, EOS at the end
pos, last, gts, content = over * 512, -1, {}, bytearray(len(raw))
seen = []
while True:
    val, size, typ = struct.unpack_from("<QIi", d, pos)
    if size:
        assert val > last and val % 128 == 0, (val, last)
        last = val
        g = zlib.decompress(d[pos + 12:pos + 12 + size])
        content[val * 512:val * 512 + len(g)] = g
        pos += (12 + size + 511) // 512 * 512
        continue
    seen.append(typ)
    if typ == 1:
        assert val == 4
        gts[pos // 512 + 1] = struct.unpack_from("<512I", d, pos + 512)
    if typ == 2:
        gdpos = pos // 512 + 1
        gdents = struct.unpack_from("<%dI" % (val * 128), d, pos + 512)
    if typ == 3:
        f = struct.unpack_from("<4sIIQQQQIQQQ", d, pos + 512)
        assert f[:9] == h[:9] and f[9] == gdpos and f[10] == over, f
    if typ == 0:
        assert pos + 512 == len(d), (pos, len(d))
        break
    pos += 512 + val * 512
assert seen[-3:] == [2, 3, 0] and set(seen[:-3]) == {1}, seen
assert bytes(content) == raw, "stream content differs"
ngt = -(-cap // (128 * 512))
assert all(e == 0 or e in gts for e in gdents[:ngt]) and sum(1 for e in gdents[:ngt] if e) == len(gts)
assert gdents[1] == 0, "empty grain table 1 should be omitted"
PY

# options reach the descriptor; bad ones are refused and leave nothing
"$SCIMG" convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=ide,hwversion=14,toolsversion=12345 \
  "$TMPD/odd.raw" "$TMPD/opt.vmdk" || fail "options"
"$SCIMG" info --output=json "$TMPD/opt.vmdk" > "$TMPD/opt.json" || fail "info opt"
python3 - "$TMPD/opt.json" <<'PY' || fail "options in info"
import json, sys
d = json.load(open(sys.argv[1]))
q, s = d["format-specific"]["data"], d["scimg"]
assert q["create-type"] == "streamOptimized" and s["adapter-type"] == "ide", d
assert q["extents"][0]["compressed"] is True, q
assert s["hw-version"] == 14 and s["tools-version"] == "12345", s
assert s["geometry"]["heads"] == 16 and s["compression"] == "deflate", s
assert s["extents"][0]["version"] == 3 and s["extents"][0]["compressed"] is True, s
PY
"$SCIMG" convert -f raw -O vmdk -o adapter_type=pvscsi "$TMPD/odd.raw" "$TMPD/pv.vmdk" || fail "pvscsi"
"$SCIMG" info "$TMPD/pv.vmdk" | grep -q "adapter-type: pvscsi" || fail "pvscsi not written"
mkdir "$TMPD/empty"
for bad in subformat=twoGbMaxExtentSparse adapter_type=scsi hwversion=x hwversion=0 toolsversion=-1 nosuch=1; do
  "$SCIMG" convert -f raw -O vmdk -o $bad "$TMPD/odd.raw" "$TMPD/empty/x.vmdk" 2>"$TMPD/err"; rc=$?
  [ $rc -eq 2 ] || fail "-o $bad: exit $rc"
  grep -q "${bad%%=*}" "$TMPD/err" || fail "-o $bad: message does not name it: $(cat "$TMPD/err")"
done
: > "$TMPD/zero.raw"
"$SCIMG" convert -f raw -O vmdk "$TMPD/zero.raw" "$TMPD/empty/x.vmdk" 2>"$TMPD/err" && fail "empty disk accepted"
grep -q "at least one sector" "$TMPD/err" || fail "empty disk message: $(cat "$TMPD/err")"
"$SCIMG" convert -c -f raw -O vmdk "$TMPD/odd.raw" "$TMPD/empty/x.vmdk" 2>/dev/null && fail "-c with monolithicSparse accepted"
"$SCIMG" convert -c -f raw -O vmdk -o subformat=monolithicFlat "$TMPD/odd.raw" "$TMPD/empty/x.vmdk" 2>/dev/null &&
  fail "-c with monolithicFlat accepted"
[ -z "$(ls -A "$TMPD/empty")" ] || fail "failed conversions left files: $(ls -A "$TMPD/empty")"

# monolithicFlat: descriptor + "-flat" extent, committed together
ls "$TMPD"/in-monolithicFlat* | sed 's|.*/||' | sort | tr '\n' ' ' > "$TMPD/names"
[ "$(cat "$TMPD/names")" = "in-monolithicFlat-flat.vmdk in-monolithicFlat.vmdk " ] || fail "flat files: $(cat "$TMPD/names")"
grep -q '^RW 163840 FLAT "in-monolithicFlat-flat.vmdk" 0$' "$TMPD/in-monolithicFlat.vmdk" || fail "flat extent line"
grep -q 'createType="monolithicFlat"' "$TMPD/in-monolithicFlat.vmdk" || fail "flat createType"
mkdir "$TMPD/sig"
truncate -s 8G "$TMPD/big.raw"
"$SCIMG" convert -S 0 -f raw -O vmdk -o subformat=monolithicFlat "$TMPD/big.raw" "$TMPD/sig/big.vmdk" 2>"$TMPD/err" &
pid=$!
wait_for_temp "$TMPD/sig" $pid
kill -TERM $pid
wait $pid; rc=$?
[ $rc -ne 0 ] || fail "flat conversion finished before SIGTERM"
[ -z "$(ls -A "$TMPD/sig")" ] || fail "SIGTERM left files: $(ls -A "$TMPD/sig")"
rm -f "$TMPD/big.raw"

# samples no fixture covers: COWD, vmfs with offsets, vmfsSparse and
# seSparse deltas, zeroed grains, redundant grain directory, ZERO extents
python3 "$top_srcdir/tests/fixtures/vmdk-gen.py" "$TMPD/gen" || fail "vmdk-gen.py"
for n in cowd vmfs-base vmfssparse sesparse zeroed rgd split; do
  "$SCIMG" convert -O raw "$TMPD/gen/$n.vmdk" "$TMPD/gen/$n.out" 2>"$TMPD/err" || fail "$n: $(cat "$TMPD/err")"
  cmp "$TMPD/gen/$n.out" "$TMPD/gen/$n.expect" >/dev/null || fail "$n: content differs"
  "$SCIMG" convert -O vmdk "$TMPD/gen/$n.vmdk" "$TMPD/gen/$n-copy.vmdk" || fail "$n: to vmdk"
  "$SCIMG" compare "$TMPD/gen/$n-copy.vmdk" "$TMPD/gen/$n.expect" >/dev/null || fail "$n: copy differs"
done
"$SCIMG" info "$TMPD/gen/sesparse.vmdk" | grep -q "create-type: seSparse" || fail "seSparse info"
"$SCIMG" info "$TMPD/gen/rgd.vmdk" | grep -q "redundant copy used" || fail "rgd note"
"$SCIMG" info "$TMPD/gen/bad-cid.vmdk" 2>"$TMPD/err" && fail "parent CID mismatch accepted"
grep -q "parent disk .* does not match: its CID differs from this delta's parentCID" "$TMPD/err" || fail "CID message: $(cat "$TMPD/err")"
grep -qi "1234abcd" "$TMPD/err" && fail "CID message shows the parent's CID: $(cat "$TMPD/err")"
"$SCIMG" convert --no-backing -O raw "$TMPD/gen/vmfssparse.vmdk" "$TMPD/nb.raw" 2>"$TMPD/err" && fail "--no-backing opened extents"
grep -q "not allowed" "$TMPD/err" || fail "--no-backing message: $(cat "$TMPD/err")"
"$SCIMG" info --no-backing "$TMPD/gen/vmfssparse.vmdk" > "$TMPD/out" || fail "--no-backing info"
grep -q "unopened-files" "$TMPD/out" || fail "--no-backing info does not list the extents: $(cat "$TMPD/out")"

# what qemu-img writes: split extents, flat, zeroed grains, delta disks
if [ $have_qemu = 1 ]; then
  truncate -s 5G "$TMPD/q.raw"
  dd if=/dev/urandom of="$TMPD/q.raw" bs=1M count=3 seek=2046 conv=notrunc status=none
  dd if=/dev/urandom of="$TMPD/q.raw" bs=64k count=1 seek=81000 conv=notrunc status=none
  for o in subformat=twoGbMaxExtentSparse subformat=twoGbMaxExtentFlat subformat=monolithicFlat zeroed_grain=on; do
    rm -rf "$TMPD/q"; mkdir "$TMPD/q"
    "$QEMU_IMG" convert -f raw -O vmdk -o $o "$TMPD/q.raw" "$TMPD/q/d.vmdk" || fail "qemu-img $o"
    "$SCIMG" compare "$TMPD/q.raw" "$TMPD/q/d.vmdk" >/dev/null || fail "qemu-img's $o reads differently"
  done
  rm -rf "$TMPD/q" "$TMPD/q.raw"
  mkdir "$TMPD/delta"
  "$QEMU_IMG" convert -f raw -O vmdk "$TMPD/in.raw" "$TMPD/delta/base.vmdk"
  "$QEMU_IMG" create -q -f vmdk -b base.vmdk -F vmdk "$TMPD/delta/top.vmdk"
  if command -v qemu-io >/dev/null 2>&1; then
    qemu-io -c "write -P 0x55 1M 128k" -c "write -P 0x66 70M 64k" "$TMPD/delta/top.vmdk" >/dev/null
  fi
  "$QEMU_IMG" convert -O raw "$TMPD/delta/top.vmdk" "$TMPD/delta/want.raw"
  "$SCIMG" convert -O raw "$TMPD/delta/top.vmdk" "$TMPD/delta/got.raw" || fail "delta"
  cmp "$TMPD/delta/want.raw" "$TMPD/delta/got.raw" || fail "delta content"
fi
echo ok
