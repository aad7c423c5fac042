#!/bin/sh
# Corrupted VHD and VHDX images (tests/fixtures/vhd-corrupt.py: truncated,
# fields set to extreme values with checksums fixed, bad BAT entries,
# broken locators and log entries, random flips) made from every VHD/VHDX
# image the other tests read: scimg refuses them (exit 2) or reads them,
# never crashes, hangs or grows its memory.
. "$(dirname "$0")/functions.sh"
corrupt_corpus_test
requires python3 timeout
TOOL=$top_srcdir/tests/fixtures/vhd-tool.py
CORRUPT=$top_srcdir/tests/fixtures/vhd-corrupt.py
TIME=
[ -x /usr/bin/time ] && TIME=/usr/bin/time
MAX_RSS_KB=${SCIMG_TEST_MAX_RSS_KB:-600000}

BIN=$SCIMG   # the program itself, not libtool's wrapper (functions.sh)

V=$TMPD/v
mkdir "$V"
count=0 refused=0 opened=0

# run CMD... bounded in time, record memory; fail on a signal or timeout
bounded() {
  if [ -n "$TIME" ]; then
    timeout -s KILL 60 "$TIME" -f %M -o "$TMPD/rss" "$@" > /dev/null 2> "$TMPD/err"
  else
    timeout -s KILL 60 "$@" > /dev/null 2> "$TMPD/err"
  fi
  rc=$?
  case $rc in
    0|1|2) ;;
    *) fail "$* exited $rc (signal or timeout): $(tail -3 "$TMPD/err")" ;;
  esac
  if [ -n "$TIME" ] && [ -s "$TMPD/rss" ]; then
    rss=$(tail -1 "$TMPD/rss")
    case $rss in
      *[!0-9]*) ;;
      *) [ "$rss" -le "$MAX_RSS_KB" ] || fail "$* used $rss KiB" ;;
    esac
  fi
  if grep -q -e 'AddressSanitizer' -e 'runtime error' "$TMPD/err"; then
    fail "$*: sanitizer report: $(head -5 "$TMPD/err")"
  fi
  return $rc
}

check_variants() { # SRC [MAX [TAG-REGEX]]
  python3 "$CORRUPT" "$1" "$V" ${2:-0} ${3:+"$3"} > "$TMPD/list" || fail "vhd-corrupt.py $1"
  while read -r v; do
    count=$((count + 1))
    if bounded "$BIN" info "$v"; then
      opened=$((opened + 1))
      bounded "$BIN" compare "$v" "$v"
      [ $rc -le 1 ] || [ -s "$TMPD/err" ] || fail "$v: compare failed without a message"
    else
      [ $rc -eq 2 ] || fail "$v: info exit $rc"
      [ -s "$TMPD/err" ] || fail "$v: refused without a message"
      refused=$((refused + 1))
    fi
    rm -f "$v"
  done < "$TMPD/list"
}

# images made here (always available)
make_mixed_raw "$TMPD/in.raw" 9
"$SCIMG" convert -O vhd "$TMPD/in.raw" "$TMPD/d.vhd" || fail "make d.vhd"
"$SCIMG" convert -O vhd -o subformat=fixed "$TMPD/in.raw" "$TMPD/f.vhd" || fail "make f.vhd"
"$SCIMG" convert -O vhdx -o block_size=1M "$TMPD/in.raw" "$TMPD/o.vhdx" || fail "make o.vhdx"
python3 "$TOOL" vhdxlog "$TMPD/o.vhdx" "$TMPD/dirty.vhdx" > /dev/null || fail "make dirty.vhdx"
"$SCIMG" convert -O vhdx -o block_size=1M "$TMPD/in.raw" "$V/parent.vhdx" || fail "make parent"
python3 "$TOOL" vhdxdiff "$V/parent.vhdx" "$TMPD/child.avhdx" "$TMPD/in.raw" > /dev/null || fail "make child"
for f in d.vhd f.vhd o.vhdx dirty.vhdx child.avhdx; do
  check_variants "$TMPD/$f"
done

# the shared real-world fixtures
if [ -f "$SHARED_DIR/fixtures/external/images.tsv" ]; then
  requires_external
  E=$EXT_UNPACKED
  for f in dfvfs/ext2.vhd dfvfs/image-old.vhd imhex/vhd.hexpat.vhd qemu/afl5.img \
           dfvfs/image.vhd dfvfs/image-differential.vhd; do
    check_variants "$E/$f"
  done
  for f in qemu/d2v-zerofilled.vhd qemu/hyperv2012r2-dynamic.vhd qemu/virtualpc-dynamic.vhd; do
    check_variants "$E/$f" 40
  done
  # large files: few variants each (every one is a full copy)
  check_variants "$E/qemu/test-disk2vhd.vhdx" 60
  check_variants "$E/qemu/iotest-dirtylog-10G-4M.vhdx" 20 '^(log|hdr-log)'
  check_variants "$E/qemu/iotest-dynamic-1G.vhdx" 8 '^(hdr-seq|rt-bat|bat-|meta-.*item)' 
  # the differencing fixture with a parent beside it
  head -c 4194304 /dev/urandom > "$TMPD/fp.raw"
  "$SCIMG" convert -f raw -O vhd "$TMPD/fp.raw" "$V/fat-parent.vhd" || fail "make fat-parent"
  python3 "$TOOL" setuid "$V/fat-parent.vhd" 5fa21a55f394aa4d99581951a67d5540
  check_variants "$E/dfvfs/fat-differential.vhd"
fi
echo "$count variants: $refused refused, $opened read"
[ $refused -gt 0 ] && [ $opened -gt 0 ] || fail "expected both refused and readable variants"
echo ok
