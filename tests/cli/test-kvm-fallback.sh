#!/bin/sh
# The libguestfs appliance falls back from KVM to TCG, says so once, and
# remembers the finding until the machine reboots (SCIMG_KVM_STATE holds the
# kernel's boot id), so later commands do not wait for the KVM timeout again.
# Runs inject-drivers on a blank disk (the appliance starts, finds no OS).
. "$(dirname "$0")/functions.sh"
[ -z "${SCIMG_SKIP_GUEST_TESTS:-}" ] || skip "SCIMG_SKIP_GUEST_TESTS is set"
[ -r /proc/sys/kernel/random/boot_id ] || skip "no boot id on this system"
case "${LIBGUESTFS_BACKEND_SETTINGS:-}" in *force_tcg*) skip "force_tcg is set: no KVM attempt to test" ;; esac
boot=$(cat /proc/sys/kernel/random/boot_id)
truncate -s 16M "$TMPD/blank.img"
export SCIMG_KVM_STATE="$TMPD/kvm-state"
export SCIMG_KVM_LAUNCH_TIMEOUT=30

run() {
  "$SCIMG" inject-drivers --dry-run "$TMPD/blank.img" >"$TMPD/out" 2>"$TMPD/err"
  rc=$?
  [ $rc = 2 ] && grep -q "no operating system" "$TMPD/err" ||
    { cat "$TMPD/err"; fail "blank disk: exit $rc, expected 2 with 'no operating system'"; }
}

# 1. a state file from another boot is not believed: KVM is tried
printf 'kvm-broken 00000000-0000-0000-0000-000000000000\n' > "$SCIMG_KVM_STATE"
run
if grep -q "retrying with TCG" "$TMPD/err"; then
  [ "$(grep -c "retrying with TCG" "$TMPD/err")" = 1 ] || fail "the fallback was announced more than once"
  [ "$(cat "$SCIMG_KVM_STATE")" = "kvm-broken $boot" ] ||
    fail "the KVM failure was not remembered: $(cat "$SCIMG_KVM_STATE")"
  echo "KVM failed here; TCG used and remembered"
else
  # KVM works (or is absent and libguestfs used TCG itself): nothing kept
  grep -q "00000000-0000" "$SCIMG_KVM_STATE" || fail "state changed although KVM worked"
  echo "KVM works here"
  printf 'kvm-broken %s\n' "$boot" > "$SCIMG_KVM_STATE"
fi

# 2. the finding of this boot is believed: straight to TCG, said once
run
[ "$(grep -c "KVM failed for an earlier launch" "$TMPD/err")" = 1 ] ||
  { cat "$TMPD/err"; fail "the remembered fallback was not said exactly once"; }
grep -q "retrying with TCG" "$TMPD/err" && fail "KVM was tried although known broken"
grep -q "$SCIMG_KVM_STATE" "$TMPD/err" || fail "the note does not name the state file"

# 3. a symbolic link is neither believed nor written through
rm -f "$SCIMG_KVM_STATE"
printf 'kvm-broken %s\n' "$boot" > "$TMPD/elsewhere"
ln -s "$TMPD/elsewhere" "$SCIMG_KVM_STATE"
export SCIMG_KVM_LAUNCH_TIMEOUT=1   # do not wait long for KVM in this step
run
grep -q "KVM failed for an earlier launch" "$TMPD/err" && fail "a symlinked state file was believed"
[ "$(cat "$TMPD/elsewhere")" = "kvm-broken $boot" ] || fail "the state was written through a symlink"

# 4. SIGTERM while the appliance starts: scimg stops its QEMU and exits at
# once instead of waiting for a launch it no longer wants
cp --sparse=always "$TMPD/blank.img" "$TMPD/term.img"
LIBGUESTFS_BACKEND_SETTINGS=force_tcg "$SCIMG" inject-drivers --dry-run "$TMPD/term.img" \
  >"$TMPD/out" 2>"$TMPD/err" &
pid=$!
sleep 3
kill -TERM $pid
t=0
while kill -0 $pid 2>/dev/null && [ $t -lt 20 ]; do sleep 1; t=$((t + 1)); done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; fail "still running ${t}s after SIGTERM"; }
wait $pid; rc=$?
[ $rc = 2 ] && grep -q "interrupted" "$TMPD/err" ||
  { cat "$TMPD/err"; fail "SIGTERM during the launch: exit $rc, expected 2 with 'interrupted'"; }
sleep 1
pgrep -f "$TMPD/term.img" >/dev/null && fail "a QEMU of the interrupted launch is still running"
echo "SIGTERM during the launch: exit 2 after ${t}s"
echo ok
