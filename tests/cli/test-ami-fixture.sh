#!/bin/sh
# The real ec2-ami-tools manifest of the shared fixtures (version 3, its
# parts are not available) parses, and info shows its fields and names the
# missing parts; reading it fails naming what is missing.
. "$(dirname "$0")/functions.sh"
requires_external
m="$EXT_UNPACKED/ami/rbuilder-bioinformatics.img.manifest.xml"
[ -f "$m" ] || skip "no AMI manifest among the fixtures"

"$SCIMG" info "$m" > "$TMPD/info" || fail "info: $(cat "$TMPD/info")"
grep -q "file format: ami" "$TMPD/info" || fail "not probed as ami"
"$SCIMG" info --output=json "$m" > "$TMPD/info.json" || fail "info json"
python3 - "$TMPD/info.json" <<'PY' || fail "info fields: $(cat "$TMPD/info.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "ami" and d["virtual-size"] == 2212962304, d
f = d["scimg"]
want = {
    "manifest-version": "3",
    "name": "bioinformatics-0.0.1-x86_15351.img",
    "user": "099034111737",
    "image-digest-sha1": "4e6500b699bf71063f4e1b0b95815452e41e274d",
    "image-size": 2212962304,
    "bundled-size": 334302128,
    "parts-count": 2,
    "missing-parts": ["part00", "part01"],
    "user-key-bits": 768,
    "ec2-key-bits": 1024,
}
for k, v in want.items():
    assert f.get(k) == v, (k, f.get(k), v)
assert f["bundler"] == {"name": "ec2-ami-tools", "version": "1.2", "release": "7221"}, f["bundler"]
assert [p["filename"] for p in f["parts"]] == ["part00", "part01"]
assert all(p["present"] is False for p in f["parts"])
PY
grep -q "part00" "$TMPD/info" || fail "human info does not list the parts"

# reading needs the key; with some other key, the element is named
"$SCIMG" convert -O raw "$m" "$TMPD/x.raw" 2>"$TMPD/err"; [ $? -eq 2 ] || fail "convert without key"
grep -q "privatekey" "$TMPD/err" || fail "$(cat "$TMPD/err")"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMPD/k" -out "$TMPD/c" -days 1 -subj /CN=x >/dev/null 2>&1 ||
  skip "openssl cannot make a key"
"$SCIMG" convert -I "privatekey=$TMPD/k" -O raw "$m" "$TMPD/x.raw" 2>"$TMPD/err"; [ $? -eq 2 ] || fail "convert, wrong key"
grep -q "<image>/<user_encrypted_key>" "$TMPD/err" || fail "$(cat "$TMPD/err")"
[ ! -e "$TMPD/x.raw" ] || fail "output left behind"
echo ok
