#!/bin/sh
# Corrupted manifests and parts never crash or hang scimg: every variant
# exits 0 or 2, within a time limit.  Variants: truncations and byte flips
# of real and generated manifests, hostile XML (DOCTYPE, entities, external
# entities), absurd counts and sizes; and parts altered below the part
# digests (digests updated and the manifest re-signed), so that the damage
# reaches the AES, gzip and tar decoders.
. "$(dirname "$0")/functions.sh"
corrupt_corpus_test
. "$(dirname "$0")/ami-lib.sh"
requires timeout

make_keys "$TMPD"
K="cert=$TMPD/user.pem,privatekey=$TMPD/user.key,ec2cert=$TMPD/ec2.pem,user=123456789012"
make_mixed_raw "$TMPD/in.raw" 4
"$SCIMG" convert -f raw -O ami -o "$K,prefix=d" "$TMPD/in.raw" "$TMPD/good" || fail "bundle"
mkdir "$TMPD/v"

# run_ok NAME ARGS...: exit 0 or 2 within 60 s
run_ok() {
  name=$1
  shift
  timeout 60 "$SCIMG" "$@" >/dev/null 2>"$TMPD/err"; rc=$?
  case $rc in
    0|2) ;;
    124) fail "$name: timed out" ;;
    *) fail "$name: exit $rc: $(cat "$TMPD/err")" ;;
  esac
}

manifests="$TMPD/good/d.manifest.xml"
if [ -f "$SHARED_DIR/fixtures/external/ami/rbuilder-bioinformatics.img.manifest.xml" ]; then
  manifests="$manifests $SHARED_DIR/fixtures/external/ami/rbuilder-bioinformatics.img.manifest.xml"
fi
i=0
for m in $manifests; do
  python3 - "$m" "$TMPD/v" "$i" <<'PY'
import random, sys
src, out, tag = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
rnd = random.Random(4242 + int(tag))
def put(name, b):
    open("%s/%s-%s.manifest.xml" % (out, tag, name), "wb").write(b)
for n in (0, 1, 10, 40, len(data) // 3, len(data) // 2, len(data) - 20, len(data) - 1):
    put("trunc%d" % n, data[:n])
for k in range(40):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        p = rnd.randrange(len(b))
        b[p] ^= 1 << rnd.randrange(8)
    put("flip%d" % k, bytes(b))
t = data.decode("latin-1")
subs = {
    "bomb": t.replace("<manifest>", '<!DOCTYPE manifest [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><manifest>', 1).replace("<user>", "<user>&d;", 1),
    "xxe": t.replace("<manifest>", '<!DOCTYPE manifest [<!ENTITY x SYSTEM "file:///etc/passwd">]><manifest>', 1).replace("<user>", "<user>&x;", 1),
    "undeclared": t.replace("<user>", "<user>&nope;", 1),
    "count": t.replace("count='", "count='99999999999", 1).replace('count="', 'count="99999999999', 1),
    "count0": t.replace("count='", "count='0", 1).replace('count="', 'count="0', 1),
    "index": t.replace("index='0'", "index='-1'", 1).replace('index="0"', 'index="-1"', 1),
    "size": t.replace("<size>", "<size>99999999999999999999", 1),
    "bigsize": t.replace("<size>", "<size>1", 1),
    "nul": t.replace("<user>", "<user>\0", 1),
    "nested": t.replace("<user>", "<user><x>1</x>", 1),
    "dup": t.replace("<size>", "<size>1</size><size>", 1),
    "root": t.replace("<manifest>", "<manifestx>", 1).replace("</manifest>", "</manifestx>", 1),
    "version": t.replace("<version>", "<version>9", 1),
    "hexkey": t.replace("<user_encrypted_key", "<user_encrypted_key>zz</user_encrypted_key><x", 1),
    "digest": t.replace("<digest algorithm='SHA1'>", "<digest algorithm='MD5'>", 1),
    "deep": t.replace("<user>", "<user>" + "<a>" * 5000 + "</a>" * 5000, 1),
}
for k, v in subs.items():
    put(k, v.encode("latin-1"))
PY
  i=$((i + 1))
done
n=0
for v in "$TMPD"/v/*.manifest.xml; do
  # parts are found beside the manifest
  cp "$TMPD"/good/d.part.* "$TMPD/v/" 2>/dev/null
  run_ok "info $(basename "$v")" info "$v"
  run_ok "info+key $(basename "$v")" info -I "privatekey=$TMPD/user.key" "$v"
  run_ok "convert $(basename "$v")" convert --no-sync -I "privatekey=$TMPD/user.key" -O raw "$v" "$TMPD/out.raw"
  rm -f "$TMPD/out.raw"
  n=$((n + 1))
done

# damage below the digests: flip bytes of the encrypted stream, update the
# part digests, re-sign
for k in 0 1 2 3 4 5 6 7 8 9 10 11; do
  rm -rf "$TMPD/p"
  cp -r "$TMPD/good" "$TMPD/p"
  python3 - "$TMPD/p/d.manifest.xml" "$TMPD/p" "$k" <<'PY'
import hashlib, os, random, re, sys
m, d, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(99 + k)
parts = sorted(f for f in os.listdir(d) if ".part." in f)
p = os.path.join(d, parts[rnd.randrange(len(parts))])
b = bytearray(open(p, "rb").read())
if k == 11:
    b = b[:len(b) // 2]                 # truncated part
else:
    # early bytes hit the gzip header and the tar header, later ones the data
    pos = [0, 5, 16, 40, 600, 1000, 4096, len(b) // 2, len(b) - 40, len(b) - 17, len(b) - 1][k]
    b[pos] ^= 0x5a
open(p, "wb").write(b)
t = open(m).read()
for f in parts:
    h = hashlib.sha1(open(os.path.join(d, f), "rb").read()).hexdigest()
    t = re.sub(r"(<filename>%s</filename><digest algorithm='SHA1'>)[0-9a-f]+" % re.escape(f), r"\g<1>" + h, t)
open(m, "w").write(t)
PY
  resign "$TMPD/p/d.manifest.xml" "$TMPD/user.key"
  timeout 60 "$SCIMG" convert --no-sync -I "privatekey=$TMPD/user.key" -O raw "$TMPD/p/d.manifest.xml" "$TMPD/out.raw" \
    >/dev/null 2>"$TMPD/err"; rc=$?
  [ $rc -eq 2 ] || fail "damaged stream $k: exit $rc (expected 2): $(cat "$TMPD/err")"
  [ ! -e "$TMPD/out.raw" ] || fail "damaged stream $k: output left"
  n=$((n + 1))
done
echo "ok ($n variants)"
