#!/bin/bash
# bench/convert.sh - time scimg against qemu-img on the same conversions, in
# one run, and print ratios (scimg / qemu-img: below 1.0 means scimg is faster).
#
# Usage: bench/convert.sh [SCIMG] [WORKDIR]
# Environment: VSIZE_GIB (virtual size, default 8), REGIONS (default 96: each
#   region adds 8 MiB random + 4 MiB text + 2 MiB written zeros), CASES
#   (space-separated list, default all that both tools support), REPEAT (3),
#   SECTIONS (default "convert ami scale"):
#   convert  the CASES table against qemu-img;
#   ami      EC2 AMI bundle write of the same input, in MB/s of allocated
#            data, against ec2-bundle-image's own pipeline (tar -S | gzip -9
#            | openssl enc -aes-128-cbc | split -b 10M), one round;
#   scale    2 TiB virtual holding 100 MiB of data against 100 MiB dense:
#            cost must follow allocated data, not virtual size.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SCIMG=${1:-$here/../build-plain/cmd/scimg}
WORK=${2:-/var/tmp/scimg-bench}
VSIZE_GIB=${VSIZE_GIB:-8}
REGIONS=${REGIONS:-96}
REPEAT=${REPEAT:-3}
QEMU_IMG=${QEMU_IMG:-qemu-img}
command -v "$QEMU_IMG" >/dev/null || { echo "qemu-img not found"; exit 77; }
[ -x "$SCIMG" ] || { echo "scimg binary not found at $SCIMG"; exit 2; }
# A build tree's cmd/scimg is libtool's shell wrapper: time the program
# itself (as installed), not a shell starting it.
if head -c 4096 "$SCIMG" | grep -q "libtool"; then
  real=$(dirname "$SCIMG")/.libs/$(basename "$SCIMG")
  libdir=$(sed -n 's/^ *LD_LIBRARY_PATH="\([^:"]*\):.*/\1/p' "$SCIMG" | head -1)
  [ -x "$real" ] && [ -d "$libdir" ] || { echo "cannot find the program behind libtool's wrapper $SCIMG"; exit 2; }
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  SCIMG=$real
fi
echo "scimg: $SCIMG"
mkdir -p "$WORK"

src=$WORK/input.raw
stamp="$VSIZE_GIB-$REGIONS"
if [ ! -f "$src" ] || [ "$(cat "$WORK/input.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "building input: ${VSIZE_GIB} GiB virtual, $REGIONS mixed regions"
  rm -f "$src"; truncate -s "${VSIZE_GIB}G" "$src"
  step=$(( VSIZE_GIB * 1024 / REGIONS ))       # MiB between regions
  text=$WORK/text.bin
  { yes "The quick brown fox jumps over the lazy dog; scimg bench $(date +%s)" || true; } | head -c 4M > "$text"
  for ((i = 0; i < REGIONS; i++)); do
    off=$(( i * step ))
    head -c 8M /dev/urandom | dd of="$src" bs=1M seek=$off conv=notrunc status=none
    dd if="$text" of="$src" bs=1M seek=$((off + 8)) conv=notrunc status=none
    dd if=/dev/zero of="$src" bs=1M count=2 seek=$((off + 12)) conv=notrunc status=none
  done
  echo "$stamp" > "$WORK/input.stamp"
fi
alloc=$(du -B1 "$src" | cut -f1)
echo "input: $(stat -c %s "$src") bytes virtual, $alloc bytes allocated"

# Helper inputs in other formats, made by qemu-img (reference tool) once.
mkinput() { # fmt opts file
  [ -f "$3" ] || "$QEMU_IMG" convert -f raw -O "$1" $2 "$src" "$3"
}

# run_one LABEL CMD... -> prints seconds and peak KiB, leaves output
measure() {
  /usr/bin/time -o "$WORK/time.out" -f "%e %M" "$@" >/dev/null 2>"$WORK/cmd.err" ||
    { echo "command failed: $* : $(cat "$WORK/cmd.err")" >&2; exit 1; }
  tail -1 "$WORK/time.out"
}

# Each timed run starts from the same state: its output removed and no dirty
# page of an earlier run left to write back (sync), so no run pays for the
# one before it.  The variants of one case are interleaved, REPEAT rounds,
# and each keeps its best time.
declare -A BT BM
timed() { # key out cmd...
  local key=$1 out=$2; shift 2
  rm -f "$out"; sync
  read -r s k < <(measure "$@")
  if [ -z "${BT[$key]:-}" ] || awk "BEGIN{exit !($s < ${BT[$key]})}"; then BT[$key]=$s; BM[$key]=$k; fi
}

SECTIONS=${SECTIONS:-convert ami scale}
section() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }

if section convert; then
cases=${CASES:-"raw:qcow2 raw:qcow2-c qcow2:raw qcow2:qcow2 raw:raw raw:vmdk-stream raw:vpc vmdk-stream:qcow2 qcow2-c:qcow2"}
printf '%-22s %9s %9s %7s %9s %9s %7s %7s %7s %7s %7s\n' case qemu-img scimg ratio q-flush s-flush ratio q-MiB s-MiB q-size s-size
for c in $cases; do
  in=${c%%:*}; out=${c#*:}
  case $in in
    raw) infile=$src ;;
    qcow2) infile=$WORK/in.qcow2; mkinput qcow2 "" "$infile" ;;
    qcow2-c) infile=$WORK/in-c.qcow2; mkinput qcow2 "-c" "$infile" ;;
    vmdk-stream) infile=$WORK/in-stream.vmdk; mkinput vmdk "-o subformat=streamOptimized" "$infile" ;;
  esac
  case $out in
    qcow2) qa="-O qcow2"; sa="-O qcow2" ;;
    qcow2-c) qa="-O qcow2 -c"; sa="-O qcow2 -c" ;;
    raw) qa="-O raw"; sa="-O raw" ;;
    vmdk-stream) qa="-O vmdk -o subformat=streamOptimized"; sa="-O vmdk -o subformat=streamOptimized" ;;
    vpc) qa="-O vpc"; sa="-O vhd" ;;
  esac
  infmt=${in%-c}; infmt=${infmt%-stream}
  sfmt=$(echo "$sa" | awk '{print $2}')
  "$SCIMG" --help | grep -Eq " $sfmt\(r?w\)" || { printf '%-22s (scimg cannot write %s yet)\n' "$c" "$sfmt"; continue; }
  "$SCIMG" --help | grep -Eq " $infmt\(rw?\)" || { printf '%-22s (scimg cannot read %s yet)\n' "$c" "$infmt"; continue; }
  cat "$infile" > /dev/null  # warm the page cache for both
  qo=$WORK/out-q; so=$WORK/out-s
  BT=(); BM=()
  for ((r = 0; r < REPEAT; r++)); do
    timed q "$qo" "$QEMU_IMG" convert -f "$infmt" $qa "$infile" "$qo"
    timed s "$so" "$SCIMG" convert --no-sync -f "$infmt" $sa "$infile" "$so"
    timed qf "$qo" "$QEMU_IMG" convert -t writeback -f "$infmt" $qa "$infile" "$qo"
    timed sf "$so" "$SCIMG" convert -f "$infmt" $sa "$infile" "$so"
  done
  qsize=$(du -B1 "$qo" | cut -f1); ssize=$(du -B1 "$so" | cut -f1)
  if ! "$QEMU_IMG" compare -q "$qo" "$so"; then
    echo "MISMATCH: outputs of $c differ"; exit 1
  fi
  ratio=$(awk "BEGIN{printf \"%.2f\", (${BT[q]} > 0 ? ${BT[s]} / ${BT[q]} : 0)}")
  fratio=$(awk "BEGIN{printf \"%.2f\", (${BT[qf]} > 0 ? ${BT[sf]} / ${BT[qf]} : 0)}")
  qm=$(( BM[q] > BM[qf] ? BM[q] : BM[qf] )); sm=$(( BM[s] > BM[sf] ? BM[s] : BM[sf] ))
  printf '%-22s %8ss %8ss %6sx %8ss %8ss %6sx %7d %7d %7d %7d\n' "$c" "${BT[q]}" "${BT[s]}" "$ratio" \
    "${BT[qf]}" "${BT[sf]}" "$fratio" $((qm / 1024)) $((sm / 1024)) $((qsize >> 20)) $((ssize >> 20))
  rm -f "$qo" "$so"
done
echo "(times: best of $REPEAT interleaved rounds, each run after a sync."
echo " qemu-img/scimg: neither flushes (qemu-img's convert default -t unsafe; scimg --no-sync);"
echo " q-flush/s-flush: both flush the output before they finish (qemu-img -t writeback; scimg's default)."
echo " *-MiB: peak RSS of any run; *-size: output MiB allocated)"
fi

if section ami; then
  echo
  echo "AMI bundle write: $alloc bytes allocated, $(stat -c %s "$src") virtual"
  kd=$WORK/keys; mkdir -p "$kd"
  for k in user ec2; do
    [ -f "$kd/$k.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$kd/$k.key" \
      -out "$kd/$k.pem" -days 30 -subj "/CN=scimg-bench-$k" >/dev/null 2>&1
  done
  ao=$WORK/ami-out; BT=(); BM=()
  for ((r = 0; r < REPEAT; r++)); do
    rm -rf "$ao"; sync
    read -r t m < <(measure "$SCIMG" convert -f raw -O ami \
      -o "cert=$kd/user.pem,privatekey=$kd/user.key,ec2cert=$kd/ec2.pem,user=123456789012,prefix=disk" "$src" "$ao")
    if [ -z "${BT[s]:-}" ] || awk "BEGIN{exit !($t < ${BT[s]})}"; then BT[s]=$t; BM[s]=$m; fi
  done
  asize=$(du -sb "$ao" | cut -f1)
  # what ec2-bundle-image runs (one round: gzip -9 is single-threaded)
  rm -rf "$WORK/cli-ami"; mkdir -p "$WORK/cli-ami"; sync
  key=$(openssl rand -hex 16); iv=$(openssl rand -hex 16)
  s0=$(date +%s.%N)
  tar -c -S -C "$(dirname "$src")" "$(basename "$src")" | tee >(openssl sha1 > "$WORK/cli-ami/digest") |
    gzip -9 | openssl enc -e -aes-128-cbc -K "$key" -iv "$iv" |
    split -a 2 -d -b 10M - "$WORK/cli-ami/disk.part."
  sync -f "$WORK/cli-ami/digest"
  tcli=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
  csize=$(du -sb "$WORK/cli-ami" | cut -f1)
  awk -v t="${BT[s]}" -v c="$tcli" -v a="$alloc" -v m="${BM[s]}" -v s1="$asize" -v s2="$csize" 'BEGIN{
    printf "  scimg -O ami:             %7.2f s  %6.0f MB/s allocated  peak %d MiB  bundle %d MiB\n", t, a / t / 1e6, m / 1024, s1 / 1048576
    printf "  tar -S|gzip -9|openssl:   %7.2f s  %6.0f MB/s allocated               bundle %d MiB\n", c, a / c / 1e6, s2 / 1048576
    printf "  ratio scimg / pipeline:   %7.2fx (goal: >= 150 MB/s of allocated data)\n", t / c }'
  rm -rf "$ao" "$WORK/cli-ami"
fi

if section scale; then
  echo
  echo "virtual-size scaling: 2 TiB virtual with 100 MiB of data vs a 100 MiB dense image"
  big=$WORK/sparse-2t.raw; small=$WORK/dense-100m.raw
  if [ ! -f "$big" ] || [ ! -f "$small" ]; then
    rm -f "$big" "$small"; truncate -s 2T "$big"
    for ((i = 0; i < 10; i++)); do   # ten 10 MiB extents spread over 2 TiB
      head -c 10M /dev/urandom | dd of="$big" bs=1M seek=$((i * 209715)) conv=notrunc status=none
    done
    head -c 100M /dev/urandom > "$small"
  fi
  printf '  %-16s %11s %11s %7s\n' output 2TiB-sparse 100MiB-dense ratio
  for o in qcow2 raw vhdx vmdk; do
    BT=(); BM=()
    for ((r = 0; r < REPEAT; r++)); do
      timed b "$WORK/out-b" "$SCIMG" convert --no-sync -f raw -O $o "$big" "$WORK/out-b"
      timed d "$WORK/out-d" "$SCIMG" convert --no-sync -f raw -O $o "$small" "$WORK/out-d"
    done
    printf '  scimg -O %-7s %10ss %10ss %6.1fx  (peak %d / %d MiB)\n' $o "${BT[b]}" "${BT[d]}" \
      "$(awk "BEGIN{print ${BT[b]} / ${BT[d]}}")" $((BM[b] / 1024)) $((BM[d] / 1024))
  done
  BT=(); BM=()
  for ((r = 0; r < REPEAT; r++)); do
    timed b "$WORK/out-b" "$QEMU_IMG" convert -f raw -O qcow2 "$big" "$WORK/out-b"
    timed d "$WORK/out-d" "$QEMU_IMG" convert -f raw -O qcow2 "$small" "$WORK/out-d"
  done
  printf '  qemu-img qcow2   %10ss %10ss %6.1fx  (reference)\n' "${BT[b]}" "${BT[d]}" \
    "$(awk "BEGIN{print ${BT[b]} / ${BT[d]}}")"
  rm -f "$WORK/out-b" "$WORK/out-d"
fi
