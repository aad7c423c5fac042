#!/bin/sh
# Corrupted VMDKs (truncated, header fields overwritten, bits flipped in
# headers, grain directories and tables, markers, footers, descriptors) are
# read or refused with exit 2: never a crash, a hang or unbounded memory.
. "$(dirname "$0")/functions.sh"
corrupt_corpus_test
requires python3
replay="$top_builddir/tests/fuzz/fuzz-replay"
[ -x "$replay" ] || fail "fuzz-replay not built"

# seeds: the shared samples, generated ones, and what our writer makes
mkdir "$TMPD/seed" "$TMPD/v"
if [ -f "$SHARED_DIR/fixtures/external/images.tsv" ]; then
  requires_external
  # one of each kind: VMware sparse, split descriptor and its extent,
  # VMware and ovftool and ESX streams (footer), qemu-img sparse and stream,
  # a fuzzed header
  for f in bwlehrpool/image_t0.vmdk bwlehrpool/image_t1.vmdk bwlehrpool/image_t1-s001.vmdk \
           bwlehrpool/image_t5.vmdk mdx1/1mb.vmdk qemu/iotest-version3.vmdk dfvfs/ext2.vmdk \
           mdx1/1GiB.vmdk qemu/afl9.vmdk; do
    cp "$EXT_UNPACKED/$f" "$TMPD/seed/$(echo "$f" | tr / _)" || fail "$f missing"
  done
fi
python3 "$top_srcdir/tests/fixtures/vmdk-gen.py" "$TMPD/gen" >/dev/null || fail "vmdk-gen.py"
cp "$TMPD/gen/cowd.vmdk" "$TMPD/gen/zeroed.vmdk" "$TMPD/gen/rgd.vmdk" "$TMPD/gen/sesparse-sesparse.vmdk" "$TMPD/seed/"
make_mixed_raw "$TMPD/in.raw" 40
"$SCIMG" convert -f raw -O vmdk -o subformat=streamOptimized "$TMPD/in.raw" "$TMPD/seed/so.vmdk" || fail "so"
"$SCIMG" convert -f raw -O vmdk "$TMPD/in.raw" "$TMPD/seed/ms.vmdk" || fail "ms"

python3 - "$TMPD/seed" "$TMPD/v" <<'PY' || fail "mutator"
import os, random, struct, sys
seed_dir, out = sys.argv[1], sys.argv[2]
n = 0
def emit(name, data):
    global n
    n += 1
    open(os.path.join(out, "%04d-%s" % (n, name)), "wb").write(data)
for name in sorted(os.listdir(seed_dir)):
    d = open(os.path.join(seed_dir, name), "rb").read()
    r = random.Random(name)
    L = len(d)
    for cut in sorted({0, 100, 512, 4096, L // 2, L - 1536, L - 512, L - 1}):
        if 0 <= cut < L:
            emit(name + ".cut%d" % cut, d[:cut])
    if d[:4] in (b"KDMV", b"COWD") or d[:8] == struct.pack("<Q", 0xcafebabe):
        fields = [4, 8, 12, 16, 20, 24, 28, 36, 44, 48, 56, 64, 73, 77] if d[:4] == b"KDMV" else \
                 [4, 8, 12, 16, 20, 24, 28] if d[:4] == b"COWD" else list(range(8, 208, 8))
        for off in fields:
            for val in (b"\xff" * 8, struct.pack("<I", r.getrandbits(32)) * 2):
                b = bytearray(d)
                b[off:off + 8] = val
                emit(name + ".f%d" % off, bytes(b))
        # the streamOptimized footer copy of the header
        if d[:4] == b"KDMV" and struct.unpack_from("<Q", d, 56)[0] == 0xffffffffffffffff and L > 2048:
            for off in (L - 1536, L - 1536 + 8, L - 1024 + 12, L - 1024 + 20, L - 1024 + 44, L - 1024 + 56, L - 512):
                for val in (b"\xff" * 8, struct.pack("<Q", 3)):
                    b = bytearray(d)
                    b[off:off + 8] = val
                    emit(name + ".foot%d" % off, bytes(b))
    # flipped bytes: near the start, in the metadata, anywhere
    for i in range(9):
        b = bytearray(d)
        span = min(L, [4096, 65536, L][i % 3]) or 1
        for _ in range(1 + i % 8):
            if L:
                p = r.randrange(span)
                b[p] ^= 1 << r.randrange(8)
        emit(name + ".flip%d" % i, bytes(b))
    # garbage runs over whole sectors (grain tables, markers, compressed data)
    for i in range(4):
        b = bytearray(d)
        if L >= 1024:
            p = r.randrange(L // 512) * 512
            b[p:p + 512] = bytes(r.getrandbits(8) for _ in range(512))
        emit(name + ".sec%d" % i, bytes(b))
print(n, "variants")
PY

nv=0
for f in "$TMPD"/v/*; do
  nv=$((nv + 1))
  timeout 60 "$replay" vmdk "$f"; rc=$?
  [ $rc -eq 0 ] || fail "fuzz-replay $(basename "$f"): exit $rc (crash or hang)"
  timeout 60 "$SCIMG" info --output=json "$f" >"$TMPD/info.json" 2>"$TMPD/err"; rc=$?
  case $rc in 0|2) ;; *) fail "info $(basename "$f"): exit $rc: $(cat "$TMPD/err")" ;; esac
  if [ $rc -eq 2 ]; then
    grep -q "'" "$TMPD/err" || fail "info $(basename "$f"): message names nothing: $(cat "$TMPD/err")"
    continue
  fi
  # full conversion when the claimed disk is small enough to write here
  vs=$(sed -n 's/^ *"virtual-size": *\([0-9]*\).*/\1/p' "$TMPD/info.json" | head -n 1)
  [ -n "$vs" ] || fail "info $(basename "$f"): no virtual-size in $(cat "$TMPD/info.json")"
  [ "$vs" -le $((256 << 20)) ] || continue
  if [ -x /usr/bin/time ]; then
    timeout 60 /usr/bin/time -f %M -o "$TMPD/rss" "$SCIMG" convert --no-sync -O raw "$f" "$TMPD/out.raw" 2>"$TMPD/err"; rc=$?
  else
    timeout 60 "$SCIMG" convert --no-sync -O raw "$f" "$TMPD/out.raw" 2>"$TMPD/err"; rc=$?
    echo 0 > "$TMPD/rss"
  fi
  case $rc in 0|2) ;; *) fail "convert $(basename "$f"): exit $rc: $(cat "$TMPD/err")" ;; esac
  rss=$(tail -n 1 "$TMPD/rss")
  [ "$rss" -lt 400000 ] || fail "convert $(basename "$f"): peak RSS $rss KiB"
  rm -f "$TMPD/out.raw"
done
echo "$nv corrupted variants: no crash, no hang"
