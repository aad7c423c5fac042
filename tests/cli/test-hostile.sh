#!/bin/sh
# test-hostile.sh - scimg on images that somebody else uploaded.
#
# tests/fixtures/make-hostile.py builds a corpus whose images name files
# they must not reach: a marker file outside their directory (absolute
# names, '..', symlinks, URLs, QEMU protocol prefixes), a FIFO, a device,
# a parent that cannot be verified, or they are formats scimg cannot read.
# For every case, info (human and JSON) and convert run under a timeout and
# must: finish (no hang), not crash, never show the marker in any output,
# message or file, never send a request to the loopback server the images
# name, print no control character, give parseable JSON, and (for refused
# cases) fail without leaving an output.  With --trust-chain the marker does
# come through: the test can see a leak.
. "$(dirname "$0")/functions.sh"
requires python3
GEN="$top_srcdir/tests/fixtures/make-hostile.py"
MARK=SCIMG-HOSTILE-MARKER-7f3a9c
D=$TMPD/h
mkdir -p "$D/out" "$D/www"

python3 "$GEN" marker "$D" || fail "make marker"
# two loopback servers: "internal" holds the marker and must never see a
# request; "public" serves the remote hostile images
mkdir -p "$D/internal"
cp "$D/outside/marker.raw" "$D/internal/"
pids=""
stop_srv() { for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
cleanup_fns="stop_srv $cleanup_fns"
start_srv() { # ROOT NAME
  python3 "$top_srcdir/tests/cli/httpd.py" "$1" "$TMPD/$2.port" "$TMPD/$2.log" &
  pids="$pids $!"
  i=0
  while [ ! -s "$TMPD/$2.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ -s "$TMPD/$2.port" ] || fail "http server $2 did not start"
}
start_srv "$D/internal" internal
start_srv "$D/www" public
port=$(cat "$TMPD/internal.port")
pport=$(cat "$TMPD/public.port")

# the other tenants' images, in formats with a parent identity
"$SCIMG" convert -f raw -O qcow2 "$D/outside/marker.raw" "$D/outside/tenant.qcow2" || fail "tenant.qcow2"
"$SCIMG" convert -f raw -O vpc "$D/outside/marker.raw" "$D/outside/tenant.vhd" 2>/dev/null ||
  "$SCIMG" convert -f raw -O vhd "$D/outside/marker.raw" "$D/outside/tenant.vhd" || fail "tenant.vhd"
"$SCIMG" convert -f raw -O vmdk "$D/outside/marker.raw" "$D/outside/tenant.vmdk" || fail "tenant.vmdk"
python3 "$GEN" cases "$D" "$port" || fail "make cases"

n=0; bad=0
bad() { echo "  $1: $2"; bad=$((bad + 1)); }

# run NAME TAG CMD...: run under a timeout; check time, crash, marker,
# control characters; leaves the exit code in $rc
run() {
  name=$1 tag=$2; shift 2
  timeout -s KILL 30 "$@" > "$D/out/$name.$tag.out" 2> "$D/out/$name.$tag.err" < /dev/null
  rc=$?
  [ $rc -eq 137 ] && bad "$name" "$tag: hung (killed after 30 s)"
  [ $rc -gt 128 ] && [ $rc -ne 137 ] && bad "$name" "$tag: died with signal $((rc - 128))"
  grep -q "AddressSanitizer\|runtime error:\|LeakSanitizer" "$D/out/$name.$tag.err" &&
    bad "$name" "$tag: sanitizer report"
  grep -aq "$MARK" "$D/out/$name.$tag.out" "$D/out/$name.$tag.err" &&
    bad "$name" "$tag: the marker is in the output"
  grep -aq "1048576" "$D/out/$name.$tag.err" &&
    bad "$name" "$tag: a message tells the outside file's size"
  LC_ALL=C grep -aq "$(printf '[\001-\010\013-\037\177]')" "$D/out/$name.$tag.out" "$D/out/$name.$tag.err" &&
    bad "$name" "$tag: control character in the output"
  return 0
}

while IFS="$(printf '\t')" read -r name img class want; do
  n=$((n + 1))
  f="$D/cases/$img"
  run "$name" info "$SCIMG" info "$f"
  run "$name" json "$SCIMG" info --output=json "$f"
  if [ $rc -eq 0 ]; then
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$D/out/$name.json.out" 2>/dev/null ||
      bad "$name" "info --output=json is not valid JSON"
  fi
  run "$name" convert "$SCIMG" convert -O raw "$f" "$D/out/$name.raw"
  if [ "$want" = refuse ]; then
    [ $rc -eq 2 ] || bad "$name" "convert: exit $rc, expected 2 (refused)"
    [ -e "$D/out/$name.raw" ] && bad "$name" "convert left an output"
    [ -s "$D/out/$name.convert.err" ] || bad "$name" "convert refused without a message"
  else
    [ $rc -eq 0 ] || bad "$name" "convert: exit $rc, expected 0: $(cat "$D/out/$name.convert.err")"
  fi
  [ -e "$D/out/$name.raw" ] && grep -aq "$MARK" "$D/out/$name.raw" && bad "$name" "the marker is in the converted image"
  case $class in
    foreign-format)
      grep -q "not supported" "$D/out/$name.convert.err" || bad "$name" "convert does not name the format: $(cat "$D/out/$name.convert.err")" ;;
    qcow2-backing|qcow2-data-file|vmdk-extent|vmdk-parent|vhd-parent)
      grep -q "refused\|not found\|loop\|directory\|not a regular file" "$D/out/$name.convert.err" ||
        bad "$name" "convert does not say it refused: $(cat "$D/out/$name.convert.err")" ;;
    parent-identity)
      grep -q "cannot be verified\|does not match\|not found" "$D/out/$name.convert.err" ||
        bad "$name" "convert does not say the parent is unverified: $(cat "$D/out/$name.convert.err")" ;;
  esac
done < "$D/cases.tsv"

# the top image's header and the refused reference are still shown
grep -q "backing file: .*outside/marker.raw" "$D/out/q-bk-abs.info.out" || bad q-bk-abs "info does not show the header and the reference"
grep -q "unopened-files" "$D/out/q-bk-abs.json.out" || bad q-bk-abs "info --output=json lacks unopened-files"
grep -q 'refused' "$D/out/q-bk-abs.json.out" || bad q-bk-abs "info does not say it refused"
# a mismatching parent's own id is never printed
uid=$(python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.seek(-512,2); b=f.read(512)[68:84]; print(b.hex())' "$D/outside/tenant.vhd")
grep -qi "$uid" "$D"/out/h-*.err && bad h-wrong-uid "a message shows the parent's unique id"

# remote images may name only relative URLs on their own server
for r in $(python3 "$GEN" remote "$D" "$port"); do
  n=$((n + 1))
  run "$r" info "$SCIMG" info "http://127.0.0.1:$pport/$r"
  run "$r" convert "$SCIMG" convert -O raw "http://127.0.0.1:$pport/$r" "$D/out/$r.raw"
  [ $rc -eq 2 ] || bad "$r" "convert: exit $rc, expected 2 (refused)"
  [ -e "$D/out/$r.raw" ] && bad "$r" "convert left an output"
done

# a stream on standard input is refused, never written as an empty image
run stdin convert sh -c 'cat "$1" | "$2" convert -O raw /dev/stdin "$3"' sh "$D/outside/tenant.qcow2" "$SCIMG" "$D/out/stdin.raw"
[ $rc -eq 2 ] || bad stdin "convert from a pipe: exit $rc, expected 2"
[ -e "$D/out/stdin.raw" ] && bad stdin "convert from a pipe left an output"

# no request ever reached the loopback server the images name
if [ -s "$TMPD/internal.log" ]; then
  bad http "requests reached the internal server: $(head -3 "$TMPD/internal.log")"
fi

# positive control: with --trust-chain the marker comes through
"$SCIMG" convert --trust-chain -O raw "$D/cases/q-bk-abs/x.qcow2" "$D/out/trusted.raw" ||
  bad trust "convert --trust-chain failed"
grep -aq "$MARK" "$D/out/trusted.raw" || bad trust "--trust-chain did not open the backing file (the test could not see a leak)"
# and the FIFO stays refused even then, without hanging
run fifo-trusted convert "$SCIMG" convert --trust-chain -O raw "$D/cases/q-bk-fifo/x.qcow2" "$D/out/ft.raw"
[ $rc -eq 2 ] || bad fifo-trusted "exit $rc, expected 2"

echo "$n hostile cases, $bad problems"
[ $bad -eq 0 ] || fail "$bad problems"
exit 0
