#!/bin/sh
# A hostile HTTP server (tests/cli/hostile-httpd.py) cannot hang scimg or
# steer it off its host: with small --http-* limits, scimg info and scimg
# convert give up within seconds on a server that never answers, drips a
# 500, sends endless or slow headers, a huge 404, a slow 206 (per-read and
# per-command deadlines), a 200 without Range that stalls or drips (read as
# a stream) or goes silent in the middle of a convert; a 403 is
# asked once; 503s are retried; redirects loop, go to file:// or ftp://
# (refused) or to another loopback port (followed); and from a public
# address (127.0.0.2 plays one, through the SCIMG_TEST_HTTP_PUBLIC hook) a
# redirect to loopback is refused.  Each failure exits 2, names the limit
# and leaves no output.  The times measured are printed.
. "$(dirname "$0")/functions.sh"
requires python3 timeout
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

mkdir "$TMPD/www" "$TMPD/out"
extra=
python3 -c 'import socket; socket.socket().bind(("127.0.0.2", 0))' 2>/dev/null && extra=127.0.0.2
python3 "$top_srcdir/tests/cli/hostile-httpd.py" "$TMPD/www" "$TMPD/port" "$TMPD/log" $extra &
srv=$!
stop_server() { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }
cleanup_fns="$cleanup_fns stop_server"
for _ in $(seq 100); do [ -f "$TMPD/port" ] && break; sleep 0.1; done
[ -f "$TMPD/port" ] || fail "test server did not start"
read -r P1 P2 P3 < "$TMPD/port"
U="http://127.0.0.1:$P1"
make_mixed_raw "$TMPD/www/d.raw" 4

LIM="--http-connect-timeout=2 --http-low-speed-limit=100 --http-low-speed-time=3 --http-request-timeout=4 --http-retries=2"
MAXS=15

# run NAME CMD...: run scimg CMD under timeout, time it; sets $rc, $secs
run() {
  name=$1; shift
  t0=$(date +%s%N)
  timeout 60 "$SCIMG" "$@" > "$TMPD/stdout" 2> "$TMPD/err"
  rc=$?
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  secs=$(( ms / 1000 )).$(( ms % 1000 / 100 ))
  echo "$name: exit $rc after $secs s: $(cat "$TMPD/err")"
}

# expect_fail NAME PATTERN [ARGS]: info and convert of $U/NAME/d.raw both
# fail in bounded time with PATTERN in the message and nothing written
# (ONLY=convert: convert only)
ONLY=
expect_fail() {
  mode=$1 pat=$2; shift 2
  if [ "$ONLY" != convert ]; then
    run "info $mode" info -f raw $LIM "$@" "$U/$mode/d.raw"
    [ $rc -eq 2 ] || fail "info $mode: exit $rc, expected 2"
    [ $ms -lt $((MAXS * 1000)) ] || fail "info $mode: took $secs s"
    grep -q -- "$pat" "$TMPD/err" || fail "info $mode: message without '$pat'"
  fi
  run "convert $mode" convert -f raw -O qcow2 $LIM "$@" "$U/$mode/d.raw" "$TMPD/out/$mode.qcow2"
  [ $rc -eq 2 ] || fail "convert $mode: exit $rc, expected 2"
  [ $ms -lt $((MAXS * 1000)) ] || fail "convert $mode: took $secs s"
  grep -q -- "$pat" "$TMPD/err" || fail "convert $mode: message without '$pat'"
  [ -z "$(ls -A "$TMPD/out")" ] || fail "convert $mode: left $(ls -A "$TMPD/out")"
}

expect_fail silent "no response within 2 s (--http-connect-timeout)"
expect_fail drip500 "failed after 3 attempts (--http-retries=2): HTTP 500"
[ "$(grep -c " /drip500/d.raw .* 500$" "$TMPD/log")" -eq 6 ] || fail "drip500: not 3 requests per run"
expect_fail headers "more than 100 header lines"
expect_fail slowheaders "less than 100 bytes/s for 3 s (--http-low-speed-limit, --http-low-speed-time)"
expect_fail big404 "HTTP 404 Not Found"
[ "$(grep -c " /big404/d.raw " "$TMPD/log")" -eq 2 ] || fail "big404: retried"
expect_fail 403 "HTTP 403 Forbidden"
[ "$(grep -c " /403/d.raw " "$TMPD/log")" -eq 2 ] || fail "403: not exactly one request per run"
expect_fail drip206 "took more than 4 s (--http-request-timeout)"
expect_fail drip206 "the time for all HTTP requests, 2 s, is spent (--http-timeout)" --http-timeout=2
# silent in the middle of a convert (the output file exists by then)
ONLY=convert expect_fail silentafter "no response within 2 s (--http-connect-timeout)"
grep -q " /silentafter/d.raw bytes=0-.* 206$" "$TMPD/log" || fail "silentafter: the first read was not served"
# a server without Range read as a stream: silent after 1 MiB (low-speed
# limit), or dripping (the per-read deadline, rearmed per 2 MiB of stream)
ONLY=convert expect_fail stall200 "answer too slow: less than 100 bytes/s for 3 s (--http-low-speed-limit, --http-low-speed-time)" --http-request-timeout=10
ONLY=convert expect_fail drip200 "took more than 4 s (--http-request-timeout)"
expect_fail loop "more than 3 redirects (--http-max-redirects)" --http-max-redirects=3
[ "$(grep -c " /loop/d.raw " "$TMPD/log")" -eq 8 ] || fail "loop: not 4 requests per run"
expect_fail tofile "redirect to 'file:///etc/passwd' refused"
expect_fail toftp "redirect to 'ftp://127.0.0.1/d.raw' refused"

# transient 503s are retried (Retry-After: 0), within the limits
run "convert 503x3" convert -f raw -O raw $LIM --http-retries=3 "$U/503x3/d.raw?c" "$TMPD/out/r.raw"
[ $rc -eq 0 ] || fail "503x3: exit $rc"
cmp "$TMPD/www/d.raw" "$TMPD/out/r.raw" || fail "503x3: differs"
[ "$(grep -c "/503x3/d.raw?c .* 503$" "$TMPD/log")" -eq 3 ] || fail "503x3: not 3 answers 503"
rm -f "$TMPD/out/r.raw"

# loopback -> loopback redirect (another port) is followed
run "convert toport" convert -f raw -O raw $LIM "$U/toport/d.raw" "$TMPD/out/p.raw"
[ $rc -eq 0 ] || fail "toport: exit $rc"
cmp "$TMPD/www/d.raw" "$TMPD/out/p.raw" || fail "toport: differs"
grep -q "^$P2 GET /d.raw " "$TMPD/log" || fail "toport: second port not asked"
rm -f "$TMPD/out/p.raw"

# public -> loopback: refused on the address connected to
if [ -n "$extra" ]; then
  V="http://127.0.0.2:$P3"
  run "info public->loopback" info -f raw $LIM "$V/toport/d.raw"
  [ $rc -eq 0 ] || fail "127.0.0.2 -> 127.0.0.1 without the hook must work (loopback to loopback)"
  SCIMG_TEST_HTTP_PUBLIC=127.0.0.2; export SCIMG_TEST_HTTP_PUBLIC
  run "info public->loopback" info -f raw $LIM "$V/toport/d.raw"
  [ $rc -eq 2 ] || fail "public -> loopback: exit $rc"
  grep -q "refusing to connect to 127.0.0.1 (a loopback address) after a redirect to 'http://127.0.0.1:$P2/d.raw'" "$TMPD/err" ||
    fail "public -> loopback: message"
  run "convert public->loopback" convert -f raw -O raw $LIM "$V/toport/d.raw" "$TMPD/out/x.raw"
  [ $rc -eq 2 ] || fail "convert public -> loopback: exit $rc"
  [ -z "$(ls -A "$TMPD/out")" ] || fail "public -> loopback: output left"
  # a public server that is itself the target works
  run "info public" info -f raw $LIM "$V/d.raw"
  [ $rc -eq 0 ] || fail "public: exit $rc"
  unset SCIMG_TEST_HTTP_PUBLIC
else
  echo "127.0.0.2 cannot be bound: public -> loopback case skipped"
fi

# bad option values are usage errors
"$SCIMG" info --http-timeout=soon "$U/d.raw" 2>"$TMPD/err"; [ $? -eq 2 ] || fail "bad --http-timeout"
grep -q "http-timeout must be a number of seconds" "$TMPD/err" || fail "bad --http-timeout message"
echo ok
