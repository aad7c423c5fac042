#!/bin/sh
# Resource bounds: info and convert of a 2 TiB-virtual image with little
# data run under a low address-space limit and in time proportional to the
# data, not the virtual size.
. "$(dirname "$0")/functions.sh"
[ -z "${SCIMG_SANITIZERS:-}" ] || skip "address-space limit does not apply under sanitizers"

truncate -s 2T "$TMPD/big.raw" || skip "filesystem cannot hold a 2 TiB sparse file"
for o in 0 1000 1500000; do
  head -c 1M /dev/urandom | dd of="$TMPD/big.raw" bs=1M seek=$o conv=notrunc status=none
done
limit_kib=$((512 * 1024))

run_limited() { ( ulimit -v $limit_kib; exec timeout 120 "$@" ); }

run_limited "$SCIMG" info -f raw "$TMPD/big.raw" >/dev/null || fail "info under ulimit"
start=$(date +%s)
run_limited "$SCIMG" convert -f raw -O raw "$TMPD/big.raw" "$TMPD/out.raw" || fail "convert raw under ulimit"
"$SCIMG" compare -f raw -F raw "$TMPD/big.raw" "$TMPD/out.raw" >/dev/null || fail "content differs"
rm -f "$TMPD/out.raw"
for f in $FORMATS_WRITABLE; do
  [ "$f" = raw ] && continue
  run_limited "$SCIMG" convert -f raw -O "$f" "$TMPD/big.raw" "$TMPD/out.$f" 2>"$TMPD/err" ||
    { grep -qi "too large\|exceeds\|maximum\|can hold" "$TMPD/err" && { echo "$f: refuses 2 TiB: $(cat "$TMPD/err")"; continue; }; fail "convert to $f under ulimit: $(cat "$TMPD/err")"; }
  run_limited "$SCIMG" info "$TMPD/out.$f" >/dev/null || fail "info $f under ulimit"
  run_limited "$SCIMG" compare -f raw "$TMPD/big.raw" "$TMPD/out.$f" >/dev/null || fail "$f content differs"
  rm -f "$TMPD/out.$f"
done
elapsed=$(( $(date +%s) - start ))
[ $elapsed -lt 100 ] || fail "took ${elapsed}s for 3 MiB of data in 2 TiB"
echo "ok (${elapsed}s)"
