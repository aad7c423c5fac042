#!/bin/sh
# scimg check --provider: unknown names are an error listing the known
# profiles; every profile is documented; JSON carries the profile; with a
# real guest (slow; skipped with SCIMG_SKIP_GUEST_TESTS), each of the
# profile's modules is looked up in the default initramfs and reported.
. "$(dirname "$0")/functions.sh"
requires python3
cd "$TMPD" || fail cd
make_mixed_raw src.raw 4
"$SCIMG" check --provider nosuch src.raw 2>err; [ $? -eq 2 ] || fail "unknown provider exit"
grep -q "unknown provider profile 'nosuch' (known: .*azure" err || fail "message: $(cat err)"
for p in azure ec2 ec2-raw ec2-ami vsphere gce; do
  "$SCIMG" plugins | grep -q "^ *$p  *->" || fail "profile $p not loaded"
  cat "$top_srcdir"/plugins/*/scimg-*.7 | sed 's/\\-/-/g' | grep -q -- "$p" || fail "$p undocumented"
done
for d in azure ec2 vsphere gce; do
  [ -f "$top_srcdir/plugins/$d/scimg-$d.7" ] || fail "no man page for $d"
done
for k in name cpus memory ostype hwversion adapter_type; do
  grep -q "^\.BR $k " "$top_srcdir/plugins/vsphere/scimg-vsphere.7" || fail "ova option $k undocumented"
done
"$SCIMG" check --container-only --provider azure --output=json src.raw > r.json; [ $? -eq 1 ] || fail "exit"
python3 - r.json <<'PY' || fail "json: $(cat r.json)"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["provider"]["name"] == "azure" and r["provider"]["guest-modules"] == ["hv_vmbus", "hv_storvsc", "hv_netvsc"]
ids = [f["id"] for f in r["findings"]]
assert "provider-format" in ids and "provider-guest-unchecked" in ids, ids
PY

# ---- with a real guest ------------------------------------------------------
[ -z "${SCIMG_SKIP_GUEST_TESTS:-}" ] || { echo "ok (guest part skipped: SCIMG_SKIP_GUEST_TESTS)"; exit 0; }
builder="$top_srcdir/tests/fixtures/build-guest.sh"
FIX=$(bash "$builder" vmware 2>build.log) && [ -f "$FIX" ] || { echo "ok (no guest fixture)"; exit 0; }
"$SCIMG" check -f raw --provider azure --output=json "$FIX" > g.json 2> g.err; rc=$?
[ $rc -eq 2 ] && { cat g.err; echo "ok (libguestfs could not inspect the fixture)"; exit 0; }
python3 - g.json <<'PY' || fail "guest findings: $(cat g.json)"
import json, sys
r = json.load(open(sys.argv[1]))
k = [k for k in r["guest"]["kernels"] if k["default"]][0]
errs = {(f["id"], f["message"]) for f in r["findings"] if f["severity"] == "error"}
for m in ("hv_vmbus", "hv_storvsc", "hv_netvsc"):
    state = k["drivers"][m]
    missing = any(i == "provider-guest-module" and (" %s " % m) in msg for i, msg in errs)
    assert missing == (state not in ("builtin", "initramfs")), (m, state, errs)
# Supercloud-only findings are warnings for a provider
assert not any(i == "guest-driver-missing" for i, _ in errs), errs
PY
echo ok
