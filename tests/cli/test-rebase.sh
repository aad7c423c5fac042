#!/bin/sh
# rebase -u: the backing file name and format rewritten in place, checked
# with qemu-img info/check/compare; too long a name is refused cleanly.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
Q=$QEMU_IMG
T="timeout 120"

cd "$TMPD" || fail "cd"
make_mixed_raw a.raw 4
$T "$SCIMG" convert -f raw -O qcow2 a.raw base.qcow2 || fail "convert"
$T "$SCIMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || fail "create"
mkdir -p moved && cp base.qcow2 moved/base-new.qcow2
$T "$SCIMG" rebase -u -b moved/base-new.qcow2 -F qcow2 top.qcow2 || fail "rebase -u"
$T "$Q" info --output=json top.qcow2 > info || fail "info"
grep -q '"backing-filename": "moved/base-new.qcow2"' info || fail "new name: $(cat info)"
grep -q '"backing-filename-format": "qcow2"' info || fail "new format"
$T "$Q" check top.qcow2 >/dev/null || fail "check"
rm base.qcow2
$T "$Q" compare top.qcow2 a.raw >/dev/null || fail "content through the new backing file"
# a header with the feature table (scimg) and a qemu-made one; v2 too
$T "$Q" create -q -f qcow2 -o compat=0.10 -b moved/base-new.qcow2 -F qcow2 v2.qcow2 || fail "v2"
$T "$SCIMG" rebase -u -b ./moved/base-new.qcow2 v2.qcow2 || fail "rebase v2 without format"
$T "$Q" info --output=json v2.qcow2 > info
grep -q '"backing-filename": "./moved/base-new.qcow2"' info || fail "v2 name"
grep -q 'backing-filename-format' info && fail "backing format should be gone"
$T "$Q" check v2.qcow2 >/dev/null || fail "check v2"
# remove the backing file
$T "$SCIMG" rebase -u -b "" top.qcow2 || fail "remove backing"
$T "$Q" info --output=json top.qcow2 | grep -q backing && fail "backing still named"
$T "$Q" check top.qcow2 >/dev/null || fail "check after removal"
# does not fit the first cluster: refused, image unchanged
$T "$SCIMG" create -q -f qcow2 -o cluster_size=512 small.qcow2 1M || fail "small"
cp small.qcow2 small.orig
long=$(head -c 600 /dev/zero | tr '\0' x)
"$SCIMG" rebase -u -b "$long" small.qcow2 2>err; [ $? -eq 2 ] || fail "long name must fail"
grep -q 'first cluster' err || fail "message: $(cat err)"
cmp -s small.qcow2 small.orig || fail "refused rebase changed the image"
# safe mode needs -F (test-rebase-safe.sh tests it); other formats refused
"$SCIMG" rebase -b base-new.qcow2 v2.qcow2 2>err; [ $? -eq 2 ] || fail "safe mode without -F"
grep -q 'backing format must be specified' err || fail "safe mode message"
"$SCIMG" rebase -u -b x -f raw a.raw 2>/dev/null; [ $? -eq 2 ] || fail "raw has no backing file"
echo ok
