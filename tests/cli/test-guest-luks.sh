#!/bin/sh
# A guest whose only filesystem is inside a LUKS volume (an encrypted root,
# made here by cryptsetup on a plain file): scimg has no key, so check names
# it (guest-encrypted, exit 1) and inject-drivers refuses it with that
# reason (exit 2, image unchanged) -- not "no operating system".  A LUKS
# volume given without -f raw is refused as a container scimg cannot read.
# Two libguestfs launches (TCG: ~30 s each).
. "$(dirname "$0")/functions.sh"

[ -z "${SCIMG_SKIP_GUEST_TESTS:-}" ] || skip "SCIMG_SKIP_GUEST_TESTS is set"
requires cryptsetup python3
[ -e /usr/lib/x86_64-linux-gnu/guestfs ] || command -v libguestfs-test-tool >/dev/null 2>&1 ||
  skip "libguestfs appliance not installed"

img=$TMPD/luks.img
truncate -s 32M "$img"
printf 'not-a-real-key' | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 "$img" - >/dev/null 2>&1 || skip "cryptsetup cannot format a file here"
sum=$(sha256sum < "$img")

# as a container: refused by name
rc=0; "$SCIMG" check "$img" > "$TMPD/c0.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat "$TMPD/c0.out"; fail "check of a LUKS file: exit $rc, expected 1"; }
grep -q "LUKS" "$TMPD/c0.out" || { cat "$TMPD/c0.out"; fail "check does not name LUKS"; }

# as a disk (-f raw): the guest is encrypted
rc=0; "$SCIMG" check -f raw --output=json "$img" > "$TMPD/c1.json" 2> "$TMPD/c1.err" || rc=$?
[ "$rc" = 1 ] || { cat "$TMPD/c1.err" "$TMPD/c1.json"; fail "check -f raw: exit $rc, expected 1"; }
python3 - "$TMPD/c1.json" <<'PY' || fail "check -f raw: no guest-encrypted finding"
import json, sys
r = json.load(open(sys.argv[1]))
ids = [f["id"] for f in r["findings"]]
assert "guest-encrypted" in ids and "guest-no-os" not in ids, ids
PY

rc=0; "$SCIMG" inject-drivers -f raw "$img" > "$TMPD/i.out" 2> "$TMPD/i.err" || rc=$?
[ "$rc" = 2 ] || { cat "$TMPD/i.err"; fail "inject-drivers: exit $rc, expected 2"; }
grep -q "LUKS-encrypted" "$TMPD/i.err" || { cat "$TMPD/i.err"; fail "inject-drivers does not say why"; }
[ "$(sha256sum < "$img")" = "$sum" ] || fail "the encrypted image was changed"
echo ok
