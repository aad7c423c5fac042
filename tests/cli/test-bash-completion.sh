#!/bin/sh
# contrib/bash-completion/scimg: sourced in bash it registers a completion
# for scimg that completes subcommands, options and formats from scimg.
. "$(dirname "$0")/functions.sh"
requires bash

comp="$top_srcdir/contrib/bash-completion/scimg"
[ -f "$comp" ] || fail "no $comp"
mkdir "$TMPD/bin"
ln -s "$SCIMG" "$TMPD/bin/scimg"
# complete WORDS...: what bash offers for the last word
cat > "$TMPD/run.bash" <<'EOB'
source "$1"; shift
complete -p scimg || exit 3
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
_scimg scimg "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
EOB
c() { PATH="$TMPD/bin:$PATH" timeout 30 bash --norc --noprofile "$TMPD/run.bash" "$comp" "$@"; }

c scimg '' > "$TMPD/o" || fail "complete -p scimg: no completion registered"
grep -qx 'complete -F _scimg scimg' "$TMPD/o" || { cat "$TMPD/o"; fail "complete -p scimg"; }
c scimg con | grep -qx convert || fail "'scimg con' does not complete to convert"
c scimg '' | grep -qx inject-drivers || fail "subcommands not offered"
c scimg convert --no- | grep -qx -- --no-sync || fail "'convert --no-' does not offer --no-sync"
c scimg info --ou | grep -qx -- --output || fail "'info --ou' does not offer --output"
c scimg convert -O q | grep -qx qcow2 || fail "'-O q' does not offer qcow2"
c scimg convert -O '' > "$TMPD/o"
grep -qx vmdk "$TMPD/o" || fail "-O does not offer vmdk"
grep -qx vdi "$TMPD/o" || fail "-O does not offer the plugin's vdi"
c scimg convert --provider a | grep -qx azure || fail "--provider does not offer azure"
c scimg check --output=j | grep -qx -- --output=json || fail "--output=j"
echo ok
