#!/bin/sh
# raw -> qcow2 -> raw with the writer's options; qemu-img check finds no
# errors or leaks and qemu-img compare finds the content identical.
. "$(dirname "$0")/functions.sh"
requires_qemu_img

make_mixed_raw "$TMPD/in.raw" 24
# a size that is not a multiple of any cluster size, with data at the end
head -c 5000000 "$TMPD/in.raw" > "$TMPD/odd.raw"
dd if=/dev/urandom of="$TMPD/odd.raw" bs=1 count=333 seek=4999667 conv=notrunc status=none

check_one() { # SRC OPTIONS...
  src=$1; shift
  out="$TMPD/out.qcow2"
  rm -f "$out" "$TMPD/back.raw"
  "$SCIMG" convert -f raw -O qcow2 "$@" "$src" "$out" || fail "convert $*"
  "$QEMU_IMG" check -f qcow2 "$out" > "$TMPD/check.txt" 2>&1 ||
    { cat "$TMPD/check.txt"; fail "qemu-img check ($*)"; }
  grep -q 'No errors were found' "$TMPD/check.txt" || { cat "$TMPD/check.txt"; fail "check output ($*)"; }
  "$QEMU_IMG" compare -q -f raw -F qcow2 "$src" "$out" || fail "qemu-img compare ($*)"
  "$SCIMG" convert -O raw "$out" "$TMPD/back.raw" || fail "read back ($*)"
  # the virtual size is rounded up to 512 bytes (QEMU counts sectors)
  n=$(stat -c %s "$src")
  [ "$(stat -c %s "$TMPD/back.raw")" = $(( (n + 511) / 512 * 512 )) ] || fail "read-back size ($*)"
  cmp -s -n "$n" "$src" "$TMPD/back.raw" || fail "scimg read-back differs ($*)"
}

check_one "$TMPD/in.raw"
check_one "$TMPD/in.raw" -c
check_one "$TMPD/in.raw" -c -o compression_type=zstd
check_one "$TMPD/in.raw" -o cluster_size=4k
check_one "$TMPD/in.raw" -o cluster_size=2M
check_one "$TMPD/in.raw" -c -o cluster_size=4k
check_one "$TMPD/in.raw" -c -o cluster_size=2M,compression_type=zstd
check_one "$TMPD/in.raw" -o cluster_size=512,refcount_bits=64
check_one "$TMPD/in.raw" -c -o cluster_size=512,refcount_bits=1
check_one "$TMPD/in.raw" -c -o refcount_bits=2,lazy_refcounts=on
check_one "$TMPD/in.raw" -o refcount_bits=8,compat=1.1,preallocation=off
check_one "$TMPD/in.raw" -S 0
check_one "$TMPD/in.raw" -c -S 0 -o cluster_size=16k
check_one "$TMPD/odd.raw"
check_one "$TMPD/odd.raw" -c
check_one "$TMPD/odd.raw" -c -o cluster_size=64k,compression_type=zstd
check_one "$TMPD/odd.raw" -S 512 -o cluster_size=1k

# the features land in the header
"$SCIMG" convert -f raw -O qcow2 -c -o compression_type=zstd,lazy_refcounts=on,refcount_bits=4,cluster_size=16k \
  "$TMPD/in.raw" "$TMPD/f.qcow2" || fail "convert features"
"$QEMU_IMG" info --output=json "$TMPD/f.qcow2" > "$TMPD/qi.json" || fail "qemu-img info"
python3 - "$TMPD/qi.json" <<'PY' || fail "qemu-img sees the wrong features"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["format-specific"]["data"]
assert d["cluster-size"] == 16384, d
assert s["compat"] == "1.1" and s["compression-type"] == "zstd", s
assert s["lazy-refcounts"] is True and s["refcount-bits"] == 4, s
PY
"$SCIMG" info --output=json "$TMPD/f.qcow2" > "$TMPD/si.json" || fail "scimg info"
python3 - "$TMPD/si.json" <<'PY' || fail "scimg info keys"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["format-specific"]["data"]
assert s["compat"] == "1.1" and d["cluster-size"] == 16384, d
assert s["compression-type"] == "zstd" and s["refcount-bits"] == 4, s
assert s["lazy-refcounts"] is True and d["scimg"]["has-compressed-clusters"] is True, d
PY

# a large sparse disk stays small and bounded
truncate -s 2T "$TMPD/huge.raw"
printf 'end of a huge disk' | dd of="$TMPD/huge.raw" bs=1 seek=$((2 * 1024 * 1024 * 1024 * 1024 - 100)) conv=notrunc status=none
"$SCIMG" convert -f raw -O qcow2 "$TMPD/huge.raw" "$TMPD/huge.qcow2" || fail "convert 2T"
"$QEMU_IMG" check "$TMPD/huge.qcow2" >/dev/null 2>&1 || fail "check 2T"
[ "$(stat -c %s "$TMPD/huge.qcow2")" -lt 2000000 ] || fail "2T sparse output too large"

# bad options are refused, naming the key
for o in cluster_size=1000 cluster_size=4M refcount_bits=3 compression_type=lzo \
         preallocation=bogus compat=0.5 lazy_refcounts=maybe extended_l2=on; do
  "$SCIMG" convert -f raw -O qcow2 -o "$o" "$TMPD/odd.raw" "$TMPD/x.qcow2" 2>"$TMPD/err" &&
    fail "option $o accepted"
  key=${o%%=*}
  grep -q "$key" "$TMPD/err" || fail "error for $o does not name $key: $(cat "$TMPD/err")"
done
[ ! -e "$TMPD/x.qcow2" ] || fail "output left behind after refused options"
# 512-byte clusters cannot address 1 TiB (qemu: 128 GiB at most)
truncate -s 1T "$TMPD/peta.raw"
"$SCIMG" convert -f raw -O qcow2 -o cluster_size=512 "$TMPD/peta.raw" "$TMPD/x.qcow2" 2>"$TMPD/err" &&
  fail "1 TiB with 512-byte clusters accepted"
grep -q 'cluster_size' "$TMPD/err" || fail "size error does not suggest cluster_size"
echo ok
