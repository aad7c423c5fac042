#!/bin/sh
# raw -> AMI bundle -> raw is bit-exact; the bundle has the layout
# ec2-bundle-image gives (10 MiB parts, part names, manifest fields), and
# the output directory appears only when complete.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/ami-lib.sh"

make_keys "$TMPD"
K="cert=$TMPD/user.pem,privatekey=$TMPD/user.key,ec2cert=$TMPD/ec2.pem,user=123456789012"

# 40 MiB: random data (does not compress: several parts), text, zeros, holes
make_mixed_raw "$TMPD/in.raw" 40
dd if=/dev/urandom of="$TMPD/in.raw" bs=1M count=24 seek=8 conv=notrunc status=none

"$SCIMG" convert -f raw -O ami -o "$K,prefix=disk,arch=x86_64" "$TMPD/in.raw" "$TMPD/b" ||
  fail "convert to ami"
[ -f "$TMPD/b/disk.manifest.xml" ] || fail "no manifest"
n=$(ls "$TMPD/b" | grep -c '^disk\.part\.')
[ "$n" -ge 3 ] || fail "expected at least 3 parts, got $n"
[ "$(stat -c %s "$TMPD/b/disk.part.0")" -eq 10485760 ] || fail "part 0 is not 10 MiB"
[ "$(ls -A "$TMPD/b" | wc -l)" -eq $((n + 1)) ] || fail "stray files: $(ls -A "$TMPD/b")"
ls -A "$TMPD" | grep -q scimg && fail "temporary directory left: $(ls -A "$TMPD")"

m="$TMPD/b/disk.manifest.xml"
head -c 100 "$m" | grep -q "^<?xml version='1.0'?><manifest><version>2007-10-10</version><bundler>" ||
  fail "manifest does not start like ec2-ami-tools': $(head -c 80 "$m")"
grep -q "<block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping><mapping><virtual>root</virtual><device>/dev/sda1</device></mapping></block_device_mapping>" "$m" ||
  fail "default block device mapping"
[ "$(manifest_field "$m" image/size)" = "$(stat -c %s "$TMPD/in.raw")" ] || fail "<size>"
total=$(cat "$TMPD"/b/disk.part.* | wc -c)
[ "$(manifest_field "$m" image/bundled_size)" = "$total" ] || fail "<bundled_size>"
# element order of the manifest and of <image>
python3 - "$m" <<'PY' || fail "element order"
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
assert [c.tag for c in r] == ["version", "bundler", "machine_configuration", "image", "signature"], [c.tag for c in r]
assert [c.tag for c in r.find("image")] == ["name", "user", "type", "digest", "size", "bundled_size",
    "ec2_encrypted_key", "user_encrypted_key", "ec2_encrypted_iv", "user_encrypted_iv", "parts"]
PY

"$SCIMG" info "$m" > "$TMPD/info" || fail "info without key"
grep -q "file format: ami" "$TMPD/info" || fail "info format"
grep -q "needs -I privatekey" "$TMPD/info" || fail "info must say the key is needed"
"$SCIMG" info --output=json -I "privatekey=$TMPD/user.key,cert=$TMPD/user.pem" "$m" > "$TMPD/info.json" ||
  fail "info with key"
grep -q '"signature": "valid' "$TMPD/info.json" || fail "signature not verified: $(cat "$TMPD/info.json")"
grep -q '"tar-member": "disk"' "$TMPD/info.json" || fail "tar member"

# reading needs the key, with a clear error
"$SCIMG" convert -O raw "$m" "$TMPD/x.raw" 2>"$TMPD/err"; [ $? -eq 2 ] || fail "convert without key"
grep -q "privatekey" "$TMPD/err" || fail "no hint about privatekey: $(cat "$TMPD/err")"
[ ! -e "$TMPD/x.raw" ] || fail "output left behind"
"$SCIMG" convert -I help -O raw "$m" "$TMPD/x.raw" >"$TMPD/err" 2>&1 || fail "-I help"
grep -q "^ *ami .*privatekey.*cert" "$TMPD/err" || fail "-I help does not list the options: $(cat "$TMPD/err")"
[ ! -e "$TMPD/x.raw" ] || fail "-I help converted"

"$SCIMG" convert -I "privatekey=$TMPD/user.key" -O raw "$m" "$TMPD/back.raw" || fail "convert back"
cmp "$TMPD/in.raw" "$TMPD/back.raw" || fail "round trip differs"

# into an existing non-empty directory: files moved in, others untouched
mkdir "$TMPD/shared"; echo keep > "$TMPD/shared/other.txt"
head -c 3000000 /dev/urandom > "$TMPD/small.raw"
"$SCIMG" convert -f raw -O ami -o "$K,prefix=small" "$TMPD/small.raw" "$TMPD/shared" || fail "into existing dir"
[ "$(cat "$TMPD/shared/other.txt")" = keep ] || fail "other file touched"
ls "$TMPD/shared" | grep -q '^small.part.0$' || fail "single part must be named small.part.0: $(ls "$TMPD/shared")"
ls -A "$TMPD/shared" | grep -q scimg && fail "temporary directory left inside"
"$SCIMG" convert -I "privatekey=$TMPD/user.key" -O raw "$TMPD/shared/small.manifest.xml" "$TMPD/small.back" ||
  fail "read small bundle"
cmp "$TMPD/small.raw" "$TMPD/small.back" || fail "small round trip"

# an empty image
: > "$TMPD/empty.raw"
"$SCIMG" convert -f raw -O ami -o "$K,prefix=e" "$TMPD/empty.raw" "$TMPD/e" || fail "empty image"
"$SCIMG" convert -I "privatekey=$TMPD/user.key" -O raw "$TMPD/e/e.manifest.xml" "$TMPD/e.raw" || fail "empty back"
[ "$(stat -c %s "$TMPD/e.raw")" -eq 0 ] || fail "empty round trip"

# bad options fail before anything is written
"$SCIMG" convert -f raw -O ami -o "cert=$TMPD/user.pem,privatekey=$TMPD/other.key,ec2cert=$TMPD/ec2.pem,user=1" \
  "$TMPD/small.raw" "$TMPD/bad" 2>"$TMPD/err"; [ $? -eq 2 ] || fail "mismatched key"
grep -q "not the key of cert" "$TMPD/err" || fail "mismatch message: $(cat "$TMPD/err")"
"$SCIMG" convert -f raw -O ami -o "cert=$TMPD/user.pem" "$TMPD/small.raw" "$TMPD/bad" 2>"$TMPD/err"
grep -q "privatekey" "$TMPD/err" || fail "missing option message: $(cat "$TMPD/err")"
[ ! -e "$TMPD/bad" ] || fail "failed convert left $TMPD/bad"
ls -A "$TMPD" | grep -q scimg && fail "temporary directory left: $(ls -A "$TMPD")"

# SIGTERM while bundling: the temporary directory goes with its parts
truncate -s 64G "$TMPD/big.raw"
"$SCIMG" convert -f raw -O ami -o "$K" "$TMPD/big.raw" "$TMPD/sig" 2>"$TMPD/err" &
pid=$!
wait_for_temp "$TMPD" $pid
kill -TERM $pid
wait $pid; rc=$?
rm -f "$TMPD/big.raw"
if [ $rc -ne 0 ]; then
  grep -q "interrupted" "$TMPD/err" || fail "SIGTERM: $(cat "$TMPD/err")"
  [ ! -e "$TMPD/sig" ] || fail "SIGTERM left $TMPD/sig"
  ls -A "$TMPD" | grep -q scimg && fail "SIGTERM left a temporary directory: $(ls -A "$TMPD")"
fi
echo ok
