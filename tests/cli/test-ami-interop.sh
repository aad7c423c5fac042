#!/bin/sh
# Interoperability with the command-line pipeline of ec2-bundle-image /
# ec2-unbundle (tar, openssl sha1 on a fifo, gzip -9, openssl enc
# -aes-128-cbc, split, RSA PKCS#1 v1.5 with openssl pkeyutl):
# a bundle made that way is read by scimg, and scimg's bundle is opened by
# that pipeline (digest and signature checked).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/ami-lib.sh"

make_keys "$TMPD"
mkdir "$TMPD/src"
# a sparse image: GNU tar --sparse stores a sparse member, whose holes
# scimg reports as holes
make_mixed_raw "$TMPD/src/img" 24
dd if=/dev/urandom of="$TMPD/src/img" bs=1M count=14 seek=2 conv=notrunc status=none

cli_bundle "$TMPD" "$TMPD/cli" img "$TMPD/src" img
ls "$TMPD/cli" | grep -q '^img.part.0$' || fail "cli bundle part names: $(ls "$TMPD/cli")"
"$SCIMG" info -I "cert=$TMPD/user.pem" "$TMPD/cli/img.manifest.xml" > "$TMPD/info" || fail "info of the cli bundle"
grep -q "signature: valid" "$TMPD/info" || fail "signature of the cli bundle: $(cat "$TMPD/info")"
"$SCIMG" convert -I "privatekey=$TMPD/user.key" -O raw "$TMPD/cli/img.manifest.xml" "$TMPD/cli.raw" ||
  fail "scimg could not read the cli bundle"
cmp "$TMPD/src/img" "$TMPD/cli.raw" || fail "cli bundle read differs"

# a bare ext4 filesystem: info says there is no partition table
if command -v mkfs.ext4 >/dev/null 2>&1; then
  mkdir "$TMPD/fs"
  truncate -s 16M "$TMPD/fs/root.img"
  mkfs.ext4 -q -F -L cloudroot "$TMPD/fs/root.img" || fail "mkfs.ext4"
  cli_bundle "$TMPD" "$TMPD/fsb" root.img "$TMPD/fs" root.img
  "$SCIMG" info -I "privatekey=$TMPD/user.key" "$TMPD/fsb/root.img.manifest.xml" > "$TMPD/info" ||
    fail "info of the ext4 bundle"
  grep -q "content: ext4 filesystem, label 'cloudroot' (no partition table)" "$TMPD/info" ||
    fail "bare ext4 not recognised: $(grep content "$TMPD/info")"
fi

# scimg's bundle, opened by the command-line pipeline
"$SCIMG" convert -f raw -O ami \
  -o "cert=$TMPD/user.pem,privatekey=$TMPD/user.key,ec2cert=$TMPD/ec2.pem,user=123456789012,prefix=img" \
  "$TMPD/src/img" "$TMPD/sc" || fail "scimg bundle"
cli_unbundle "$TMPD" "$TMPD/sc/img.manifest.xml" "$TMPD/unb"
cmp "$TMPD/src/img" "$TMPD/unb/img" || fail "cli unbundle of scimg's bundle differs"
# EC2 could open it too: the key is encrypted for the EC2 certificate
ek=$(unhex "$(manifest_field "$TMPD/sc/img.manifest.xml" image/ec2_encrypted_key)" |
     openssl pkeyutl -decrypt -inkey "$TMPD/ec2.key" -pkeyopt rsa_padding_mode:pkcs1)
uk=$(unhex "$(manifest_field "$TMPD/sc/img.manifest.xml" image/user_encrypted_key)" |
     openssl pkeyutl -decrypt -inkey "$TMPD/user.key" -pkeyopt rsa_padding_mode:pkcs1)
[ "$ek" = "$uk" ] || fail "ec2 and user keys differ"
echo ok
