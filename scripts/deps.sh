#!/bin/sh
# Install the Debian packages soundcard needs to build, test and run
# (`deps.sh bench`: also what `make bench` needs: linux-perf, gnuplot).
# Does nothing when they are all present; otherwise apt-get update first.
set -eu
extra=""
[ "${1:-}" = bench ] && extra="linux-perf gnuplot-nox"
packages="$extra build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libcjson-dev libsndfile1-dev libsoxr-dev libsystemd-dev
  portaudio19-dev libjack-jackd2-dev libasound2-dev socat sox strace
  jackd2 libasound2-plugins alsa-utils systemd man-db
  python3 python3-cffi python3-numpy python3-pytest"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
