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
  # scimg help SUB is scimg SUB --help
  "$SCIMG" help "$sub" > "$TMPD/help2" || fail "help $sub exit status"
  cmp -s "$TMPD/help" "$TMPD/help2" || fail "'scimg help $sub' differs from '$sub --help'"
  # a bad option is reported once, naming it, with the hint to --help
  for bad in --bogus-option -Z; do
    "$SCIMG" "$sub" $bad > "$TMPD/out" 2> "$TMPD/err"; rc=$?
    [ $rc -eq 2 ] || fail "$sub $bad: exit $rc, expected 2"
    [ -s "$TMPD/out" ] && fail "$sub $bad: wrote to stdout"
    [ "$(wc -l < "$TMPD/err")" -eq 2 ] || { cat "$TMPD/err"; fail "$sub $bad: expected 2 lines on stderr"; }
    [ "$(grep -c -- "$bad" "$TMPD/err")" -eq 1 ] || { cat "$TMPD/err"; fail "$sub $bad: the option must be named once"; }
    grep -q "^Try 'scimg $sub --help'" "$TMPD/err" || fail "$sub $bad: no hint to --help"
  done
done
"$SCIMG" help nosuchcommand >/dev/null 2>&1; [ $? -eq 2 ] || fail "help of an unknown command must exit 2"
"$SCIMG" convert -O raw -f > /dev/null 2> "$TMPD/err"
grep -q "option '-f' requires an argument" "$TMPD/err" || { cat "$TMPD/err"; fail "missing argument not named"; }
"$SCIMG" info --output > /dev/null 2> "$TMPD/err"
grep -q "option '--output' requires an argument" "$TMPD/err" || { cat "$TMPD/err"; fail "missing argument of a long option not named"; }

# -I help lists every readable format's reader options (the AMI bundle's
# keys among them) and needs no image; with -f only that format's
for sub in convert info; do
  "$SCIMG" $sub -I help > "$TMPD/ih" || fail "$sub -I help exit status"
  grep -q '^  ami .*privatekey.*cert' "$TMPD/ih" || { cat "$TMPD/ih"; fail "$sub -I help: no ami options"; }
  grep -q '^  qcow2 ' "$TMPD/ih" || fail "$sub -I help: qcow2 missing"
  "$SCIMG" $sub -f ami -I help > "$TMPD/ih" || fail "$sub -f ami -I help exit status"
  grep -qx '  privatekey' "$TMPD/ih" || fail "$sub -f ami -I help"
  "$SCIMG" $sub -f nosuchfmt -I help > /dev/null 2>&1; [ $? -eq 2 ] || fail "$sub -I help of an unknown format must exit 2"
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
