#!/bin/sh
# run-tests.sh - build scimg from a clean clone and run the whole test suite.
# Used by README.md (command 2) and .ci/run.  Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
status=0
summary() {
  # collect automake's per-test results from every build tree we ran
  pass=0; fail=0
  for trs in $(find build-* -name '*.trs' 2>/dev/null); do
    r=$(sed -n 's/^:test-result: //p' "$trs" | head -1)
    case "$r" in
      PASS|XFAIL|SKIP) pass=$((pass + 1)) ;;
      *) fail=$((fail + 1)) ;;
    esac
  done
  echo "$pass passed, $fail failed"
}
autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }
rm -rf build-plain
mkdir -p build-plain
( cd build-plain && ../configure --enable-werror >/dev/null && make -j"$jobs" >/dev/null && make -j"$jobs" check ) || status=1
summary
exit $status
