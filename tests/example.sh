#!/bin/sh
# example.sh - build scimg and run its main job on the bundled example image:
# show what it is, convert it, and show the result.  README.md, command 1.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -x build-plain/cmd/scimg ]; then
  autoreconf -fi >/dev/null
  mkdir -p build-plain
  (cd build-plain && ../configure >/dev/null && make -j"$jobs" >/dev/null)
fi
scimg=build-plain/cmd/scimg
out=example.out
mkdir -p "$out"
echo "== scimg info tests/fixtures/example.qcow2"
$scimg info tests/fixtures/example.qcow2
for f in qcow2 raw; do
  case $f in qcow2) opt=-c ;; *) opt= ;; esac
  echo "== scimg convert -O $f $opt tests/fixtures/example.qcow2 $out/example.$f"
  $scimg convert -p -O $f $opt tests/fixtures/example.qcow2 "$out/example.$f"
  $scimg info "$out/example.$f"
done
echo "== scimg compare tests/fixtures/example.qcow2 $out/example.raw"
$scimg compare tests/fixtures/example.qcow2 "$out/example.raw"
