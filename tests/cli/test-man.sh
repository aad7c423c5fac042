#!/bin/sh
# Every man page renders without a groff warning and holds no control
# character (groff 1.22 renders a form feed silently, 1.23 warns), and every
# docs/ file a man page names is installed (dist_doc_DATA in Makefile.am).
. "$(dirname "$0")/functions.sh"
requires groff

pages=$(ls "$top_srcdir"/docs/*.1 "$top_srcdir"/docs/*.7 "$top_srcdir"/plugins/*/*.7 2>/dev/null)
[ -n "$pages" ] || fail "no man pages found under $top_srcdir"
n=0
for m in $pages; do
  n=$((n + 1))
  timeout 60 groff -man -Tutf8 -ww -z "$m" > "$TMPD/warn" 2>&1 || fail "groff failed on $m"
  [ -s "$TMPD/warn" ] && { cat "$TMPD/warn"; fail "groff warns on $m"; }
  # control characters other than tab and newline
  if LC_ALL=C grep -n "$(printf '[\001-\010\013-\037\177]')" "$m" > "$TMPD/ctl"; then
    cat -A "$TMPD/ctl" | head -5
    fail "$m contains a control character"
  fi
  for d in $(grep -o 'docs/[A-Za-z0-9._-]*\.\(md\|xsd\)' "$m" | sort -u); do
    [ -f "$top_srcdir/$d" ] || fail "$m names $d, which does not exist"
    sed -n '/^dist_doc_DATA *=/,/[^\\]$/p' "$top_srcdir/Makefile.am" | grep -q "$d" ||
      fail "$m names $d, which make install does not install (dist_doc_DATA)"
  done
done
[ "$n" -ge 7 ] || fail "only $n man pages found"
echo "ok: $n man pages"
