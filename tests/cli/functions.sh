# functions.sh - sourced by the CLI tests (tests/cli/test-*.sh).
# Environment from Makefile.am: SCIMG, top_srcdir, top_builddir, SHARED_DIR,
# QEMU_IMG.  A test exits 0 pass, 1 fail, 77 skip.
set -u

: "${SCIMG:?SCIMG must point at the scimg binary}"
# In a build tree cmd/scimg is libtool's wrapper script: every run pays a
# shell start (60 ms here, 200 ms under ASan), and the suite runs scimg
# thousands of times.  Run the program behind it, with the library path
# the wrapper would set.
if head -c 4096 "$SCIMG" 2>/dev/null | grep -q "libtool"; then
  lt_prog="$(dirname "$SCIMG")/.libs/$(basename "$SCIMG")"
  lt_lib=$(sed -n 's/^ *LD_LIBRARY_PATH="\([^:"]*\):.*/\1/p' "$SCIMG" | head -n 1)
  if [ -x "$lt_prog" ] && [ -n "$lt_lib" ] && [ -d "$lt_lib" ]; then
    LD_LIBRARY_PATH=$lt_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
    SCIMG=$lt_prog
  fi
fi
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/scimg-test.XXXXXX")
cleanup_fns=""
trap 'for f in $cleanup_fns; do $f; done; rm -rf "$TMPD"' EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

requires() {
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || skip "$t not installed"; done
}

# The corrupt-input corpora (test-*-corrupt.sh): with
# SCIMG_CORRUPT_SANITIZED_ONLY=1 (tests/run-tests.sh, which runs the
# sanitizer build's make check too) they run only in the ASan+UBSan build,
# which catches every crash the plain build would and memory errors
# besides; by hand they run in any build.
corrupt_corpus_test() {
  [ "${SCIMG_CORRUPT_SANITIZED_ONLY:-0}" = 1 ] && [ -z "${SCIMG_SANITIZERS:-}" ] &&
    skip "the corrupt corpus runs in the sanitizer build (SCIMG_CORRUPT_SANITIZED_ONLY)"
  return 0
}

requires_qemu_img() {
  [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ] || skip "qemu-img not available"
}

# The shared real-world fixtures, unpacked once per test run into a cache.
requires_external() {
  ext="$SHARED_DIR/fixtures/external"
  [ -f "$ext/images.tsv" ] || skip "no shared fixtures at $ext"
  EXT_UNPACKED="${SCIMG_FIXTURE_CACHE:-${TMPDIR:-/tmp}/scimg-external-$(id -u)}"
  if [ ! -f "$EXT_UNPACKED/.done" ]; then
    mkdir -p "$EXT_UNPACKED"
    lock="$EXT_UNPACKED.lock"
    (
      flock 9
      if [ ! -f "$EXT_UNPACKED/.done" ]; then
        sh "$ext/unpack.sh" "$EXT_UNPACKED" >/dev/null && touch "$EXT_UNPACKED/.done"
      fi
    ) 9>"$lock"
  fi
  [ -f "$EXT_UNPACKED/.done" ] || fail "could not unpack shared fixtures"
}

# sha256 of a file
sha() { sha256sum "$1" | cut -d' ' -f1; }

# Make a raw file with mixed content: random, text, zeros, holes.
make_mixed_raw() {
  out=$1 size_mib=${2:-16}
  truncate -s "${size_mib}M" "$out"
  dd if=/dev/urandom of="$out" bs=64K count=3 seek=1 conv=notrunc status=none
  yes "scimg test pattern line" | head -c 300000 | dd of="$out" bs=4K seek=100 conv=notrunc status=none
  dd if=/dev/urandom of="$out" bs=1 count=777 seek=$((size_mib * 1048576 - 777)) conv=notrunc status=none
  dd if=/dev/zero of="$out" bs=64K count=4 seek=40 conv=notrunc status=none
}

# wait_for_temp DIR PID: wait (up to 60 s) until a scimg temporary file or
# directory appears in DIR, or PID holds an unnamed (O_TMPFILE) file there,
# so a signal sent next reaches a running convert and not a process still
# starting up.
wait_for_temp() {
  i=0
  while [ $i -lt 600 ]; do
    ls -A "$1" 2>/dev/null | grep -q 'scimg' && return 0
    ls -l "/proc/$2/fd" 2>/dev/null | grep -qF -- "$1/#" && return 0
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1; i=$((i + 1))
  done
}

# formats all|read|write: the formats of the registry as the scimg command
# sees them (built-in and plugins), one a line.  The generic tests iterate
# this, never a list of their own: FMTS=$(formats write) || exit 1
# What a format gets follows from what it can do, nothing else: the fault,
# bounds and input-unchanged tests make their images with the format's own
# writer, so they take `formats write` (a read-only format would have no
# input there: its readers are covered by its fuzz corpus and its corrupt-
# input test); the fuzz tests take `formats read` (a write-only format has
# nothing to fuzz).  Today every format can do both.
formats() {
  _lf="$top_builddir/tests/cli/list-formats"
  [ -x "$_lf" ] || fail "tests/cli/list-formats not built"
  _fl=$(timeout 30 "$_lf" "$1") || fail "list-formats $1: exit $?"
  [ -n "$_fl" ] || fail "list-formats $1: no format"
  echo "$_fl"
}

# What the generic tests (test-faults, test-bounds, test-input-unchanged)
# need for the formats that cannot be written or read without options; every
# other format of `formats write` needs nothing here:
#   ami  the bundle is encrypted: writing takes the user's certificate and
#        key and the EC2 certificate, reading the user's key (made once per
#        test with openssl); the output is a directory and the image is the
#        manifest in it.
#   sci  writing fixes the guest with libguestfs unless guest=skip: a
#        generic disk has no guest.
# fmt_wopts FMT / fmt_ropts FMT print the -o / -I arguments (or nothing);
# fmt_image PATH FMT prints the file to open for an output written to PATH.
# fmt_digests_holes FMT is true for the formats whose writer reads every
# byte of the disk, holes included, by definition: an SCI descriptor holds
# the SHA-256 of the whole guest-visible content (docs/sci-format.md), an
# AMI manifest the SHA-1 of the tar that holds the image (not sparse:
# ec2-ami-tools read it back).  Their time grows with the virtual size (a
# 2 TiB disk is hours): test-bounds checks their memory bound on a smaller
# disk with the same data.
fmt_keys() {
  [ -f "$TMPD/fmtkeys/ec2.pem" ] && return 0
  requires openssl
  mkdir -p "$TMPD/fmtkeys"
  for _k in user ec2; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMPD/fmtkeys/$_k.key" \
      -out "$TMPD/fmtkeys/$_k.pem" -days 2 -subj "/CN=scimg-test-$_k" >/dev/null 2>&1 ||
      fail "openssl req for $_k"
  done
}
fmt_wopts() {
  case $1 in
    ami) fmt_keys; k="$TMPD/fmtkeys"
         echo "-o cert=$k/user.pem,privatekey=$k/user.key,ec2cert=$k/ec2.pem,user=123456789012,prefix=img" ;;
    sci) echo "-o guest=skip" ;;
  esac
}
fmt_ropts() {
  case $1 in
    ami) fmt_keys; echo "-I privatekey=$TMPD/fmtkeys/user.key" ;;
  esac
}
fmt_image() {
  case $2 in
    ami) echo "$1/img.manifest.xml" ;;
    *) echo "$1" ;;
  esac
}
fmt_digests_holes() {
  case $1 in
    sci|ami) return 0 ;;
  esac
  return 1
}
