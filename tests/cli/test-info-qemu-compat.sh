#!/bin/sh
# scimg info --output=json speaks qemu-img's JSON: the same jq expressions
# give the same values on `qemu-img info --output=json` and on scimg's, for
# every format both read; --backing-chain gives the same images in the same
# order; -U and --image-opts are accepted; names that are not UTF-8 still
# give valid JSON.
. "$(dirname "$0")/functions.sh"
requires_qemu_img
requires jq
cd "$TMPD" || fail "cd"

Q() { timeout 60 "$QEMU_IMG" "$@"; }
S() { timeout 60 "$SCIMG" "$@"; }

make_mixed_raw data.raw 4
# qcow2 v3 with a backing file and a snapshot, v2 with a backing file
Q create -q -f qcow2 base.qcow2 4M || fail "base"
Q create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || fail "top"
Q snapshot -c snap1 top.qcow2 || fail "snapshot"
Q create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 v2.qcow2 || fail "v2"
Q convert -q -f raw -O qcow2 -o cluster_size=16k,lazy_refcounts=on data.raw lazy.qcow2 || fail "lazy"
# a chain in a subdirectory, named with a directory
mkdir sub
Q create -q -f qcow2 sub/b.qcow2 4M || fail "sub base"
Q create -q -f qcow2 -b b.qcow2 -F qcow2 sub/t.qcow2 || fail "sub top"
# vmdk
Q convert -q -f raw -O vmdk data.raw ms.vmdk || fail "monolithicSparse"
Q convert -q -f raw -O vmdk -o subformat=streamOptimized data.raw so.vmdk || fail "streamOptimized"
Q convert -q -f raw -O vmdk -o subformat=monolithicFlat data.raw mf.vmdk || fail "monolithicFlat"
Q convert -q -f raw -O vmdk -o subformat=twoGbMaxExtentSparse data.raw tg.vmdk || fail "twoGbMaxExtentSparse"
# vpc, vhdx, raw
Q convert -q -f raw -O vpc data.raw dyn.vhd || fail "vpc dynamic"
Q convert -q -f raw -O vpc -o subformat=fixed data.raw fixed.vhd || fail "vpc fixed"
Q convert -q -f raw -O vhdx data.raw x.vhdx || fail "vhdx"
cp data.raw plain.raw

# The keys compared; format-specific data: every key both have.
EXPRS='.format
."virtual-size"
."cluster-size"
."backing-filename"
."full-backing-filename"
."backing-filename-format"
."dirty-flag"
."format-specific".type
(.snapshots // []) | map({id, name, "vm-state-size", "date-sec", "date-nsec", "vm-clock-sec", "vm-clock-nsec"})
."actual-size" > 0'

# IMG FORMAT: compare (FORMAT is given to both: qemu probes a fixed VHD as raw)
n=0
cmp_info() {
  img=$1 fmt=$2
  Q info -f "$fmt" --output=json "$img" > q.json || fail "qemu-img info $img"
  S info -f "$fmt" --output=json "$img" > s.json || fail "scimg info $img"
  echo "$EXPRS" | while IFS= read -r e; do
    qv=$(jq -c "$e" q.json) || exit 1
    sv=$(jq -c "$e" s.json) || exit 1
    [ "$qv" = "$sv" ] || { echo "FAIL: $img: $e: qemu-img $qv, scimg $sv"; exit 1; }
  done || exit 1
  # format-specific data: every key both have, with the same value (for
  # extents: the same count, and every key each pair of extents shares)
  r=$(jq -n -c --slurpfile q q.json --slurpfile s s.json '
    ($q[0]["format-specific"].data // {}) as $a | ($s[0]["format-specific"].data // {}) as $b
    | [ ($a | keys[]) as $k | select($b | has($k))
        | if $k == "extents" then
            (if ($a[$k] | length) != ($b[$k] | length) then {key: $k, q: ($a[$k] | length), s: ($b[$k] | length)}
             else range(0; $a[$k] | length) as $i
                  | ($a[$k][$i]) as $x | ($b[$k][$i]) as $y
                  | ($x | keys[]) as $ek | select($y | has($ek))
                  | select($x[$ek] != $y[$ek]) | {key: "extents[\($i)].\($ek)", q: $x[$ek], s: $y[$ek]}
             end)
          else select($a[$k] != $b[$k]) | {key: $k, q: $a[$k], s: $b[$k]} end ]
    | if length == 0 then "ok" else tostring end') || fail "$img: jq"
  [ "$r" = '"ok"' ] || fail "$img: format-specific data differs: $r"
  # qemu's keys are all there
  missing=$(jq -n -c --slurpfile q q.json --slurpfile s s.json '
    [$q[0] | keys[] | select(. as $k | $s[0] | has($k) | not)]
    + [($q[0]["format-specific"].data // {}) | keys[]
       | select(. as $k | ($s[0]["format-specific"].data // {}) | has($k) | not)
       | "format-specific.data.\(.)"]') || fail "$img: jq keys"
  [ "$missing" = "[]" ] || fail "$img: keys qemu-img has and scimg lacks: $missing"
  n=$((n + 1))
}
cmp_info top.qcow2 qcow2
cmp_info v2.qcow2 qcow2
cmp_info base.qcow2 qcow2
cmp_info lazy.qcow2 qcow2
cmp_info sub/t.qcow2 qcow2
cmp_info "$TMPD/top.qcow2" qcow2
cmp_info ms.vmdk vmdk
cmp_info so.vmdk vmdk
cmp_info mf.vmdk vmdk
cmp_info tg.vmdk vmdk
cmp_info dyn.vhd vpc
cmp_info fixed.vhd vpc
cmp_info x.vhdx vhdx
cmp_info plain.raw raw
[ $n -eq 14 ] || fail "compared $n images, expected 14"

# probing names the formats as qemu-img does ("vpc", not "vhd")
for f in top.qcow2 ms.vmdk dyn.vhd x.vhdx; do
  [ "$(S info --output=json "$f" | jq -r .format)" = "$(Q info --output=json "$f" | jq -r .format)" ] ||
    fail "$f: probed format differs from qemu-img's"
done
# the snapshot is there (not a vacuous comparison)
[ "$(S info --output=json top.qcow2 | jq '.snapshots | length')" = 1 ] || fail "snapshot missing"
[ "$(S info --output=json sub/t.qcow2 | jq -r '."full-backing-filename"')" = sub/b.qcow2 ] || fail "full-backing-filename in sub/"

# multi-file images: actual-size counts every file
for f in mf.vmdk tg.vmdk; do
  q=$(Q info --output=json "$f" | jq '."actual-size"')
  s=$(S info --output=json "$f" | jq '."actual-size"')
  [ "$q" = "$s" ] || fail "$f: actual-size $s, qemu-img $q"
done
own=$(( $(stat -c %b mf.vmdk) * 512 ))
[ "$(S info --output=json mf.vmdk | jq '."actual-size"')" -gt "$own" ] || fail "mf.vmdk: the flat extent is not counted"

# an AMI bundle: the manifest and every part
if command -v openssl >/dev/null 2>&1; then
  for k in user ec2; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout $k.key -out $k.pem -days 2 \
      -subj "/CN=scimg-test-$k" >/dev/null 2>&1 || fail "openssl $k"
  done
  head -c 12582912 /dev/urandom > ami.raw
  S convert -f raw -O ami -o "cert=user.pem,privatekey=user.key,ec2cert=ec2.pem,user=123456789012,prefix=disk,arch=x86_64" \
    ami.raw bundle || fail "convert to ami"
  want=0 nf=0
  for f in bundle/*; do want=$((want + $(stat -c %b "$f") * 512)); nf=$((nf + 1)); done
  [ $nf -ge 3 ] || fail "the bundle has $nf files"
  got=$(S info --output=json bundle/disk.manifest.xml | jq '."actual-size"')
  [ "$got" = "$want" ] || fail "ami actual-size $got, the files hold $want"
fi

# --backing-chain: same length, same files, same order
for f in top.qcow2 v2.qcow2 sub/t.qcow2; do
  qc=$(Q info --backing-chain --output=json "$f" | jq -c 'map([.filename, .format, ."virtual-size"])') || fail "qemu chain $f"
  sc=$(S info --backing-chain --output=json "$f" | jq -c 'map([.filename, .format, ."virtual-size"])') || fail "scimg chain $f"
  [ "$qc" = "$sc" ] || fail "$f: --backing-chain: qemu-img $qc, scimg $sc"
  [ "$(echo "$sc" | jq length)" = 2 ] || fail "$f: chain length $(echo "$sc" | jq length)"
done
S info --backing-chain top.qcow2 | grep -c '^image: ' | grep -qx 2 || fail "human --backing-chain"

# -U, --image-opts (vpc as a format name)
S info -U --output=json top.qcow2 | jq -e '.format == "qcow2"' >/dev/null || fail "-U"
S info --force-share top.qcow2 >/dev/null || fail "--force-share"
S info --image-opts --output=json driver=vpc,file.filename=dyn.vhd | jq -e '.format == "vpc"' >/dev/null ||
  fail "--image-opts"
S info --image-opts driver=qcow2,file.filename=top.qcow2,cache.direct=on 2>err; [ $? -eq 2 ] || fail "--image-opts unknown key accepted"
grep -q "cache.direct" err || fail "--image-opts message: $(cat err)"
S info --image-opts -f qcow2 driver=qcow2,file.filename=top.qcow2 2>/dev/null && fail "--image-opts with -f accepted"
S convert -f vpc -O vpc dyn.vhd back.vhd || fail "convert -f vpc -O vpc"
[ "$(S info --output=json back.vhd | jq -r .format)" = vpc ] || fail "-O vpc"

# names that are not UTF-8: the JSON stays valid, bytes shown as \xHH
bad=$(printf 'b\377d')
Q create -q -f qcow2 "$bad.qcow2" 1M || fail "bad base"
Q create -q -f qcow2 -b "$bad.qcow2" -F qcow2 badtop.qcow2 || fail "bad top"
S info --output=json badtop.qcow2 > bad.json || fail "info of a non-UTF-8 backing name"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1], encoding="utf-8")); assert d["backing-filename"] == "b\\xffd.qcow2", d' bad.json ||
  fail "invalid JSON or wrong escape: $(cat bad.json)"
S info --backing-chain --output=json badtop.qcow2 | python3 -c 'import json,sys; json.load(sys.stdin)' || fail "chain JSON"
exit 0
