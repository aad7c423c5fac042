#!/bin/sh
# The SCI descriptor records only the base name of the source: not the
# builder's directories (privacy), so two builds from different directories
# record the same origin.
. "$(dirname "$0")/functions.sh"
requires tar

mkdir -p "$TMPD/secret-home/alice/images" "$TMPD/other"
make_mixed_raw "$TMPD/secret-home/alice/images/web disk.raw" 2
cp "$TMPD/secret-home/alice/images/web disk.raw" "$TMPD/other/"
timeout 120 "$SCIMG" convert -O sci -o guest=skip,name=t "$TMPD/secret-home/alice/images/web disk.raw" "$TMPD/a.sci" ||
  fail "convert -O sci (absolute path)"
(cd "$TMPD/other" && timeout 120 "$SCIMG" convert -O sci -o guest=skip,name=t "./web disk.raw" ../b.sci) ||
  fail "convert -O sci (relative path)"
for p in a b; do
  tar xOf "$TMPD/$p.sci" supercloud.xml > "$TMPD/$p.xml" || fail "no descriptor in $p.sci"
  grep -q '<origin>web disk.raw</origin>' "$TMPD/$p.xml" ||
    { grep origin "$TMPD/$p.xml"; fail "$p.sci: origin is not the base name"; }
  grep -q "secret-home\|$TMPD\|other" "$TMPD/$p.xml" && fail "$p.sci: the descriptor names the source's directory"
done
[ "$(grep '<origin>' "$TMPD/a.xml")" = "$(grep '<origin>' "$TMPD/b.xml")" ] || fail "origins differ"
echo ok
