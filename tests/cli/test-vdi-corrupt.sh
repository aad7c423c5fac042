#!/bin/sh
# Corrupted VDIs never crash or hang the vdi plugin: truncated files and
# files with header fields and block map entries overwritten (zero, all
# ones, off by one, random) give exit 2 with a message, or a clean read.
# Inputs: a scimg-written VDI with data, make-vdi.py's dynamic, fixed and
# differencing images, and the shared samples when present.
. "$(dirname "$0")/functions.sh"
corrupt_corpus_test
requires python3 timeout

"$SCIMG" --help | grep -q ' vdi(rw)' || fail "vdi plugin not loaded"
python3 "$top_srcdir/tests/fixtures/make-vdi.py" chain "$TMPD/chain" || fail "make-vdi.py"
make_mixed_raw "$TMPD/in.raw" 4
"$SCIMG" convert -f raw -O vdi "$TMPD/in.raw" "$TMPD/ours.vdi" || fail "make ours.vdi"
set -- "$TMPD/ours.vdi" "$TMPD/chain/base.vdi" "$TMPD/chain/fixed.vdi" "$TMPD/chain/snap2.vdi"
if [ -f "$SHARED_DIR/fixtures/external/images.tsv" ]; then
  requires_external
  set -- "$@" "$EXT_UNPACKED/bwlehrpool/image-default.vdi" "$EXT_UNPACKED/bwlehrpool/image-default_snapshot.vdi"
fi

n=0 bad=0
for src in "$@"; do
  d="$TMPD/v$n"; mkdir "$d"
  # parents of differencing images must sit beside the variants
  cp "$TMPD/chain/base.vdi" "$TMPD/chain/snap1.vdi" "$d/" 2>/dev/null
  case "$src" in *image-default_snapshot.vdi) cp "$(dirname "$src")/image-default.vdi" "$d/" ;; esac
  python3 - "$src" "$d" <<'PY' || fail "variants of $src"
import os, random, struct, sys
src, d = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
rng = random.Random(len(data))
out = []
def emit(name, b):
    out.append(name)
    with open(os.path.join(d, "x-%s.vdi" % name), "wb") as f:
        for i in range(0, len(b), 65536):   # sparse: zero chunks are holes
            c = b[i:i + 65536]
            if c.count(0) == len(c):
                f.seek(len(c), 1)
            else:
                f.write(c)
        f.truncate(len(b))
# truncations
for cut in (0, 1, 63, 64, 0x48, 0x150, 0x1c7, 0x1d7, 511, 512, len(data) // 2, len(data) - 1):
    if cut < len(data):
        emit("cut%d" % cut, data[:cut])
# header fields (u32 unless noted)
fields = [0x40, 0x44, 0x48, 0x4c, 0x50, 0x154, 0x158, 0x168, 0x170, 0x174, 0x178,
          0x17c, 0x180, 0x184, 0x188, 0x198, 0x1a8, 0x1b8, 0x1d4]
for off in fields:
    if off + 4 > len(data):
        continue
    old = struct.unpack_from("<I", data, off)[0]
    for tag, val in (("z", 0), ("f", 0xffffffff), ("p", (old + 1) & 0xffffffff),
                     ("h", 0x80000000), ("r", rng.getrandbits(32))):
        b = bytearray(data)
        struct.pack_into("<I", b, off, val)
        emit("h%x%s" % (off, tag), bytes(b))
# block map entries
if len(data) >= 0x188:
    ob, nb = struct.unpack_from("<I", data, 0x154)[0], struct.unpack_from("<I", data, 0x180)[0]
    for k in range(min(nb, 6)):
        e = ob + 4 * k
        if e + 4 > len(data):
            break
        for tag, val in (("f", 0xffffffff), ("z", 0xfffffffe), ("big", 0x7fffffff),
                         ("dup", struct.unpack_from("<I", data, ob)[0]), ("r", rng.getrandbits(32))):
            b = bytearray(data)
            struct.pack_into("<I", b, e, val)
            emit("m%d%s" % (k, tag), bytes(b))
# random byte flips in the first 512 bytes
for k in range(12):
    b = bytearray(data)
    for _ in range(3):
        i = rng.randrange(min(512, len(b))) if b else 0
        if b:
            b[i] ^= 1 << rng.randrange(8)
    emit("flip%d" % k, bytes(b))
print(len(out))
PY
  for v in "$d"/x-*.vdi; do
    timeout 30 "$SCIMG" info "$v" >/dev/null 2>"$TMPD/err"; rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then echo "info $v: exit $rc: $(cat "$TMPD/err")"; bad=$((bad + 1)); continue; fi
    if [ $rc -eq 2 ] && [ ! -s "$TMPD/err" ]; then echo "info $v: exit 2 without a message"; bad=$((bad + 1)); fi
    if [ $rc -eq 0 ]; then
      timeout 60 "$SCIMG" convert --no-sync -O raw "$v" "$d/out.raw" 2>"$TMPD/err"; rc=$?
      if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then echo "convert $v: exit $rc: $(cat "$TMPD/err")"; bad=$((bad + 1)); fi
      rm -f "$d/out.raw"
    fi
    n=$((n + 1))
  done
done
[ $bad -eq 0 ] || fail "$bad of $n corrupted VDIs crashed, hung or failed silently"
echo "ok: $n corrupted VDIs, no crash or hang"
