#!/bin/sh
# setup.sh - install every Debian 12 package that scimg's build, tests and
# benchmarks need.  Idempotent; run as root (or with sudo available).
set -eu

PKGS="
build-essential autoconf automake libtool pkg-config
libguestfs-dev zlib1g-dev libzstd-dev libarchive-dev libssl-dev
libcurl4-openssl-dev libxml2-dev libjson-c-dev libdeflate-dev
qemu-utils time python3 groff-base
libvhdi-utils libvmdk-utils liblzma-dev lz4 bzip2
qemu-system-x86 ovmf mmdebstrap fdisk e2fsprogs virt-v2v nbdkit libnbd-bin linux-image-amd64
python3-guestfs libguestfs-xfs cryptsetup-bin
clang libclang-rt-14-dev
"

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing=
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup.sh: installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
  echo "setup.sh: all packages present"
fi
