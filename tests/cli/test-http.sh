#!/bin/sh
# Remote inputs: images read over http from a loopback server that serves
# Range requests (tests/cli/httpd.py) equal the local ones, for info and
# convert; an AMI manifest URL fetches its parts beside it; a 404 is a clear
# error; a dropped connection and a 500 are retried; from a server without
# Range support, files up to 16 MiB (an AMI bundle's manifest and parts) are
# read whole and larger ones as a stream.
. "$(dirname "$0")/functions.sh"
requires python3
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

mkdir "$TMPD/www"
python3 "$top_srcdir/tests/cli/httpd.py" "$TMPD/www" "$TMPD/port" "$TMPD/log" &
srv=$!
stop_server() { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }
cleanup_fns="$cleanup_fns stop_server"
for _ in $(seq 50); do [ -f "$TMPD/port" ] && break; sleep 0.1; done
[ -f "$TMPD/port" ] || fail "test server did not start"
U="http://127.0.0.1:$(cat "$TMPD/port")"

make_mixed_raw "$TMPD/www/disk.raw" 12

# info and convert of raw, remote = local
"$SCIMG" info --output=json -f raw "$TMPD/www/disk.raw" | grep -v '"filename"\|"actual-size"' > "$TMPD/local.json"
"$SCIMG" info --output=json -f raw "$U/disk.raw" | grep -v '"filename"\|"actual-size"' > "$TMPD/remote.json" ||
  fail "remote info"
cmp "$TMPD/local.json" "$TMPD/remote.json" || fail "remote info differs: $(diff "$TMPD/local.json" "$TMPD/remote.json")"
"$SCIMG" convert -f raw -O raw "$U/disk.raw" "$TMPD/r.raw" || fail "remote convert"
cmp "$TMPD/www/disk.raw" "$TMPD/r.raw" || fail "remote convert differs"

# qcow2, when this build reads it (compared with qemu-img's reading)
if "$SCIMG" --help | grep -q ' qcow2(r'; then
  requires_qemu_img
  "$QEMU_IMG" convert -f raw -O qcow2 "$TMPD/www/disk.raw" "$TMPD/www/disk.qcow2" || fail "qemu-img"
  "$SCIMG" info --output=json "$TMPD/www/disk.qcow2" | grep -v '"filename"\|"actual-size"' > "$TMPD/lq.json"
  "$SCIMG" info --output=json "$U/disk.qcow2" | grep -v '"filename"\|"actual-size"' > "$TMPD/rq.json" ||
    fail "remote qcow2 info"
  cmp "$TMPD/lq.json" "$TMPD/rq.json" || fail "remote qcow2 info differs"
  "$SCIMG" convert -O raw "$U/disk.qcow2" "$TMPD/q.raw" || fail "remote qcow2 convert"
  cmp "$TMPD/www/disk.raw" "$TMPD/q.raw" || fail "remote qcow2 differs"
fi

# 404
"$SCIMG" info -f raw "$U/missing.raw" 2>"$TMPD/err"; [ $? -eq 2 ] || fail "404 exit"
grep -q "'$U/missing.raw': HTTP 404" "$TMPD/err" || fail "404 message: $(cat "$TMPD/err")"

# dropped connections (each answer cut off once) and 500s are retried
"$SCIMG" convert -f raw -O raw "$U/drop/disk.raw" "$TMPD/d.raw" 2>"$TMPD/err" || fail "drop: $(cat "$TMPD/err")"
cmp "$TMPD/www/disk.raw" "$TMPD/d.raw" || fail "drop: differs"
grep -q "^GET /drop/disk.raw .* -206$" "$TMPD/log" || fail "the server did not drop a connection"
"$SCIMG" convert -f raw -O raw "$U/fail500/disk.raw" "$TMPD/f.raw" 2>"$TMPD/err" || fail "500: $(cat "$TMPD/err")"
cmp "$TMPD/www/disk.raw" "$TMPD/f.raw" || fail "500: differs"
grep -q "^GET /fail500/disk.raw .* 500$" "$TMPD/log" || fail "the server did not answer 500"

# no Range support: a file larger than 16 MiB is read as a stream (more in
# test-http-norange.sh); a smaller one is read whole
truncate -s 20M "$TMPD/www/big.raw"
"$SCIMG" convert -f raw -O raw "$U/norange/big.raw" "$TMPD/n.raw" 2>"$TMPD/err" || fail "norange: $(cat "$TMPD/err")"
cmp "$TMPD/www/big.raw" "$TMPD/n.raw" || fail "norange: differs"
rm -f "$TMPD/n.raw"
"$SCIMG" convert -f raw -O raw "$U/norange/disk.raw" "$TMPD/n.raw" 2>"$TMPD/err" || fail "norange small: $(cat "$TMPD/err")"
cmp "$TMPD/www/disk.raw" "$TMPD/n.raw" || fail "norange small: differs"
grep -q "^GET /norange/disk.raw bytes=0-262143 200$" "$TMPD/log" || fail "norange small: not one 200"
[ "$(grep -c "^GET /norange/disk.raw " "$TMPD/log")" -eq 1 ] || fail "norange small: more than one request"
rm -f "$TMPD/n.raw"

# an AMI bundle by URL: parts fetched beside the manifest
if command -v openssl >/dev/null 2>&1; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMPD/u.key" -out "$TMPD/u.pem" -days 1 \
    -subj /CN=u >/dev/null 2>&1 || fail "openssl"
  "$SCIMG" convert -f raw -O ami -o "cert=$TMPD/u.pem,privatekey=$TMPD/u.key,ec2cert=$TMPD/u.pem,user=1,prefix=disk" \
    "$TMPD/www/disk.raw" "$TMPD/www/bundle" || fail "bundle"
  "$SCIMG" info -I "cert=$TMPD/u.pem" "$U/bundle/disk.manifest.xml" > "$TMPD/info" || fail "remote ami info"
  grep -q "signature: valid" "$TMPD/info" || fail "remote ami info: $(cat "$TMPD/info")"
  grep -q "missing" "$TMPD/info" && fail "remote ami parts reported missing"
  "$SCIMG" convert -I "privatekey=$TMPD/u.key" -O raw "$U/drop/bundle/disk.manifest.xml" "$TMPD/a.raw" ||
    fail "remote ami convert"
  cmp "$TMPD/www/disk.raw" "$TMPD/a.raw" || fail "remote ami differs"
  # from a server without Range support (manifest and parts read whole)
  "$SCIMG" convert -I "privatekey=$TMPD/u.key" -O raw "$U/norange/bundle/disk.manifest.xml" "$TMPD/a2.raw" ||
    fail "remote ami convert without Range"
  cmp "$TMPD/www/disk.raw" "$TMPD/a2.raw" || fail "remote ami without Range differs"
  grep -q "^GET /norange/bundle/disk.part.0 .* 200$" "$TMPD/log" || fail "norange parts not fetched"
  grep -q "^GET /drop/bundle/disk.part.0 " "$TMPD/log" || fail "parts not fetched beside the manifest"
  # a missing remote part is named
  mv "$TMPD/www/bundle/disk.part.0" "$TMPD/www/part0.away"
  "$SCIMG" convert -I "privatekey=$TMPD/u.key" -O raw "$U/bundle/disk.manifest.xml" "$TMPD/m.raw" 2>"$TMPD/err"
  grep -q "part 0 'disk.part.0'.*HTTP 404" "$TMPD/err" || fail "remote missing part: $(cat "$TMPD/err")"
fi
echo ok
