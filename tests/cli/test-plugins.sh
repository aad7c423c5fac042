#!/bin/sh
# The plugin ABI: a plugin built against the FROZEN API 1 header loads into
# the current library and its format and provider profile work end to end;
# the API 1 struct layout is unchanged in the current header; broken plugins
# (API version 99, a missing callback, no registration symbol, a struct too
# small, a taken format name) are refused with a message naming the cause,
# without disturbing anything else.
. "$(dirname "$0")/functions.sh"

tp="$top_builddir/tests/plugins/.libs"
tree_path=$SCIMG_PLUGIN_PATH # this tree's plugins (Makefile.am)
[ -f "$tp/v1test.so" ] || fail "test plugins not built (make check builds them)"

# 1. API 1 layout: the current header only appended to API 1's structs.
"$top_builddir/tests/plugins/abi-layout-v1" > "$TMPD/v1.layout" || fail "abi-layout-v1"
"$top_builddir/tests/plugins/abi-layout-cur" > "$TMPD/cur.layout" || fail "abi-layout-cur"
diff "$TMPD/v1.layout" "$TMPD/cur.layout" || fail "plugin API 1 layout changed in lib/scimg-plugin.h"

# 2. The v1 plugin alone.
export SCIMG_PLUGIN_PATH="$tp/v1test.so"
"$SCIMG" plugins > "$TMPD/list" || { cat "$TMPD/list"; fail "scimg plugins with v1test"; }
grep -q '^v1test 1.2.3 (plugin API 1) \[loaded\]' "$TMPD/list" || { cat "$TMPD/list"; fail "v1test not listed as loaded"; }
grep -q 'v1test .*(read, write)' "$TMPD/list" || fail "v1test format not listed"
grep -q 'v1cloud .*-> v1test' "$TMPD/list" || fail "v1cloud profile not listed"
"$SCIMG" plugins --output=json > "$TMPD/list.json" || fail "plugins json"
python3 - "$TMPD/list.json" "$tp/v1test.so" <<'PY' || fail "plugins json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["api-version"] == 1, d
p = [x for x in d["plugins"] if x["name"] == "v1test"]
assert len(p) == 1, d
p = p[0]
assert p["status"] == "loaded" and p["version"] == "1.2.3" and p["api-version"] == 1, p
assert p["path"] == sys.argv[2], p
assert [f["name"] for f in p["formats"]] == ["v1test"], p
f = p["formats"][0]
assert f["read"] and f["write"] and not f["compress"], f
assert [x["name"] for x in p["profiles"]] == ["v1cloud"] and p["profiles"][0]["format"] == "v1test", p
PY
"$SCIMG" --help | grep -q 'v1test(rw)' || fail "scimg --help does not list the plugin format"

make_mixed_raw "$TMPD/in.raw" 5
truncate -s +4096 "$TMPD/in.raw"   # not a multiple of 1 MiB
"$SCIMG" convert -f raw -O v1test "$TMPD/in.raw" "$TMPD/a.v1t" || fail "raw -> v1test"
"$SCIMG" info "$TMPD/a.v1t" > "$TMPD/info" || fail "info v1test"
grep -q '^file format: v1test' "$TMPD/info" || { cat "$TMPD/info"; fail "v1test not probed"; }
grep -q 'built-against-api: 1' "$TMPD/info" || fail "v1test info callback"
"$SCIMG" convert -O raw "$TMPD/a.v1t" "$TMPD/a.raw" || fail "v1test -> raw"
cmp "$TMPD/in.raw" "$TMPD/a.raw" || fail "raw -> v1test -> raw differs"
"$SCIMG" convert -I min_size=1M -O raw "$TMPD/a.v1t" "$TMPD/a2.raw" || fail "reader option (-I) accepted"
"$SCIMG" convert -I min_size=1G -O raw "$TMPD/a.v1t" "$TMPD/a2.raw" 2>"$TMPD/err" && fail "reader option ignored"
grep -q "below -I min_size=1G" "$TMPD/err" || fail "reader option message: $(cat "$TMPD/err")"
"$SCIMG" convert -f raw -O v1test -o tag=bad "$TMPD/in.raw" "$TMPD/bad.v1t" 2>"$TMPD/err" && fail "bad option accepted"
grep -q "option tag is 'bad'" "$TMPD/err" || fail "plugin option error: $(cat "$TMPD/err")"
"$SCIMG" convert -f raw -O v1test -o nosuch=1 "$TMPD/in.raw" "$TMPD/bad.v1t" 2>"$TMPD/err" && fail "unknown option accepted"
grep -q "has no option 'nosuch' (it accepts: tag)" "$TMPD/err" || fail "unknown option error: $(cat "$TMPD/err")"
"$SCIMG" convert -O v1test -o help "$TMPD/in.raw" "$TMPD/x" | grep -q '^  tag$' || fail "-o help"

# 3. Provider profile: format, default options, size rounded up to 1 MiB.
"$SCIMG" convert -f raw --provider=v1cloud "$TMPD/in.raw" "$TMPD/p.v1t" || fail "convert --provider"
"$SCIMG" info --output=json "$TMPD/p.v1t" > "$TMPD/p.json" || fail "info provider output"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["format"]=="v1test" and d["virtual-size"]==6*1048576, d' "$TMPD/p.json" || fail "provider output: format or rounded size"
"$SCIMG" compare "$TMPD/in.raw" "$TMPD/p.v1t" >/dev/null 2>&1 || fail "provider output content"
"$SCIMG" convert -f raw --provider=v1cloud -O raw "$TMPD/in.raw" "$TMPD/p2" 2>"$TMPD/err" && fail "--provider with another -O accepted"
grep -q "writes format 'v1test', not 'raw'" "$TMPD/err" || fail "provider -O message: $(cat "$TMPD/err")"
"$SCIMG" convert -f raw --provider=v1cloud -o tag=bad "$TMPD/in.raw" "$TMPD/p2" 2>/dev/null && fail "user -o must come after the profile's"
"$SCIMG" convert -f raw --provider=nosuch "$TMPD/in.raw" "$TMPD/p2" 2>"$TMPD/err" && fail "unknown provider accepted"
grep -q "unknown provider profile 'nosuch' (known: v1cloud)" "$TMPD/err" || fail "unknown provider message: $(cat "$TMPD/err")"
"$top_builddir/tests/plugins/profile-tool" info v1cloud > "$TMPD/pi.json" || fail "profile info"
python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
assert d["plugin"]=="v1test" and d["size-alignment"]==1048576 and d["max-size"]==1<<30, d
assert d["guest-modules"]==["virtio_blk","virtio_net"] and d["console"]=="ttyS0" and d["options"]=="tag=ok", d' "$TMPD/pi.json" || fail "profile info content"
"$top_builddir/tests/plugins/profile-tool" check v1cloud "$TMPD/in.raw" > "$TMPD/f.json"; rc=$?
[ $rc -eq 1 ] || fail "profile check of a raw 5 MiB image: exit $rc"
python3 -c '
import json,sys; ids=sorted(f["id"] for f in json.load(open(sys.argv[1])))
assert ids==["format","size-alignment"], ids' "$TMPD/f.json" || fail "profile check findings: $(cat "$TMPD/f.json")"
"$top_builddir/tests/plugins/profile-tool" check v1cloud "$TMPD/p.v1t" > "$TMPD/f.json" || fail "provider output not compliant: $(cat "$TMPD/f.json")"
head -c 1M /dev/urandom > "$TMPD/small.raw"
"$SCIMG" convert -f raw --provider=v1cloud "$TMPD/small.raw" "$TMPD/small.v1t" || fail "convert small"
"$top_builddir/tests/plugins/profile-tool" check v1cloud "$TMPD/small.v1t" > "$TMPD/f.json"; rc=$?
[ $rc -eq 1 ] && grep -q '"min-size"' "$TMPD/f.json" || fail "profile's own check not run: $rc $(cat "$TMPD/f.json")"
truncate -s 1025M "$TMPD/huge.raw"
"$SCIMG" convert -f raw --provider=v1cloud "$TMPD/huge.raw" "$TMPD/huge.v1t" 2>"$TMPD/err" && fail "size above the profile maximum accepted"
grep -q "larger than provider profile 'v1cloud' allows" "$TMPD/err" || fail "max size message: $(cat "$TMPD/err")"

# 4. Broken plugins are refused, naming the cause.
refused() { # plugin-file expected-message
  SCIMG_PLUGIN_PATH="$tp/$1" "$SCIMG" plugins > "$TMPD/out" 2> "$TMPD/err"; rc=$?
  [ $rc -eq 2 ] || fail "$1: scimg plugins exit $rc, expected 2"
  grep -q -- "$2" "$TMPD/err" || fail "$1: stderr lacks '$2': $(cat "$TMPD/err")"
  grep -q '\[refused\]' "$TMPD/out" || fail "$1: not listed as refused: $(cat "$TMPD/out")"
}
refused api99.so "declares plugin API version 99, but this libscimg supports versions 1 to 1"
refused nopread.so "format 'nopreadfmt' lacks the pread (required with open) callback"
refused notplugin.so "no scimg_plugin_init symbol: not a scimg plugin"
refused small.so "format #1 is 8 bytes, smaller than the"
refused rawname.so "format 'raw' is a built-in format"
SCIMG_PLUGIN_PATH="$TMPD/nonexistent" "$SCIMG" plugins >/dev/null 2>"$TMPD/err"; [ $? -eq 2 ] || fail "missing path entry"
grep -q "does not exist" "$TMPD/err" || fail "missing path entry message"

# A refused plugin's format is not there, with a hint; the rest still works.
SCIMG_PLUGIN_PATH="$tp/api99.so" "$SCIMG" convert -f raw -O api99fmt "$TMPD/in.raw" "$TMPD/x" 2>"$TMPD/err" && fail "refused format usable"
grep -q "unknown format 'api99fmt' (1 plugin could not be loaded; see 'scimg plugins')" "$TMPD/err" || fail "hint: $(cat "$TMPD/err")"
SCIMG_PLUGIN_PATH="$tp/api99.so" "$SCIMG" convert -f raw -O raw "$TMPD/in.raw" "$TMPD/x.raw" || fail "raw with a refused plugin around"

# The whole directory: v1test loads, every broken one is refused.
SCIMG_PLUGIN_PATH="$tp" "$SCIMG" plugins --output=json > "$TMPD/all.json" 2>/dev/null; [ $? -eq 2 ] || fail "dir: exit"
python3 - "$TMPD/all.json" <<'PY' || fail "directory listing: $(cat "$TMPD/all.json")"
import json, sys
d = {p["path"].rsplit("/", 1)[1]: p for p in json.load(open(sys.argv[1]))["plugins"]}
assert d["v1test.so"]["status"] == "loaded", d
for n in ("api99.so", "nopread.so", "notplugin.so", "small.so", "rawname.so"):
    assert d[n]["status"] == "refused" and d[n]["error"], (n, d[n])
assert d["api99.so"]["api-version"] == 99
PY
SCIMG_PLUGIN_PATH="$tp" "$SCIMG" convert -O raw "$TMPD/a.v1t" "$TMPD/b.raw" 2>/dev/null || fail "v1test among broken plugins"
cmp "$TMPD/in.raw" "$TMPD/b.raw" || fail "v1test among broken plugins: content"

# 5. The first plugin of a name wins; a second copy is skipped, not refused.
mkdir "$TMPD/other" && cp "$tp/v1test.so" "$TMPD/other/copy.so"
SCIMG_PLUGIN_PATH="$tp/v1test.so:$TMPD/other" "$SCIMG" plugins > "$TMPD/out" || fail "shadowed copy made plugins fail"
grep -q '\[skipped\]' "$TMPD/out" && grep -q "plugin 'v1test' is already loaded from '$tp/v1test.so'" "$TMPD/out" || fail "shadowing: $(cat "$TMPD/out")"

# 6. This tree's plugins, registered with SCIMG_PLUGIN_REGISTER (current
# header): each loads as an API 1 plugin with its formats and profiles.
[ -n "$tree_path" ] || fail "SCIMG_PLUGIN_PATH of the tree not set"
SCIMG_PLUGIN_PATH="$tree_path" "$SCIMG" plugins --output=json > "$TMPD/tree.json" || fail "tree plugins: exit $?"
python3 - "$TMPD/tree.json" <<'PY' || fail "tree plugins: $(cat "$TMPD/tree.json")"
import json, sys
d = {p["name"]: p for p in json.load(open(sys.argv[1]))["plugins"]}
want = {"vdi": (["vdi"], []), "azure": ([], ["azure"]), "ec2": ([], ["ec2", "ec2-raw", "ec2-ami"]),
        "gce": ([], ["gce"]), "vsphere": ([], ["vsphere"])}
for n, (fmts, profs) in want.items():
    p = d[n]
    assert p["status"] == "loaded" and p["api-version"] == 1 and p["version"] == "1.0", p
    assert [f["name"] for f in p.get("formats", [])] == fmts, p
    assert [x["name"] for x in p.get("profiles", [])] == profs, p
PY
echo ok
