# ami-lib.sh - sourced by the AMI tests after functions.sh.  Builds and
# opens AMI bundles with the command-line tools, the way ec2-bundle-image and
# ec2-unbundle do it (tar | tee fifo | gzip -9 | openssl enc; openssl sha1 on
# the fifo), so that scimg is checked against an independent implementation.

requires openssl tar gzip split python3

# make_keys DIR: DIR/user.key + user.pem (the user's key and certificate),
# DIR/ec2.key + ec2.pem (stand-in for EC2's), DIR/other.key + other.pem.
make_keys() {
  for k in user ec2 other; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/$k.key" -out "$1/$k.pem" \
      -days 2 -subj "/CN=scimg-test-$k" >/dev/null 2>&1 || fail "openssl req for $k"
  done
}

hex() { od -An -v -tx1 | tr -d ' \n'; }
unhex() { python3 -c 'import sys,binascii;sys.stdout.buffer.write(binascii.unhexlify(sys.argv[1]))' "$1"; }

# rsa_enc CERT TEXT: hex of TEXT encrypted under CERT with PKCS#1 v1.5
rsa_enc() {
  printf %s "$2" | openssl pkeyutl -encrypt -certin -inkey "$1" \
    -pkeyopt rsa_padding_mode:pkcs1 | hex
}

# cli_bundle KEYDIR OUTDIR PREFIX SRCDIR FILE...: bundle the files of SRCDIR
# (normally one image, named PREFIX) into OUTDIR, as ec2-bundle-image does.
# <size> is the first file's.  CLI_TAR_OPTS adds tar options; CLI_DEREF=""
# stores symbolic links as links.
cli_bundle() {
  kd=$1 od_=$2 prefix=$3 srcdir=$4
  shift 4
  stage="$od_.stage"
  mkdir -p "$od_" "$stage"
  key=$(openssl rand -hex 16)
  iv=$(openssl rand -hex 16)
  rm -f "$stage/digest.pipe"
  mkfifo "$stage/digest.pipe"
  openssl sha1 < "$stage/digest.pipe" > "$stage/digest.out" &
  sha_pid=$!
  # shellcheck disable=SC2086
  tar -c ${CLI_DEREF--h} --sparse --owner 0 --group 0 ${CLI_TAR_OPTS:-} -C "$srcdir" "$@" |
    tee "$stage/digest.pipe" | gzip -9 |
    openssl enc -e -aes-128-cbc -K "$key" -iv "$iv" > "$stage/$prefix.tar.gz.enc" ||
    fail "cli bundle pipeline"
  wait $sha_pid
  digest=$(awk '{print $NF}' "$stage/digest.out")
  size=$(stat -c %s "$stage/$prefix.tar.gz.enc")
  nparts=$(( (size + 10485759) / 10485760 ))
  width=${#nparts}
  split -b 10485760 -d -a "$width" "$stage/$prefix.tar.gz.enc" "$od_/$prefix.part."
  mc="<machine_configuration><architecture>x86_64</architecture><block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping><mapping><virtual>root</virtual><device>/dev/sda1</device></mapping></block_device_mapping></machine_configuration>"
  parts=""
  i=0
  for p in $(cd "$od_" && ls "$prefix".part.* | sort); do
    d=$(openssl sha1 "$od_/$p" | awk '{print $NF}')
    parts="$parts<part index='$i'><filename>$p</filename><digest algorithm='SHA1'>$d</digest></part>"
    i=$((i + 1))
  done
  imgsize=$(stat -L -c %s "$srcdir/$1")
  im="<image><name>$prefix</name><user>123456789012</user><type>machine</type><digest algorithm='SHA1'>$digest</digest><size>$imgsize</size><bundled_size>$size</bundled_size><ec2_encrypted_key algorithm='AES-128-CBC'>$(rsa_enc "$kd/ec2.pem" "$key")</ec2_encrypted_key><user_encrypted_key algorithm='AES-128-CBC'>$(rsa_enc "$kd/user.pem" "$key")</user_encrypted_key><ec2_encrypted_iv>$(rsa_enc "$kd/ec2.pem" "$iv")</ec2_encrypted_iv><user_encrypted_iv>$(rsa_enc "$kd/user.pem" "$iv")</user_encrypted_iv><parts count='$i'>$parts</parts></image>"
  sig=$(printf %s "$mc$im" | openssl dgst -sha1 -sign "$kd/user.key" | hex)
  printf "<?xml version='1.0'?><manifest><version>2007-10-10</version><bundler><name>ec2-ami-tools</name><version>1.5.7</version><release>0</release></bundler>%s%s<signature>%s</signature></manifest>" \
    "$mc" "$im" "$sig" > "$od_/$prefix.manifest.xml"
  rm -rf "$stage"
}

# manifest_field MANIFEST XPATH: text of an element (ElementTree path)
manifest_field() {
  python3 - "$1" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
e = ET.parse(sys.argv[1]).getroot().find(sys.argv[2])
print(e.text if e is not None else "")
EOF
}

# cli_unbundle KEYDIR MANIFEST OUTDIR: what ec2-unbundle does; fails on a
# digest mismatch.  Also checks the manifest's signature with openssl.
cli_unbundle() {
  kd=$1 mf=$2 out=$3
  dir=$(dirname "$mf")
  mkdir -p "$out"
  key=$(unhex "$(manifest_field "$mf" image/user_encrypted_key)" |
        openssl pkeyutl -decrypt -inkey "$kd/user.key" -pkeyopt rsa_padding_mode:pkcs1)
  iv=$(unhex "$(manifest_field "$mf" image/user_encrypted_iv)" |
       openssl pkeyutl -decrypt -inkey "$kd/user.key" -pkeyopt rsa_padding_mode:pkcs1)
  [ ${#key} -eq 32 ] && [ ${#iv} -eq 32 ] || fail "cli unbundle: key/iv are not 32 hex characters"
  parts=$(python3 - "$mf" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
ps = sorted(r.findall("image/parts/part"), key=lambda p: int(p.get("index")))
print(" ".join(p.find("filename").text for p in ps))
EOF
)
  files=""
  for p in $parts; do files="$files $dir/$p"; done
  rm -f "$out/.digest.pipe"
  mkfifo "$out/.digest.pipe"
  openssl sha1 < "$out/.digest.pipe" > "$out/.digest.out" &
  sha_pid=$!
  # shellcheck disable=SC2086
  cat $files | openssl enc -d -aes-128-cbc -K "$key" -iv "$iv" | gunzip |
    tee "$out/.digest.pipe" | tar -x -C "$out" || fail "cli unbundle pipeline"
  wait $sha_pid
  got=$(awk '{print $NF}' "$out/.digest.out")
  want=$(manifest_field "$mf" image/digest)
  rm -f "$out/.digest.pipe" "$out/.digest.out"
  [ "$got" = "$want" ] || fail "cli unbundle: digest $got, manifest says $want"
  # the signature over <machine_configuration> + <image>, as in the file
  python3 - "$mf" > "$out/.signed" <<'EOF'
import sys
t = open(sys.argv[1]).read()
def cut(n):
    a = t.find("<%s>" % n); b = t.find("</%s>" % n, a)
    return t[a:b + len(n) + 3] if a >= 0 else ""
sys.stdout.write(cut("machine_configuration") + cut("image"))
EOF
  unhex "$(manifest_field "$mf" signature)" > "$out/.sig"
  openssl x509 -pubkey -noout -in "$kd/user.pem" > "$out/.pub"
  openssl dgst -sha1 -verify "$out/.pub" -signature "$out/.sig" "$out/.signed" >/dev/null ||
    fail "cli unbundle: signature does not verify"
  rm -f "$out/.signed" "$out/.sig" "$out/.pub"
}

# resign MANIFEST KEY: sign an edited manifest again (to test the checks that
# come after the signature)
resign() {
  python3 - "$1" > "$1.signed" <<'EOF'
import sys
t = open(sys.argv[1]).read()
def cut(n):
    a = t.find("<%s>" % n); b = t.find("</%s>" % n, a)
    return t[a:b + len(n) + 3] if a >= 0 else ""
sys.stdout.write(cut("machine_configuration") + cut("image"))
EOF
  sig=$(openssl dgst -sha1 -sign "$2" "$1.signed" | hex)
  rm -f "$1.signed"
  sed -i "s|<signature>[0-9a-f]*</signature>|<signature>$sig</signature>|" "$1"
}
