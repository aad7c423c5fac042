#!/bin/sh
# run-tests.sh - build scimg from a clean clone and run the whole test suite:
#   1. a -Werror build and `make check`,
#   2. an ASan+UBSan build (--enable-sanitizers) and `make check` again,
#   3. `make check-boot` (the full boot matrix: three guest flavours, each
#      on IDE, virtio-blk, virtio-scsi, NVMe and as a Xen PV domU through
#      pygrub and pvgrub2) only when SCIMG_CHECK_BOOT=1: 35+ minutes on 2
#      cores, which does not fit CI's time budget beside stages 1 and 2.
# Stage 1 does boot for real: test-sci-guest builds the Debian fixture,
# converts it to a Supercloud image (inject-drivers inside) and boots the
# packaged disk under QEMU TCG from virtio-blk and NVMe and as a Xen PV domU
# under a nested Xen.  The guest tests of make check (libguestfs appliances
# under TCG) run in stage 1; stage 2 skips them (SCIMG_SKIP_GUEST_TESTS).
# Used by README.md (command 2) and .ci/run.  Ends with "N passed, N failed"
# counting every test of every stage (a skipped test counts as passed; the
# skips are listed above the summary).
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
status=0
start=$(date +%s)
stage() { echo "==== [$(( $(date +%s) - start ))s] $*"; }

autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }
# an in-tree configure (from building by hand) blocks out-of-tree builds
[ -f config.status ] && make distclean >/dev/null 2>&1
rm -rf build-plain build-asan
buildfail=0
for b in plain asan; do
  mkdir -p build-$b
  case $b in
    plain) cfg="--enable-werror" ;;
    asan) cfg="--enable-werror --enable-sanitizers" ;;
  esac
  stage "build-$b: configure $cfg && make check"
  ( cd build-$b && ../configure $cfg >configure.out 2>&1 && make -j"$jobs" >make.out 2>&1 ) ||
    { echo "build-$b: build failed"; tail -30 build-$b/make.out build-$b/configure.out 2>/dev/null; status=1; buildfail=$((buildfail + 1)); continue; }
  case $b in
    asan) export SCIMG_SKIP_GUEST_TESTS=1 ;;
  esac
  ( cd build-$b && ASAN_OPTIONS=detect_leaks=1 make -j"$jobs" check ) || status=1
  unset SCIMG_SKIP_GUEST_TESTS
done
if [ "${SCIMG_CHECK_BOOT:-}" = 1 ] && grep -q '^check-boot:' build-plain/Makefile 2>/dev/null; then
  stage "build-plain: make check-boot"
  ( cd build-plain && make check-boot ) || status=1
fi

pass=0; fail=$buildfail; skip=0
for trs in $(find build-plain build-asan -name '*.trs' 2>/dev/null); do
  r=$(sed -n 's/^:test-result: //p' "$trs" | head -1)
  case "$r" in
    PASS|XFAIL) pass=$((pass + 1)) ;;
    SKIP) skip=$((skip + 1)); pass=$((pass + 1)); echo "skipped: $trs" ;;
    *) fail=$((fail + 1)); echo "failed: $trs" ;;
  esac
done
[ $fail -eq 0 ] || status=1
# the slowest tests, from each .log's creation and last write (the harness
# writes the log while the test runs)
echo "slowest tests (seconds, stage/test):"
for log in $(find build-plain build-asan -name '*.log' ! -name 'test-suite.log' \
    ! -name config.log ! -name '*.out' 2>/dev/null); do
  [ -f "${log%.log}.trs" ] || continue
  b=$(stat -c %W "$log" 2>/dev/null); m=$(stat -c %Y "$log")
  case "$b" in ''|0|-) continue ;; esac
  echo "$((m - b)) ${log#./}"
done | sort -rn | head -25 | sed 's/^/  /'
stage "done"
echo "$pass passed, $fail failed"
exit $status
