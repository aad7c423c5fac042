#!/bin/sh
# libscimg.so exports exactly the functions its public headers (lib/scimg.h,
# lib/scimg-plugin.h) mark SCIMG_API, and every plugin exports only
# scimg_plugin_init; scimg's version is configure's (AC_INIT) and the
# headers' SCIMG_VERSION_STRING.
. "$(dirname "$0")/functions.sh"
requires nm
# a sanitizer build's library needs its runtime first in the program: the
# small programs below (built without it) are checked in the plain build only
sanitized=$(ldd "$top_builddir/lib/.libs/libscimg.so" 2>/dev/null | grep -E "libasan|libubsan")

so="$top_builddir/lib/.libs/libscimg.so"
[ -f "$so" ] || skip "no shared library at $so (static build?)"

# The public API: the name before '(' on each SCIMG_API declaration.
for h in "$top_srcdir/lib/scimg.h" "$top_srcdir/lib/scimg-plugin.h"; do
  grep -h '^SCIMG_API ' "$h" | sed -n 's/^SCIMG_API [^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p'
done | sort -u > "$TMPD/public"
[ "$(wc -l < "$TMPD/public")" -ge 40 ] || { cat "$TMPD/public"; fail "too few SCIMG_API declarations found"; }
# every SCIMG_API line was understood
[ "$(grep -h '^SCIMG_API ' "$top_srcdir/lib/scimg.h" "$top_srcdir/lib/scimg-plugin.h" | wc -l)" -eq \
  "$(wc -l < "$TMPD/public")" ] || fail "a SCIMG_API declaration could not be parsed"

nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | sed 's/@.*//' | sort -u > "$TMPD/exported"
[ -s "$TMPD/exported" ] || fail "nm -D found no symbol in $so"

# exported but not public API
comm -23 "$TMPD/exported" "$TMPD/public" > "$TMPD/extra"
if [ -s "$TMPD/extra" ]; then
  cat "$TMPD/extra"
  fail "$(wc -l < "$TMPD/extra") symbol(s) exported from libscimg.so are not SCIMG_API in the public headers"
fi
# public API not exported (scimg_plugin_init is the plugins' own)
comm -13 "$TMPD/exported" "$TMPD/public" | grep -vx 'scimg_plugin_init' > "$TMPD/missing"
if [ -s "$TMPD/missing" ]; then
  cat "$TMPD/missing"
  fail "SCIMG_API function(s) not exported from libscimg.so"
fi
# the internal names never
grep -q '^scimg_int_\|^scimg_vhdx_' "$TMPD/exported" && fail "internal symbol exported"

# plugins export their registration function and nothing else
n=0
for p in "$top_builddir"/plugins/*/.libs/*.so; do
  [ -f "$p" ] || continue
  n=$((n + 1))
  nm -D --defined-only "$p" | awk 'NF == 3 { print $3 }' | sed 's/@.*//' | sort -u > "$TMPD/pl"
  [ "$(cat "$TMPD/pl")" = "scimg_plugin_init" ] || { cat "$TMPD/pl"; fail "$p exports more than scimg_plugin_init"; }
done
[ "$n" -ge 5 ] || fail "only $n plugins built"

# one version: configure.ac's AC_INIT, scimg-version.h, scimg --version
want=$(sed -n 's/^AC_INIT(\[scimg\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
[ -n "$want" ] || fail "no version in configure.ac"
grep -qx "#define SCIMG_VERSION_STRING \"$want\"" "$top_builddir/scimg-version.h" ||
  fail "scimg-version.h does not say $want"
grep -q 'define SCIMG_VERSION_STRING' "$top_srcdir/lib/scimg.h" && fail "lib/scimg.h hard-codes a version"
[ "$(timeout 30 "$SCIMG" --version)" = "scimg $want" ] || fail "scimg --version is not 'scimg $want'"
for sub in convert info; do
  [ "$(timeout 30 "$SCIMG" $sub --version)" = "scimg $want" ] || fail "scimg $sub --version"
done
# scimg_version() and SCIMG_VERSION_STRING seen by a program built against
# the build tree
if [ -z "$sanitized" ] && command -v cc >/dev/null 2>&1 && pkg-config --exists json-c 2>/dev/null; then
  cat > "$TMPD/v.c" <<'EOC'
#include <stdio.h>
#include <string.h>
#include "scimg.h"
int main(void)
{
	printf("%s %s %d.%d.%d\n", scimg_version(), SCIMG_VERSION_STRING,
	       SCIMG_VERSION_MAJOR, SCIMG_VERSION_MINOR, SCIMG_VERSION_MICRO);
	return 0;
}
EOC
  cc -I"$top_srcdir/lib" -I"$top_builddir" $(pkg-config --cflags json-c) -o "$TMPD/v" "$TMPD/v.c" \
    -L"$top_builddir/lib/.libs" -lscimg || fail "a program using scimg_version() does not build"
  out=$(LD_LIBRARY_PATH="$top_builddir/lib/.libs" "$TMPD/v") || fail "scimg_version() program failed"
  [ "$out" = "$want $want $want" ] || fail "version program printed '$out', expected '$want $want $want'"
fi

# Option structs start with their size: an unset size is refused, and the
# library reads only the fields within the caller's size (a program built
# against an older, shorter struct: the fields beyond read as 0/NULL).
if [ -z "$sanitized" ] && command -v cc >/dev/null 2>&1 && pkg-config --exists json-c 2>/dev/null; then
  cat > "$TMPD/s.c" <<'EOC'
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "scimg.h"
int main(int argc, char **argv)
{
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_convert_opts o;
	struct scimg_check_opts c;
	json_object *rep = NULL;
	int r;

	if (argc != 3 || !ctx)
		return 10;
	memset(&o, 0, sizeof(o));
	o.src = argv[1];
	o.dst = argv[2];
	o.dst_format = "raw";
	r = scimg_convert(ctx, &o);             /* size not set */
	if (r != -EINVAL || !strstr(scimg_ctx_errmsg(ctx), "scimg_convert_opts"))
		return printf("unset size: %d %s\n", r, scimg_ctx_errmsg(ctx)), 11;
	memset(&c, 0, sizeof(c));
	c.path = argv[1];
	c.container_only = 1;
	if (scimg_check(ctx, &c, &rep) != -EINVAL)
		return 12;
	if (scimg_bootfix_run(ctx, argv[1], "raw", (const void *)&c, &rep) != -EINVAL)
		return 13;
	/* an "older" caller: the struct ends before 'provider'; the garbage
	 * after it must not be read */
	o.size = offsetof(struct scimg_convert_opts, provider);
	o.provider = "no-such-provider";
	o.no_sync = 1;
	r = scimg_convert(ctx, &o);
	if (r < 0)
		return printf("short struct: %s\n", scimg_ctx_errmsg(ctx)), 14;
	/* the whole struct: now 'provider' is read, and is unknown */
	o.size = sizeof(o);
	if (scimg_convert(ctx, &o) >= 0)
		return 15;
	scimg_ctx_free(ctx);
	return 0;
}
EOC
  cc -I"$top_srcdir/lib" -I"$top_builddir" $(pkg-config --cflags json-c) -o "$TMPD/s" "$TMPD/s.c" \
    -L"$top_builddir/lib/.libs" -lscimg || fail "the option-struct program does not build"
  head -c 65536 /dev/urandom > "$TMPD/in.raw"
  LD_LIBRARY_PATH="$top_builddir/lib/.libs" SCIMG_PLUGIN_PATH="$TMPD/none" timeout 60 \
    "$TMPD/s" "$TMPD/in.raw" "$TMPD/out.raw"; rc=$?
  [ $rc -eq 0 ] || fail "option struct size handling: program exit $rc"
  cmp -s "$TMPD/in.raw" "$TMPD/out.raw" || fail "the short-struct convert did not copy the image"
fi
echo "ok: $(wc -l < "$TMPD/exported") symbols exported, all public"
