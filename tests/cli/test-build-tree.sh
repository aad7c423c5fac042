#!/bin/sh
# An uninstalled scimg finds the build tree's plugins without
# $SCIMG_PLUGIN_PATH (through libtool's wrapper and run directly), a copy of
# it outside the build tree does not; scimg.pc gives -I$includedir so that
# <scimg/scimg-plugin.h> (docs/plugin-api.md) compiles with any prefix, and
# names every library libscimg links.
. "$(dirname "$0")/functions.sh"

# 1. plugins of the build tree
for prog in "$top_builddir/cmd/scimg" "$SCIMG"; do
  (cd "$TMPD" && env -u SCIMG_PLUGIN_PATH timeout 60 "$prog" plugins --output=json) > "$TMPD/pl.json" ||
    fail "$prog plugins failed"
  for p in vdi azure ec2 vsphere gce; do
    grep -q "\"path\": \"$top_builddir/plugins/$p/.libs/$p.so\"" "$TMPD/pl.json" ||
      { cat "$TMPD/pl.json"; fail "$prog (uninstalled) did not find the build tree's $p plugin"; }
  done
  (cd "$TMPD" && env -u SCIMG_PLUGIN_PATH timeout 60 "$prog" --help) | grep -q ' vdi(rw)' ||
    fail "$prog --help does not list vdi"
done
# VDI converts as VDI, not as a 4.5 KiB raw disk
printf 'data' > "$TMPD/d.raw"; truncate -s 1M "$TMPD/d.raw"
env -u SCIMG_PLUGIN_PATH timeout 60 "$SCIMG" convert -O vdi "$TMPD/d.raw" "$TMPD/d.vdi" || fail "convert to vdi"
env -u SCIMG_PLUGIN_PATH timeout 60 "$SCIMG" info "$TMPD/d.vdi" | grep -q '^file format: vdi' ||
  fail "an uninstalled scimg does not read VDI"
# An explicit SCIMG_PLUGIN_PATH is respected (here: no plugin at all).
SCIMG_PLUGIN_PATH="$TMPD/none" timeout 60 "$SCIMG" --help | grep -q ' vdi(rw)' &&
  fail "SCIMG_PLUGIN_PATH set: the build tree's plugins must not be added"
# A copy of the program elsewhere is not "uninstalled in the build tree".
real=$SCIMG
if head -c 4096 "$real" | grep -q libtool; then real=""; fi
if [ -n "$real" ]; then
  cp "$real" "$TMPD/scimg-copy"
  env -u SCIMG_PLUGIN_PATH timeout 60 "$TMPD/scimg-copy" --help | grep -q ' vdi(rw)' &&
    fail "a copy of scimg outside the build tree found the build tree's plugins"
fi

# 2. scimg.pc
if command -v pkg-config >/dev/null 2>&1 && command -v cc >/dev/null 2>&1; then
  PKG_CONFIG_PATH=$top_builddir; export PKG_CONFIG_PATH
  inc="$TMPD/prefix/include"
  mkdir -p "$inc/scimg"
  cp "$top_srcdir/lib/scimg.h" "$top_srcdir/lib/scimg-plugin.h" "$inc/scimg/"
  cp "$top_builddir/scimg-version.h" "$inc/scimg/" || fail "no scimg-version.h in the build tree"
  cflags=$(pkg-config --define-variable=includedir="$inc" --cflags scimg) || fail "pkg-config --cflags scimg"
  echo "$cflags" | grep -q -- "-I$inc\( \|$\)" || fail "Cflags is '$cflags', expected -I$inc"
  cat > "$TMPD/p.c" <<'EOC'
#include <scimg/scimg-plugin.h>
#include <scimg/scimg.h>
int main(void) { return SCIMG_PLUGIN_API_VERSION == 1 ? 0 : 1; }
EOC
  cc $cflags -c -o "$TMPD/p.o" "$TMPD/p.c" || fail "<scimg/scimg-plugin.h> does not compile with pkg-config --cflags scimg"
  priv=$(pkg-config --print-requires-private scimg)
  for m in zlib libdeflate libzstd libarchive libcrypto libcurl libxml-2.0 libguestfs liblzma; do
    echo "$priv" | grep -q "^$m\( \|$\)" || fail "scimg.pc: $m missing from Requires.private"
  done
  # every library libscimg.so links is named by scimg.pc (directly or by
  # a module it requires)
  so="$top_builddir/lib/.libs/libscimg.so"
  if [ -f "$so" ] && command -v objdump >/dev/null 2>&1; then
    all=$(pkg-config --static --libs scimg)
    for need in $(objdump -p "$so" | awk '/NEEDED/{print $2}'); do
      l=$(echo "$need" | sed -n 's/^lib\([^.]*\)\.so.*/\1/p')
      case $l in c|m|gcc_s|pthread|dl|rt|asan|ubsan|"") continue ;; esac
      echo " $all " | grep -q -- "-l$l " || fail "libscimg links $need, which scimg.pc does not name"
    done
  fi
fi
echo ok
