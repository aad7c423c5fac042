#!/bin/sh
# run-tests.sh - build scimg from a clean clone and run the whole test suite:
#   1. a -Werror build: `make check` and `make check-boot` (the real-boot
#      matrix: three guest flavours, each fixed by inject-drivers and booted
#      under QEMU TCG on IDE, virtio-blk, virtio-scsi, NVMe (and SATA where
#      the kernel has AHCI) and as a Xen PV domU through pygrub and pvgrub2;
#      here its CI subset, SCIMG_BOOT_CI=1: no Xen boot of the three, fewer
#      dracut buses),
#   2. an ASan+UBSan build (--enable-sanitizers) and `make check` again.
# Every test of every stage is one job of one make graph (tests/stages.mk),
# so one stage's long last test does not leave a core idle.  make check's
# guest tests (libguestfs appliances under TCG) and test-sci-guest's boots
# (the Supercloud image from virtio-blk, NVMe and as a Xen PV domU) run in
# stage 1; stage 2 skips them (SCIMG_SKIP_GUEST_TESTS).
# SCIMG_CHECK_BOOT=0 leaves make check-boot out.
# Used by README.md (command 2) and .ci/run.  Ends with "N passed, N failed"
# counting every test of every stage (a skipped test counts as passed; the
# skips are listed above the summary), after the slowest tests.
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
for b in plain asan; do
  mkdir -p build-$b
  case $b in
    plain) cfg="--enable-werror" ;;
    asan) cfg="--enable-werror --enable-sanitizers" ;;
  esac
  stage "build-$b: configure $cfg"
  ( cd build-$b && ../configure $cfg >configure.out 2>&1 ) ||
    { echo "build-$b: configure failed"; tail -30 build-$b/configure.out; status=1; }
done
# the fixture guests and (once build-plain is built) the blanket, outside make's job slots (see
# tests/stages.mk)
stages="plain asan"; guests=vmware
[ "${SCIMG_CHECK_BOOT:-1}" = 0 ] || { stages="plain boot asan"; guests="vmware dracut ami"; }
stage "fixtures (background): guests $guests, the blanket"
make -f tests/stages.mk fixtures GUESTS="$guests" &
# the boot tests' CI subset: each bus is booted by at least one guest
# flavour, not by every one (tests/boot/test-dracut.sh)
export SCIMG_BOOT_CI=1
# the corrupt-input corpora once, under ASan+UBSan (tests/cli/functions.sh)
export SCIMG_CORRUPT_SANITIZED_ONLY=1
stage "make -k -j$jobs -f tests/stages.mk STAGES=\"$stages\""
make -k -j"$jobs" -f tests/stages.mk GUESTS="$guests" STAGES="$stages" || status=1
wait
buildfail=0
for b in plain asan; do
  [ -x build-$b/cmd/scimg ] || { echo "build-$b: no cmd/scimg"; buildfail=$((buildfail + 1)); }
done

pass=0; fail=$buildfail; skip=0
for trs in $(find build-plain build-asan -name '*.trs' 2>/dev/null); do
  r=$(sed -n 's/^:test-result: //p' "$trs" | head -1)
  case "$r" in
    PASS|XFAIL) pass=$((pass + 1)) ;;
    SKIP) skip=$((skip + 1)); pass=$((pass + 1)); echo "skipped: $trs" ;;
    *) fail=$((fail + 1)); echo "failed: $trs (the end of its log:)"
       tail -n 40 "${trs%.trs}.log" | sed 's/^/  | /' ;;
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
