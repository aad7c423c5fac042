#!/bin/sh
# Corrupted Supercloud images (truncated, bit flips in tar headers and the
# descriptor, a qcow2 or raw member damaged): info, convert and check exit
# 0, 1 or 2 -- never a signal, never a hang.
. "$(dirname "$0")/functions.sh"
corrupt_corpus_test
requires python3 timeout
cd "$TMPD" || fail "cd"
make_mixed_raw d.raw 1
"$SCIMG" convert -O sci -o guest=skip d.raw base.sci || fail "convert -O sci"
size=$(stat -c %s base.sci)

run() { # FILE
  timeout 60 "$SCIMG" info "$1" >/dev/null 2>&1; rc=$?
  [ $rc -le 2 ] || fail "info $1: exit $rc (signal or timeout)"
  timeout 60 "$SCIMG" convert --no-sync -f sci -O raw "$1" out.raw >/dev/null 2>&1; rc=$?
  [ $rc -le 2 ] || fail "convert $1: exit $rc (signal or timeout)"
  rm -f out.raw
  timeout 60 "$SCIMG" check --container-only "$1" >/dev/null 2>&1; rc=$?
  [ $rc -le 2 ] || fail "check $1: exit $rc (signal or timeout)"
  [ $rc -ne 0 ] || [ "${2:-}" = may-pass ] || fail "check $1: a corrupted image passed"
}

n=0
for cut in 1 100 511 512 600 1024 1536 2048 4096 65536 $((size / 2)) $((size - 1024)) $((size - 1))
do
  head -c "$cut" base.sci > t.sci
  run t.sci; n=$((n + 1))
done
# bit flips: every 47th byte of the tar headers, every 97th of the first KiB of
# each member, and 12 spread over the file
python3 - base.sci <<'EOF2' > offsets
import sys, tarfile
t = tarfile.open(sys.argv[1]); ms = t.getmembers()
offs = set()
for m in ms:
    offs.update(range(m.offset, m.offset + 512, 47))
    offs.update(range(m.offset_data, min(m.offset_data + m.size, m.offset_data + 1024), 97))
size = ms[-1].offset_data + ms[-1].size
offs.update(range(0, size, max(1, size // 12)))
print("\n".join(str(o) for o in sorted(offs)))
EOF2
for off in $(cat offsets); do
  cp base.sci t.sci
  python3 -c "
import sys
f = open('t.sci', 'r+b'); f.seek($off); b = f.read(1); f.seek($off); f.write(bytes([b[0] ^ 0x41]))"
  # a flip in padding or mtime may leave a valid image
  run t.sci may-pass; n=$((n + 1))
done
echo "ok: $n corrupted variants"
