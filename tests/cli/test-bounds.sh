#!/bin/sh
# Resource bounds: info and convert of a 2 TiB-virtual image with little
# data, to every format that can be written (the registry), run under a low
# address-space limit and in time proportional to the data, not the
# virtual size.
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
t=$(( $(date +%s) - start ))
echo "raw: ${t}s"
[ $t -lt 60 ] || fail "raw took ${t}s for 3 MiB of data in 2 TiB"
# every format that can be written (the registry: a new one is tested too)
writable=$(formats write) || exit 1
for f in $writable; do
  [ "$f" = raw ] && continue
  out="$TMPD/out.$f" src="$TMPD/big.raw" t0=$(date +%s)
  # a format that digests every byte, holes included (fmt_digests_holes):
  # the memory bound on a 512 MiB disk with the same data
  if fmt_digests_holes "$f"; then
    src="$TMPD/mid.raw"
    if [ ! -f "$src" ]; then
      truncate -s 512M "$src"
      for o in 0:0 1000:200 1500000:511; do
        dd if="$TMPD/big.raw" of="$src" bs=1M skip=${o%:*} seek=${o#*:} count=1 conv=notrunc status=none
      done
    fi
  fi
  run_limited "$SCIMG" convert -f raw -O "$f" $(fmt_wopts "$f") "$src" "$out" 2>"$TMPD/err" ||
    { grep -qi "too large\|exceeds\|maximum\|can hold\|at most" "$TMPD/err" && { echo "$f: refuses 2 TiB: $(cat "$TMPD/err")"; rm -rf "$out"; continue; }; fail "convert to $f under ulimit: $(cat "$TMPD/err")"; }
  img=$(fmt_image "$out" "$f")
  run_limited "$SCIMG" info $(fmt_ropts "$f") "$img" >/dev/null || fail "info $f under ulimit"
  if [ -n "$(fmt_ropts "$f")" ]; then
    # compare takes no reader options: the content is checked through a
    # convert back to raw, which reads every extent the same way
    run_limited "$SCIMG" convert $(fmt_ropts "$f") -O raw "$img" "$TMPD/back.raw" || fail "convert $f back under ulimit"
    img="$TMPD/back.raw"
  fi
  run_limited "$SCIMG" compare -f raw "$src" "$img" >/dev/null || fail "$f content differs"
  rm -rf "$out" "$TMPD/back.raw"
  # a bound per format: seconds for the data, not hours for the holes
  t=$(( $(date +%s) - t0 ))
  echo "$f: ${t}s"
  [ $t -lt 60 ] || fail "$f took ${t}s for 3 MiB of data in 2 TiB"
done
echo "ok ($(( $(date +%s) - start ))s)"
