#!/bin/sh
# Corrupted qcow2 images: targeted damage to header fields, L1/L2 entries,
# extensions and truncation must end with exit 2 and an error naming the
# field; random damage to the metadata must end with 0/1/2, never a crash,
# a sanitizer report or a hang.
. "$(dirname "$0")/functions.sh"
corrupt_corpus_test
requires_qemu_img
cd "$TMPD" || fail "cd"

# sources: qemu-made v3, v2 compressed, extended L2, zstd, an overlay, and
# one with two L2 tables (data at 0 and at 700 MiB)
make_mixed_raw base.raw 8
"$QEMU_IMG" convert -q -f raw -O qcow2 base.raw plain.qcow2 || fail "mk"
"$QEMU_IMG" convert -q -f raw -O qcow2 -c -o compat=0.10 base.raw v2c.qcow2 || fail "mk"
"$QEMU_IMG" convert -q -f raw -O qcow2 -o extended_l2=on base.raw el2.qcow2 || fail "mk"
"$QEMU_IMG" convert -q -f raw -O qcow2 -c -o compression_type=zstd base.raw zstd.qcow2 || fail "mk"
"$QEMU_IMG" create -q -f qcow2 -b plain.qcow2 -F qcow2 over.qcow2 || fail "mk"
"$QEMU_IMG" snapshot -c snap plain.qcow2 || fail "snapshot"
truncate -s 1G two.raw
dd if=base.raw of=two.raw bs=1M count=2 conv=notrunc status=none
dd if=base.raw of=two.raw bs=1M count=2 seek=700 conv=notrunc status=none
"$QEMU_IMG" convert -q -f raw -O qcow2 two.raw two.qcow2 || fail "mk"
"$SCIMG" convert -f raw -O qcow2 -c base.raw ours.qcow2 || fail "mk"

SCIMG="$SCIMG" python3 - <<'PY' || fail "corruption checks"
import os, random, shutil, struct, subprocess, sys

scimg = os.environ["SCIMG"]
failures = []

def run(args):
    try:
        p = subprocess.run([scimg] + args, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=20)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    return p.returncode, p.stderr.decode("utf-8", "replace")

def sane(rc, err, allowed, what):
    if rc is None or rc not in allowed or "Sanitizer" in err or "runtime error" in err:
        failures.append("%s: exit %s: %s" % (what, rc, err.strip()[:300]))
        return False
    return True

def variant(src, name, patches=(), truncate=None):
    shutil.copy(src, name)
    with open(name, "r+b") as f:
        for off, data in patches:
            f.seek(off)
            f.write(data)
        if truncate is not None:
            f.truncate(truncate)
    return name

def expect_fail(name, words, fmt="qcow2"):
    rc, err = run(["info", "-f", fmt, name])
    if rc != 2 or not all(w in err for w in words):
        failures.append("%s: expected exit 2 naming %s, got %s: %s" % (name, words, rc, err.strip()))
    rc, err = run(["convert", "--no-sync", "-f", fmt, "-O", "raw", name, name + ".out"])
    if rc != 2:
        failures.append("%s: convert exit %s: %s" % (name, rc, err.strip()))
    if os.path.exists(name + ".out"):
        failures.append("%s: output left behind" % name)

def expect_read_fail(name, words):
    """metadata that info does not touch: reading the data must fail"""
    rc, err = run(["info", name])
    sane(rc, err, (0, 2), name + " info")
    rc, err = run(["convert", "--no-sync", "-O", "raw", name, name + ".out"])
    if rc != 2 or not all(w in err for w in words):
        failures.append("%s: expected convert exit 2 naming %s, got %s: %s" % (name, words, rc, err.strip()))
    if os.path.exists(name + ".out"):
        failures.append("%s: output left behind" % name)

def hdr(path):
    with open(path, "rb") as f:
        h = f.read(112)
    (magic, ver, bfo, bfs, cb, size, crypt, l1n, l1o, rto, rtc, nsn, sno) = \
        struct.unpack(">IIQIIQIIQQIIQ", h[:72])
    return dict(cb=cb, cs=1 << cb, l1n=l1n, l1o=l1o, rto=rto, size=size)

def be64(path, off):
    with open(path, "rb") as f:
        f.seek(off)
        return struct.unpack(">Q", f.read(8))[0]

P = struct.pack
h = hdr("plain.qcow2")
cs, l1o, rto = h["cs"], h["l1o"], h["rto"]
fsize = os.path.getsize("plain.qcow2")
fend = (fsize + cs - 1) // cs * cs
l2o = be64("plain.qcow2", l1o) & 0x00fffffffffffe00
# first allocated L2 entry
l2e_off = None
for i in range(cs // 8):
    if be64("plain.qcow2", l2o + 8 * i):
        l2e_off = l2o + 8 * i
        break

expect_fail(variant("plain.qcow2", "cb30", [(20, P(">I", 30))]), ["cluster_bits", "30"])
expect_fail(variant("plain.qcow2", "cb8", [(20, P(">I", 8))]), ["cluster_bits"])
expect_fail(variant("plain.qcow2", "l1huge", [(36, P(">I", 0x7fffffff))]), ["l1_size"])
expect_fail(variant("plain.qcow2", "l1small", [(24, P(">Q", 1 << 40))]), ["l1_size"])
expect_fail(variant("plain.qcow2", "l1eof", [(40, P(">Q", fsize + cs))]), ["l1_table_offset"])
expect_fail(variant("plain.qcow2", "l1hdr", [(40, P(">Q", 0))]), ["l1_table_offset", "header"])
expect_fail(variant("plain.qcow2", "l1unal", [(40, P(">Q", l1o + 512))]), ["l1_table_offset"])
expect_fail(variant("plain.qcow2", "rteof", [(48, P(">Q", 1 << 50))]), ["refcount_table_offset"])
expect_fail(variant("plain.qcow2", "rtc0", [(56, P(">I", 0))]), ["refcount_table_clusters"])
expect_fail(variant("plain.qcow2", "rorder", [(96, P(">I", 9))]), ["refcount_order"])
expect_fail(variant("plain.qcow2", "hlen", [(100, P(">I", 7))]), ["header_length"])
expect_fail(variant("plain.qcow2", "crypt", [(32, P(">I", 1))]), ["encrypted"])
expect_fail(variant("plain.qcow2", "incompat", [(72, P(">Q", 1 << 7))]), ["unknown bit 7"])
expect_fail(variant("plain.qcow2", "ver1", [(4, P(">I", 1))]), ["version 1"])
expect_fail(variant("plain.qcow2", "ver9", [(4, P(">I", 9))]), ["version"])
expect_fail(variant("plain.qcow2", "snapn", [(60, P(">I", 1 << 20))]), ["nb_snapshots"])
expect_fail(variant("plain.qcow2", "snapoff", [(64, P(">Q", fsize * 4))]), ["snapshots_offset"])
expect_fail(variant("plain.qcow2", "extlen", [(116, P(">I", 0x7ffffff0))]), ["header extension"])
expect_fail(variant("over.qcow2", "bfsize", [(16, P(">I", 5000))]), ["backing_file_size"])
expect_fail(variant("over.qcow2", "bfoff", [(8, P(">Q", 1 << 40))]), ["backing_file_offset"])
# L1 entries: past EOF, the L1 table itself, unaligned, reserved bits
expect_fail(variant("plain.qcow2", "l1e-eof", [(l1o, P(">Q", (1 << 63) | (fend + 8 * cs)))]), ["L1 entry", "past the end"])
expect_fail(variant("plain.qcow2", "l1e-self", [(l1o, P(">Q", (1 << 63) | l1o))]), ["L1 entry", "L1 table"])
expect_fail(variant("plain.qcow2", "l1e-rt", [(l1o, P(">Q", (1 << 63) | rto))]), ["L1 entry", "refcount table"])
expect_fail(variant("plain.qcow2", "l1e-unal", [(l1o, P(">Q", (1 << 63) | (l2o + 4096)))]), ["L1 entry"])
expect_fail(variant("plain.qcow2", "l1e-res", [(l1o, P(">Q", (1 << 63) | (1 << 60) | l2o))]), ["L1 entry", "reserved"])
# two L1 entries naming one L2 table (a loop in the mapping)
h2 = hdr("two.qcow2")
a = be64("two.qcow2", h2["l1o"])
expect_fail(variant("two.qcow2", "l1e-dup", [(h2["l1o"] + 8, P(">Q", a))]), ["twice"])
# L2 entries: past EOF, pointing at the L2 table / L1 table / header, unaligned
expect_read_fail(variant("plain.qcow2", "l2e-eof", [(l2e_off, P(">Q", (1 << 63) | (fend + 64 * cs)))]), ["L2 entry", "past the end"])
expect_read_fail(variant("plain.qcow2", "l2e-l2", [(l2e_off, P(">Q", (1 << 63) | l2o))]), ["L2 entry", "L2 table"])
expect_read_fail(variant("plain.qcow2", "l2e-l1", [(l2e_off, P(">Q", (1 << 63) | l1o))]), ["L2 entry", "L1 table"])
expect_read_fail(variant("plain.qcow2", "l2e-unal", [(l2e_off, P(">Q", (1 << 63) | (l2o + cs + 512)))]), ["L2 entry", "multiple"])
expect_read_fail(variant("plain.qcow2", "l2e-res", [(l2e_off, P(">Q", be64("plain.qcow2", l2e_off) | (1 << 57)))]), ["L2 entry", "reserved"])
# compressed descriptor past EOF / into the header
hv = hdr("v2c.qcow2")
v2l2 = be64("v2c.qcow2", hv["l1o"]) & 0x00fffffffffffe00
ce = None
for i in range(hv["cs"] // 8):
    e = be64("v2c.qcow2", v2l2 + 8 * i)
    if e & (1 << 62):
        ce = v2l2 + 8 * i
        break
assert ce is not None, "no compressed cluster in v2c.qcow2"
x = 62 - (hv["cb"] - 8)
expect_read_fail(variant("v2c.qcow2", "comp-eof", [(ce, P(">Q", (1 << 62) | (os.path.getsize("v2c.qcow2") + 4096)))]), ["L2 entry", "compressed"])
expect_read_fail(variant("v2c.qcow2", "comp-hdr", [(ce, P(">Q", (1 << 62) | 100))]), ["L2 entry", "compressed"])
# truncation: inside the header cluster, and cutting off data clusters
expect_fail(variant("plain.qcow2", "trunc-hdr", truncate=4000), ["shorter"])
expect_fail(variant("plain.qcow2", "trunc-50", truncate=50), ["shorter"])
expect_fail(variant("plain.qcow2", "trunc-l1", truncate=l1o + 8), ["past the end of the file"])

# random damage to metadata and data of every source, seeded
rnd = random.Random(20261125)
sources = ["plain.qcow2", "v2c.qcow2", "el2.qcow2", "zstd.qcow2", "over.qcow2", "two.qcow2", "ours.qcow2"]
ext = os.environ.get("EXT_UNPACKED")
count = 0
for src in sources:
    hs = hdr(src)
    size = os.path.getsize(src)
    l1 = hs["l1o"]
    l2 = be64(src, l1) & 0x00fffffffffffe00
    regions = [(0, 512), (l1, 64), (hs["rto"], 64)]
    if l2:
        regions.append((l2, 4096))
    for k in range(40):
        patches = []
        for _ in range(rnd.randint(1, 4)):
            start, ln = rnd.choice(regions)
            off = start + rnd.randrange(ln)
            if off < size:
                patches.append((off, bytes([rnd.randrange(256)])))
        if rnd.random() < 0.2:
            # overwrite a whole 8-byte entry with something wild
            start, ln = rnd.choice(regions)
            patches.append((start + 8 * rnd.randrange(max(1, ln // 8)),
                            P(">Q", rnd.getrandbits(64))))
        name = variant(src, "rand-%s-%d" % (src, k), patches,
                       truncate=rnd.randrange(size) if rnd.random() < 0.1 else None)
        rc, err = run(["info", name])
        sane(rc, err, (0, 2), name + " info")
        rc, err = run(["compare", name, "base.raw"])
        sane(rc, err, (0, 1, 2), name + " compare")
        os.unlink(name)
        count += 1

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("%d random variants survived" % count)
PY
echo ok
