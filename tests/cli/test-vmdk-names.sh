#!/bin/sh
# A VMDK descriptor names its extent file in double quotes on one line, with
# no escape: an output name with '"' or a line break is refused with a clear
# message and nothing is left behind; a name with spaces works.
. "$(dirname "$0")/functions.sh"

make_mixed_raw "$TMPD/in.raw" 2
mkdir "$TMPD/out"
nl='
'
for sub in monolithicFlat monolithicSparse streamOptimized; do
  for name in 'a"b.vmdk' "a${nl}b.vmdk" "$(printf 'a\tb.vmdk')"; do
    timeout 60 "$SCIMG" convert -O vmdk -o subformat=$sub "$TMPD/in.raw" "$TMPD/out/$name" \
      > /dev/null 2> "$TMPD/err"; rc=$?
    [ $rc -eq 2 ] || fail "$sub: a name with a quote, line break or tab: exit $rc, expected 2"
    grep -q 'double quote, a line break or a control character' "$TMPD/err" ||
      { cat "$TMPD/err"; fail "$sub: no clear message"; }
    [ -z "$(ls -A "$TMPD/out")" ] || { ls -A "$TMPD/out"; fail "$sub: files left behind"; }
  done
  # spaces and other printable characters are fine, and read back
  timeout 60 "$SCIMG" convert -O vmdk -o subformat=$sub "$TMPD/in.raw" "$TMPD/out/my disk's #1.vmdk" ||
    fail "$sub: a name with spaces"
  timeout 60 "$SCIMG" compare "$TMPD/in.raw" "$TMPD/out/my disk's #1.vmdk" || fail "$sub: content differs"
  if [ "$sub" = monolithicFlat ]; then
    grep -a -q "^RW [0-9]* FLAT \"my disk's #1-flat.vmdk\" 0" "$TMPD/out/my disk's #1.vmdk" ||
      fail "monolithicFlat: extent line"
  fi
  rm -f "$TMPD/out"/*
done
echo ok
