#!/bin/sh
# inject-drivers without booting anything: option errors, refusing formats
# it cannot change in place, and a dry run (JSON) on the Debian fixture
# (tests/fixtures/build-guest.sh builds and caches it; with
# SCIMG_SKIP_GUEST_TESTS only a cached one is used).
. "$(dirname "$0")/functions.sh"

expect_exit() {
  want=$1; shift
  "$SCIMG" inject-drivers "$@" >"$TMPD/out" 2>"$TMPD/err"
  got=$?
  [ "$got" = "$want" ] || { cat "$TMPD/out" "$TMPD/err"; fail "inject-drivers $*: exit $got, expected $want"; }
}

truncate -s 16M "$TMPD/blank.img"
# option errors
expect_exit 2
expect_exit 2 --drivers=bogus "$TMPD/blank.img"
grep -q "xen, virtio, nvme" "$TMPD/err" || fail "--drivers error does not list the groups"
expect_exit 2 --drivers= "$TMPD/blank.img"
expect_exit 2 --output=xml "$TMPD/blank.img"
expect_exit 2 "$TMPD/blank.img" "$TMPD/extra"
expect_exit 2 -O raw "$TMPD/blank.img"
expect_exit 2 --dry-run -O raw "$TMPD/blank.img" "$TMPD/out.img"
expect_exit 2 -O nosuchformat "$TMPD/blank.img" "$TMPD/out.img"
expect_exit 2 "$TMPD/does-not-exist.img"

# a vmdk is refused with a hint to convert first (whether or not this build
# reads vmdk: as a format it is not changed in place; as "raw" its header
# gives it away)
printf 'KDMV\001\000\000\000' > "$TMPD/disk.vmdk"
truncate -s 1M "$TMPD/disk.vmdk"
expect_exit 2 "$TMPD/disk.vmdk"
grep -qi "vmdk" "$TMPD/err" || { cat "$TMPD/err"; fail "vmdk refusal does not name vmdk"; }
grep -qi "convert" "$TMPD/err" || fail "vmdk refusal has no hint to convert"
if [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ]; then
  "$QEMU_IMG" create -q -f vmdk "$TMPD/real.vmdk" 64M
  expect_exit 2 "$TMPD/real.vmdk"
  grep -qi "vmdk" "$TMPD/err" || fail "real vmdk refusal does not name vmdk"
  # a qcow2 handed over as raw must not be written through
  "$QEMU_IMG" create -q -f qcow2 "$TMPD/q.qcow2" 64M
  expect_exit 2 -f raw "$TMPD/q.qcow2"
  grep -q "qcow2" "$TMPD/err" || fail "qcow2-as-raw not detected"
fi
# ---- dry run on the Debian fixture (built and cached on first use; the
# builder's lock makes a parallel test-sci-guest wait for the same build) --
key=$(sha256sum "$top_srcdir/tests/fixtures/build-guest.sh" | cut -c1-12)
guest="${SCIMG_GUEST_CACHE:-/var/tmp/scimg-guest-cache}/guest-vmware-$key.img"
if [ ! -r "$guest" ]; then
  [ -z "${SCIMG_SKIP_GUEST_TESTS:-}" ] || { echo "ok (dry run skipped: no cached guest, SCIMG_SKIP_GUEST_TESTS)"; exit 0; }
  guest=$(bash "$top_srcdir/tests/fixtures/build-guest.sh" vmware 2>"$TMPD/build.log") && [ -r "$guest" ] ||
    { tail -5 "$TMPD/build.log"; skip "the vmware guest fixture could not be built (root, mmdebstrap, Debian's archive)"; }
fi
before=$(sha "$guest")
# --partition on a disk whose partition table scimg reads itself: nothing
# to do, so no extra steps (no new disk, no second drive in the appliance)
"$SCIMG" inject-drivers -p --dry-run --partition --output=json -f raw "$guest" >"$TMPD/dry.json" 2>"$TMPD/err"
rc=$?
cat "$TMPD/err"
[ $rc = 0 ] || { cat "$TMPD/dry.json"; fail "dry run failed"; }
# -p: a line per step as it starts, in order, then done (no carriage returns)
grep -q '^scimg inject-drivers: \[1/10\] launch (at 0:00)$' "$TMPD/err" || fail "-p: no first step line"
grep -q '^scimg inject-drivers: \[2/10\] inspect (at ' "$TMPD/err" || fail "-p: no inspect step"
grep -q '^scimg inject-drivers: \[7/10\] initramfs (at ' "$TMPD/err" || fail "-p: no initramfs step"
tail -n 1 "$TMPD/err" | grep -q '^scimg inject-drivers: done, took [0-9]' || fail "-p: the last line is not done"
if LC_ALL=C grep -q "$(printf '\r')" "$TMPD/err"; then fail "-p: carriage returns in a non-terminal stream"; fi
[ "$(sha "$guest")" = "$before" ] || fail "dry run changed the image"
python3 - "$TMPD/dry.json" <<'EOF' || fail "dry-run JSON is not what was expected"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["dry-run"] is True and r["result"] == "ok", r["result"]
g = r["guest"]
assert g["distro"] == "debian" and g["version"].startswith("12."), g
assert g["initramfs-tool"] == "initramfs-tools" and g["arch"] == "x86_64"
k = [k for k in r["kernels"] if k["default"]][0]
assert k["compression"] == "lz4", k["compression"]
assert k["drivers"]["virtio_blk"] == "module" and k["drivers"]["ahci"] == "missing"
# the fixture's initramfs lacks virtio and Xen drivers: that is the need
assert k["initramfs-now"]["virtio_blk"] is False and k["initramfs-now"]["xen-blkfront"] is False
changes = " ".join(c["what"] + " " + c["change"] for c in r["changes"])
for want in ("/etc/fstab", "/dev/sda1 -> UUID=", "/etc/initramfs-tools/modules",
             "virtio_blk", "GRUB_CMDLINE_LINUX", "console=hvc0", "70-persistent-net.rules"):
    assert want in changes, want
m = {x["method"]: x for x in r["boot-methods"]}
assert m["xen-pv-pygrub"]["works"] and not m["xen-pv-pvgrub2"]["works"]
assert "not xen image" in m["xen-pv-pvgrub2"]["reason"]
assert not m["hvm-bios-sata"]["works"] and "AHCI" in m["hvm-bios-sata"]["reason"]
assert any("AHCI" in w for w in r["warnings"])
assert r["partitioned"] == "already", r.get("partitioned")
assert any("already has a partition table" in w for w in r["warnings"])
t = r["timings"]
assert "partition" not in t and "partition-prepare" not in t, t
assert t["launch"] > 0 and t["inspect"] > 0 and "initramfs" in t and "shutdown" in t, t
EOF
# an image without an operating system: a clear error, nothing written
blank_sum=$(sha "$TMPD/blank.img")
expect_exit 2 "$TMPD/blank.img"
grep -q "no operating system" "$TMPD/err" || { cat "$TMPD/err"; fail "blank image: unclear error"; }
[ "$(sha "$TMPD/blank.img")" = "$blank_sum" ] || fail "blank image was changed"
# KVM aborts nested guests on some hosts: the fallback to TCG is said once
n=$(grep -c "retrying with TCG" "$TMPD/err")
[ "$n" -le 1 ] || fail "the TCG fallback was announced $n times"
echo "ok"
