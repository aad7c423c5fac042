#!/bin/sh
# raw -> raw keeps content and sparseness; info recognises raw as fallback.
. "$(dirname "$0")/functions.sh"

make_mixed_raw "$TMPD/in.raw" 32
"$SCIMG" convert -f raw -O raw "$TMPD/in.raw" "$TMPD/out.raw" || fail "convert"
cmp "$TMPD/in.raw" "$TMPD/out.raw" || fail "content differs"
alloc_in=$(du -k "$TMPD/in.raw" | cut -f1)
alloc_out=$(du -k "$TMPD/out.raw" | cut -f1)
[ "$alloc_out" -le $((alloc_in + 64)) ] || fail "output not sparse: $alloc_out KiB vs $alloc_in KiB"

"$SCIMG" info "$TMPD/in.raw" > "$TMPD/info" || fail "info"
grep -q '^file format: raw' "$TMPD/info" || fail "info format"
grep -q '^note: no format matched' "$TMPD/info" || fail "raw fallback not announced"
grep -q '(33554432 bytes)' "$TMPD/info" || fail "virtual size"
"$SCIMG" info -f raw "$TMPD/in.raw" | grep -q '^note:' && fail "explicit raw must not be a fallback"
"$SCIMG" info --output=json "$TMPD/in.raw" > "$TMPD/info.json" || fail "info json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["format"]=="raw" and d["virtual-size"]==33554432' "$TMPD/info.json" || fail "json"

# -S 0 allocates everything
"$SCIMG" convert -S 0 -f raw -O raw "$TMPD/in.raw" "$TMPD/full.raw" || fail "convert -S 0"
cmp "$TMPD/in.raw" "$TMPD/full.raw" || fail "content differs (-S 0)"
[ "$(du -k "$TMPD/full.raw" | cut -f1)" -ge 32000 ] || fail "-S 0 output is sparse"
echo ok
