#!/bin/sh
# Every subcommand answers --help and --version, and every long option in
# --help is documented in that subcommand's man page.
. "$(dirname "$0")/functions.sh"

"$SCIMG" --help | grep -q '^Usage: scimg' || fail "scimg --help"
"$SCIMG" --version | grep -q '^scimg [0-9]' || fail "scimg --version"
"$SCIMG" nosuchcommand >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command must exit 2"

for sub in $("$SCIMG" --help | awk '/^Commands:/{f=1;next} /^$/{f=0} f{print $1}'); do
  "$SCIMG" "$sub" --help > "$TMPD/help" || fail "$sub --help exit status"
  grep -q "^Usage: scimg $sub" "$TMPD/help" || fail "$sub --help has no usage line"
  "$SCIMG" "$sub" --version | grep -q '^scimg ' || fail "$sub --version"
  man="$top_srcdir/docs/scimg-$sub.1"
  [ -f "$man" ] || fail "no man page for $sub"
  for opt in $(grep -o -- '--[a-z][a-z-]*' "$TMPD/help" | sort -u); do
    grep -q -- "$(echo "$opt" | sed 's/-/\\\\-/g')\|$opt" "$man" || fail "$sub: option $opt is not in $man"
  done
  "$SCIMG" "$sub" --bogus-option >/dev/null 2>&1; [ $? -eq 2 ] || fail "$sub: bad option must exit 2"
done
# every -o key of every writable built-in format is explained by "-o help"
# (a plugin's keys come without a description: its manual has them)
"$SCIMG" plugins --output=json > "$TMPD/plugins" 2>/dev/null || :
for f in $("$SCIMG" --help | sed -n 's/^Formats://p' | tr ' ' '\n' | sed -n 's/^\([a-z0-9-]*\)(r*w)$/\1/p'); do
  grep -q "\"$f\"" "$TMPD/plugins" && continue
  "$SCIMG" create -f "$f" -o help > "$TMPD/ohelp" || fail "create -f $f -o help"
  awk 'NR > 1 && $0 != "  (none)" && NF < 2 { bad = 1; print } END { exit bad }' "$TMPD/ohelp" ||
    fail "$f: -o keys without a description: $(cat "$TMPD/ohelp")"
done
echo "ok"
