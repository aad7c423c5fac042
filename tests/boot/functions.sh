# functions.sh - sourced by the boot tests (tests/boot/test-*.sh), which run
# under `make check-boot`.  Each builds (or reuses) a Debian fixture guest,
# runs scimg inject-drivers on a copy and boots it for real under QEMU (TCG)
# on several buses and as a Xen PV domU.  Exit 0 pass, 1 fail, 77 skip.
# Env from Makefile.am: SCIMG, top_srcdir.  Optional: SCIMG_BOOT_WORK (kept
# work directory with logs), SCIMG_BOOT_TIMEOUT (per boot, default 600 s).
set -u

: "${SCIMG:?SCIMG must point at the scimg binary}"
HERE=$(cd "$(dirname "$0")" && pwd)
BOOT_TIMEOUT=${SCIMG_BOOT_TIMEOUT:-600}
T0=$(date +%s)
NAME=$(basename "$0" .sh)
if [ -n "${SCIMG_BOOT_WORK:-}" ]; then
  WORK=$SCIMG_BOOT_WORK/$NAME
  rm -rf "$WORK"; mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/scimg-boot.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
fi
FAILED=0

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
say() { printf '[%s +%ss] %s\n' "$NAME" $(( $(date +%s) - T0 )) "$*"; }

requires_boot_tools() {
  for t in qemu-system-x86_64 python3 sha256sum; do
    command -v $t >/dev/null 2>&1 || skip "$t not installed"
  done
  [ -e /usr/lib/x86_64-linux-gnu/guestfs/supermin.d ] || [ -d /usr/lib/x86_64-linux-gnu/guestfs ] ||
    skip "libguestfs appliance not installed"
  [ "$(id -u)" = 0 ] || [ -e "$(guest_cached vmware)" ] || skip "building the fixture guests needs root"
}

# Path of the cached fixture image of FLAVOUR (may not exist yet).
guest_cached() {
  echo "${CACHE:-/var/tmp/scimg-guest-cache}/guest-$1-$(sed '/^# >>> layouts/,/^# <<< layouts/d' \
    "$top_srcdir/tests/fixtures/build-guest.sh" | sha256sum | cut -c1-12).img"
}

# Build (once) and copy the fixture of FLAVOUR to OUT.
guest_copy() {
  "$top_srcdir/tests/fixtures/build-guest.sh" "$1" "$2" >/dev/null 2>"$WORK/build-$1.log" ||
    { tail -20 "$WORK/build-$1.log"; fail "building the $1 fixture failed"; }
}

# expect_boot ok|fail IMAGE BUS: boot under QEMU and compare with what was expected.
expect_boot() {
  local want=$1 img=$2 bus=$3 out rc
  out=$("$HERE/boot-qemu.sh" "$img" "$bus" "$WORK/boot-$(basename "$img" .img)-$bus.log" "$BOOT_TIMEOUT")
  rc=$?
  printf '%s\n' "$out" | while IFS= read -r l; do say "$l"; done
  if [ "$want" = ok ] && [ $rc != 0 ]; then FAILED=1; say "UNEXPECTED: $bus did not boot"; fi
  if [ "$want" = fail ] && [ $rc = 0 ]; then FAILED=1; say "UNEXPECTED: $bus booted"; fi
  [ "$want" = ok ] && [ $rc = 0 ] && marker_args "$out"
  return 0
}

# marker_args TEXT: the kernel command line the fixed guest booted with (on
# its marker line) names its root by UUID and kept the image's own argument
marker_args() {
  local args=${1#*cmdline=}
  [ "$args" != "$1" ] || { FAILED=1; say "UNEXPECTED: no cmdline= on the marker line"; return 0; }
  case " $args " in *" root=UUID="*) ;; *) FAILED=1; say "UNEXPECTED: booted without root=UUID=: $args" ;; esac
  case " $args " in *" norandmaps "*) ;; *) FAILED=1; say "UNEXPECTED: the image's own kernel argument was dropped: $args" ;; esac
}

# The blanket (scimg blanket): the cached build, made first when missing
# (the library's lock makes a second caller wait for the first build).
# With CACHE set (a fresh-machine CI run), it lives under $CACHE/blanket.
[ -n "${CACHE:-}" ] && export SCIMG_BLANKET_CACHE=${SCIMG_BLANKET_CACHE:-$CACHE/blanket}
blanket_path() {
  "$SCIMG" blanket path 2>"$WORK/blanket.err" || { tail -3 "$WORK/blanket.err" >&2; return 1; }
}

# expect_xen IMAGE "ok|fail MODE [PATTERN]"...: boot IMAGE as a Xen PV domU
# in the blanket once per MODE (pygrub, pvgrub: pvgrub2, direct), with scimg
# boot-test --xen; success is the fixture's marker (or any sign of a booted
# system); with fail, PATTERN must be in the failure's reason (e.g. "not
# xen image").
# In CI (SCIMG_BOOT_CI=1) it only says what it leaves out: a nested Xen
# boot under TCG takes 90 s at rest and 5-15 minutes on a loaded 2-core
# runner, where dom0 also hit soft lockups; CI's one Xen boot is
# test-sci-guest's (the Supercloud image through the loader its xl.cfg
# names).  `make check-boot` by hand boots them all.
expect_xen() {
  local img=$1 loaders="" e want mode pat log rc r bl; shift
  local -a specs=("$@")
  if [ "${SCIMG_BOOT_CI:-0}" = 1 ]; then
    say "Xen PV ($(IFS=,; echo "${specs[*]}")): not in the CI subset (SCIMG_BOOT_CI=1); make check-boot boots it"
    return 0
  fi
  for e in "${specs[@]}"; do
    read -r want mode pat <<< "$e"; loaders=${loaders:+$loaders,}${mode/%pvgrub/pvgrub2}
  done
  log="$WORK/xen-$(basename "$img")"
  bl=$(blanket_path) || { FAILED=1; say "UNEXPECTED: no blanket"; return 0; }
  "$SCIMG" boot-test --xen "$loaders" --blanket "$bl" --expect 'SCIMG-BOOT-OK' \
    --timeout "$BOOT_TIMEOUT" --output=json "$img" >"$log.json" 2>"$log.err"
  rc=$?
  [ $rc = 2 ] && { FAILED=1; say "UNEXPECTED: boot-test --xen could not test"; cat "$log.err"; return 0; }
  for e in "${specs[@]}"; do
    read -r want mode pat <<< "$e"
    r=$(python3 - "$log.json" "xen-pv-${mode/%pvgrub/pvgrub2}" <<'PY'
import json, sys
b = [x for x in json.load(open(sys.argv[1]))["boots"] if x["method"] == sys.argv[2]][0]
print(b["result"], "%.0fs" % b["seconds"], b["reason"].replace("\n", " "))
PY
)
    say "boot-test --xen: $(basename "$img") $mode: $r"
    if [ "$want" = ok ] && [ "${r%% *}" != ok ]; then
      FAILED=1; say "UNEXPECTED: Xen $mode did not boot"
      python3 -c 'import json,sys; [print("  |", l) for b in json.load(open(sys.argv[1]))["boots"] for l in b["console"][-8:]]' "$log.json"
    fi
    if [ "$want" = fail ]; then
      [ "${r%% *}" = ok ] && { FAILED=1; say "UNEXPECTED: Xen $mode booted"; }
      [ -n "$pat" ] && case "$r" in *"$pat"*) ;; *) FAILED=1; say "UNEXPECTED: Xen $mode failed without '$pat'" ;; esac
    fi
  done
  return 0
}

# inject REPORT ARGS...: run scimg inject-drivers --output=json ARGS.
inject() {
  local rep=$1 s rc; shift
  s=$(date +%s)
  "$SCIMG" inject-drivers --output=json "$@" >"$rep" 2>"$rep.err"
  rc=$?
  say "inject-drivers $*: exit $rc in $(( $(date +%s) - s ))s"
  cat "$rep.err"
  [ $rc = 0 ] || { cat "$rep"; fail "inject-drivers failed"; }
}

# report_check REPORT PYTHON-ASSERTIONS (r = the report object, m = boot methods by name)
report_check() {
  python3 - "$1" "$2" <<'EOF' || fail "report check failed: $2"
import json, sys
r = json.load(open(sys.argv[1]))
m = {x["method"]: x for x in r.get("boot-methods", [])}
k = [k for k in r["kernels"] if k["default"]][0]
exec(sys.argv[2])
EOF
}

finish() {
  if [ -n "${SCIMG_BOOT_LOGS:-}" ]; then
    mkdir -p "$SCIMG_BOOT_LOGS/$NAME"
    cp "$WORK"/*.log "$WORK"/*.json "$WORK"/*.err "$WORK"/*.tsv "$SCIMG_BOOT_LOGS/$NAME/" 2>/dev/null
  fi
  say "done, $( [ $FAILED = 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - T0 ))s"
  exit $FAILED
}
