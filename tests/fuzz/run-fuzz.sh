#!/bin/bash
# run-fuzz.sh - build a libFuzzer target per format with clang (ASan+UBSan)
# and run each for FUZZ_SECONDS, seeded from tests/fuzz/corpus/<fmt> and the
# shared real-world fixtures.  Crashes are saved to tests/fuzz/crashes/<fmt>/;
# copy each into tests/fuzz/corpus/<fmt>/ once fixed, so make check replays it.
#
# Usage: run-fuzz.sh SRCDIR BUILDDIR "FORMATS" "LIB SOURCES"
set -euo pipefail
srcdir=$1 builddir=$2 formats=$3 sources=$4
secs=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
out=$builddir/fuzz
mkdir -p "$out"
flags="-g -O1 -std=gnu11 -D_GNU_SOURCE -DSCIMG_NO_PLUGIN_LOADING -DFUZZ_STATIC_PLUGINS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$srcdir/lib -I$builddir"
pc="zlib libzstd json-c libarchive libcrypto libcurl libxml-2.0 libguestfs liblzma"
cflags=$(pkg-config --cflags $pc)
libs="$(pkg-config --libs $pc) -pthread"
objs=()
for s in $sources; do
  case $s in *.c) ;; *) continue ;; esac
  o=$out/$(echo "$s" | tr / _).o
  $CC ${flags/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,} $cflags -c "$srcdir/$s" -o "$o"
  objs+=("$o")
done
ext=$srcdir/../shared/fixtures/external
for f in $formats; do
  bin=$out/fuzz-$f
  $CC $flags $cflags -DFUZZ_FORMAT="\"$f\"" "$srcdir/tests/fuzz/fuzz-image.c" "${objs[@]}" $libs -o "$bin"
  corpus=$out/corpus-$f; mkdir -p "$corpus" "$srcdir/tests/fuzz/crashes/$f"
  cp -n "$srcdir/tests/fuzz/corpus/$f/"* "$corpus/" 2>/dev/null || true
  if [ -d "$ext" ]; then
    # seeds: the shared samples whose name suggests the format (small ones)
    find "$ext" -name "*.gz" -size -400k | while read -r g; do
      case "$g" in *"$f"*|*.$f.gz) gzip -dc "$g" | head -c 4M > "$corpus/ext-$(basename "$g" .gz)" || true ;; esac
    done
  fi
  echo "== fuzz-$f for ${secs}s"
  (cd "$srcdir/tests/fuzz/crashes/$f" && "$bin" -max_total_time="$secs" -rss_limit_mb=512 \
     -timeout=10 -max_len=1048576 -print_final_stats=1 "$corpus" 2>&1 | tail -12)
done
